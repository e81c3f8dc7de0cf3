# frozen_string_literal: true

# The Rack journey against the real sessiontoken-server binary: real HTTP requests with
# cookies to a real Sinatra app under Puma on 127.0.0.1. login -> the session persists ->
# nested changes re-sign it -> rotate through the admin API -> the old cookie is still
# accepted and re-issued under the new key id -> tampered, foreign and malformed cookies give
# an empty session -> logout deletes the cookie -> the service stops -> requests fail closed
# (empty session, error logged without any cookie value, the browser's cookie untouched).
require_relative 'harness'
require_relative 'app'
require 'base64'
require 'json'
require 'logger'
require 'minitest/autorun'
require 'net/http'
require 'stringio'
require 'sessiontoken'

class RackJourneyTest < Minitest::Test
  KEYRING = 'default'
  AUDIENCE = 'shop:session'
  TTL = 3600

  def setup
    @server = Harness::Server.new
    @client = Sessiontoken::Client.new(@server.address, keyring: KEYRING)
    @logs = StringIO.new
  end

  def start_web(**options)
    logger = Logger.new(@logs)
    logger.level = Logger::DEBUG
    client = @client
    app = Rack::Builder.new do
      use Sessiontoken::RackSession, client: -> { client }, keyring: KEYRING, audience: AUDIENCE,
                                     ttl_seconds: TTL, logger: logger, **options
      run ShopApp
    end
    @web = Harness::Web.new(app)
  end

  def teardown
    @web&.stop
    @client&.close
    @server&.cleanup
  end

  def request(method, path, cookie = nil)
    Harness.request(@web.base, method, path, cookie)
  end

  def whoami(cookie)
    r = request(:get, '/whoami', cookie)
    [JSON.parse(r.body), r]
  end

  def token_of(r)
    refute_nil r.set_cookie, 'expected a Set-Cookie for the session cookie'
    tok = Sessiontoken::Token.parse_native(r.value)
    refute_nil tok, 'the session cookie is not a native token'
    tok
  end

  # Replaces a genuine token's payload and keeps its MAC, as a user editing the cookie would.
  def forge_payload(token, payload)
    body = Base64.urlsafe_decode64(token[4..])
    header = body.bytesize - 32 - Sessiontoken::Token.parse_native(token).payload.bytesize
    token[0, 4] + Base64.urlsafe_encode64(body.byteslice(0, header) + payload.b + body.byteslice(-32, 32),
                                          padding: false)
  end

  def test_journey
    start_web
    # No cookie: an empty session and no Set-Cookie.
    s, r = whoami(nil)
    assert_equal({ 'session' => {}, 'unverified' => false }, s)
    assert_nil r.set_cookie

    # Login: a cookie signed under the primary key, default attributes.
    first_key = @client.primary_key_id
    r = request(:post, '/login?user=alice')
    tok = token_of(r)
    assert_equal first_key, tok.key_id
    assert_equal TTL, tok.expires_at - tok.issued_at
    assert_equal '{"user":"alice"}', tok.payload
    assert_equal Sessiontoken::Token.native_audience_tag(AUDIENCE), tok.audience_tag
    assert_equal "session=#{r.value}; Path=/; HttpOnly; SameSite=Lax", r.set_cookie
    cookie = r.value

    # It persists; unchanged sets no cookie; changes (also nested ones) re-sign it.
    s, r = whoami(cookie)
    assert_equal({ 'user' => 'alice' }, s['session'])
    assert_nil r.set_cookie
    2.times do |i|
      r = request(:post, '/counter', cookie)
      assert_equal (i + 1).to_s, r.body
      token_of(r)
      cookie = r.value
    end
    cookie = request(:post, '/cart', cookie).value
    r = request(:post, '/cart?item=apple', cookie)
    refute_nil r.set_cookie, 'a nested change must set the cookie'
    cookie = r.value
    expected = { 'user' => 'alice', 'n' => 2, 'cart' => { 'items' => ['apple'] } }
    assert_equal expected, whoami(cookie)[0]['session']

    # Rotate: the old cookie stays valid and is re-issued under the new primary key, once.
    rot = @client.rotate
    refute_equal first_key, rot.new_key_id
    assert_equal rot.new_key_id, @client.primary_key_id
    v = @client.verify(token: cookie, audience: AUDIENCE)
    assert v.valid? && v.refresh_recommended, v.inspect
    s, r = whoami(cookie)
    assert_equal expected, s['session']
    assert_equal rot.new_key_id, token_of(r).key_id
    assert_equal expected, JSON.parse(token_of(r).payload)
    cookie = r.value
    assert_nil whoami(cookie)[1].set_cookie, 'a token of the primary key is re-issued again'

    # Tampered, foreign-audience, non-JSON and malformed cookies: empty session, left alone.
    forged = forge_payload(cookie, '{"user":"admin"}')
    assert_equal :BAD_SIGNATURE, @client.verify(token: forged, audience: AUDIENCE).result
    foreign = @client.sign(payload: '{"user":"mallory"}', ttl_seconds: 60, audience: 'api').token
    not_json = @client.sign(payload: 'user=42', ttl_seconds: 60, audience: AUDIENCE).token
    { forged: forged, foreign: foreign, not_json: not_json, garbage: 'garbage', long: 'A' * 5000 }.each do |name, c|
      s, r = whoami(c)
      assert_equal({ 'session' => {}, 'unverified' => false }, s, name)
      assert_nil r.set_cookie, name
    end
    log = @logs.string
    ['rejected: BAD_SIGNATURE', 'rejected: WRONG_AUDIENCE', 'not a JSON object', 'rejected: MALFORMED',
     'longer than 4095'].each { |want| assert_includes log, want }
    refute_match(/ERROR/, log)

    # options[:skip]: the change is not written.
    r = request(:post, '/skip', cookie)
    assert_equal [200, nil], [r.status, r.set_cookie]

    # A session too large to sign is not saved; its cookie is deleted rather than left
    # holding the previous state.
    r = request(:post, '/big', cookie)
    assert_equal 200, r.status
    assert_match(/\Asession=; Max-Age=0; /, r.set_cookie)
    assert_includes @logs.string, 'session not saved, cookie deleted: session too large (3'

    # Logout deletes the cookie.
    r = request(:post, '/logout', cookie)
    assert_equal 204, r.status
    assert_match(/\Asession=; Max-Age=0; /, r.set_cookie)

    # The service goes down: fail closed, logged, the cookie untouched, nothing secret logged.
    bob = request(:post, '/login?user=bob').value
    refute_nil bob
    @server.stop
    @logs.truncate(0)
    @logs.rewind
    s, r = whoami(bob)
    assert_equal 200, r.status
    assert_equal({ 'session' => {}, 'unverified' => true }, s)
    assert_nil r.set_cookie
    r = request(:post, '/counter', bob)
    assert_equal ['1', nil], [r.body, r.set_cookie], 'a change to an unverified session is not saved'
    r = request(:post, '/login?user=carol', bob)
    assert_equal [200, nil], [r.status, r.set_cookie], 'a login cannot be signed: no cookie'
    log = @logs.string
    ['cannot verify the session cookie, using an empty session', 'UNAVAILABLE',
     'the cookie is left unchanged', 'session not saved'].each { |want| assert_includes log, want }
    [bob, bob[4, 20], cookie[4, 20], forged[4, 20]].each { |secret| refute_includes log, secret }
  end

  # refresh_after_seconds (rolling expiry): an unchanged session is re-signed once its token
  # is that old, and not before.
  def test_refresh_after
    start_web(refresh_after_seconds: 3)
    r = request(:post, '/login?user=alice')
    issued = token_of(r).issued_at
    cookie = r.value
    # issued_at is whole seconds: the token is at most 1 s + this request old, under 3 s unless
    # the machine stalls for 2 s (then the check is skipped, not failed).
    r = whoami(cookie)[1]
    assert_nil r.set_cookie if Time.now.to_f - issued < 2.9
    sleep([issued + 3.2 - Time.now.to_f, 0].max)
    s, r = whoami(cookie)
    assert_equal({ 'user' => 'alice' }, s['session'])
    assert_operator token_of(r).issued_at, :>=, issued + 3
  end
end
