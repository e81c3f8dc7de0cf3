# frozen_string_literal: true

# Cookie and refresh rules without a server: RackSession.decide for each case, the Set-Cookie
# values, option checks, the shared service config, the session hash's key handling, and the
# sign subject and revoke requests of subject_key, logout and logout_everywhere.
$LOAD_PATH.unshift(File.expand_path('../lib', __dir__))
require 'logger'
require 'minitest/autorun'
require 'rack'
require 'sessiontoken/rack_session'
require 'sessiontoken/service_config'
require 'sessiontoken/token'

class RackUnitTest < Minitest::Test
  RS = Sessiontoken::RackSession

  def st(initial: '{}', had_cookie: true, refresh: false, unverified: false)
    { initial: initial, had_cookie: had_cookie, refresh: refresh, unverified: unverified }
  end

  def test_decide
    {
      'no cookie, nothing written' => [st(had_cookie: false), '{}', false, :keep],
      'no cookie, login' => [st(had_cookie: false), '{"u":1}', false, :sign],
      'unchanged' => [st(initial: '{"u":1}'), '{"u":1}', false, :keep],
      'changed' => [st(initial: '{"u":1}'), '{"u":2}', false, :sign],
      'unchanged, refresh_recommended' => [st(initial: '{"u":1}', refresh: true), '{"u":1}', false, :sign],
      'emptied' => [st(initial: '{"u":1}'), '{}', false, :clear],
      'invalid cookie left alone' => [st, '{}', false, :keep],
      'invalid cookie, destroy' => [st, '{}', true, :clear],
      'unverified, changed: never saved' => [st(unverified: true), '{"u":1}', false, :keep],
      'unverified, emptied: never deleted' => [st(unverified: true), '{}', false, :keep],
      'unverified, renew + login' => [st(unverified: true), '{"u":1}', true, :sign],
      'unverified, destroy' => [st(unverified: true), '{}', true, :clear],
      'renew with the same data' => [st(initial: '{"u":1}'), '{"u":1}', true, :sign]
    }.each do |name, (state, now, regenerated, want)|
      assert_equal want, RS.decide(state, now, regenerated), name
    end
  end

  def req(url, env = {}) = Rack::Request.new(Rack::MockRequest.env_for(url, env))

  def test_cookie_attributes
    c = RS::Cookie.new({})
    assert_equal 'session=st1.abc; Path=/; HttpOnly; SameSite=Lax', c.set_header('session', 'st1.abc', false)
    all = RS::Cookie.new(path: '/app', domain: 'example.com', expire_after: 3600, secure: true, httponly: false,
                         same_site: :none, partitioned: true)
    assert_equal 'sid=v; Max-Age=3600; Expires=Thu, 01 Jan 1970 01:00:00 GMT; Domain=example.com; Path=/app; ' \
                 'Secure; Partitioned; SameSite=None', all.set_header('sid', 'v', all.secure?(req('http://x/')), Time.at(0))
    assert_equal 'sid=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Domain=example.com; Path=/app; Secure; ' \
                 'Partitioned; SameSite=None', all.clear_header('sid', true)
    assert_raises(ArgumentError) { c.set_header('session', 'a;b', false) }
    [{ path: '/a;b' }, { domain: "x\n" }, { same_site: :sometimes }, { secure: 'yes' }].each do |bad|
      assert_raises(ArgumentError, bad.inspect) { RS::Cookie.new(bad) }
    end
    headers = { 'Set-Cookie' => 'other=1' }
    c.add(headers, 'session=x')
    assert_equal "other=1\nsession=x", headers['Set-Cookie']
  end

  def test_secure_auto
    c = RS::Cookie.new({})
    refute c.secure?(req('http://x/'))
    assert c.secure?(req('https://x/'))
    assert c.secure?(req('http://x/', 'HTTP_X_FORWARDED_PROTO' => 'https')), 'Rack trusts X-Forwarded-Proto'
    refute RS::Cookie.new(secure: false).secure?(req('https://x/'))
  end

  def test_options
    ok = { client: Object.new, keyring: 'k', audience: 'a' }
    RS.new(nil, ok)
    [ok.except(:client), ok.except(:keyring), ok.except(:audience), ok.merge(secret: 'x'),
     ok.merge(ttl_seconds: 60, refresh_after_seconds: 60)].each do |bad|
      assert_raises(ArgumentError, bad.keys.inspect) { RS.new(nil, bad) }
    end
  end

  def test_session_hash
    loads = 0
    s = RS::Session.new { loads += 1; { values: { 'user' => 'alice' }, initial: '{"user":"alice"}' } }
    refute s.loaded?
    assert_equal 'alice', s[:user]
    s[:n] = 1
    assert_equal({ 'user' => 'alice', 'n' => 1 }, s.to_hash)
    s.destroy
    assert s.regenerated?
    assert s.empty?
    assert_equal 1, loads
  end

  def test_shared_service_config
    config, timeouts = Sessiontoken::ServiceConfig.split(Sessiontoken::ServiceConfig.default_text)
    assert_equal 2.0, Sessiontoken::ServiceConfig.timeout_for(timeouts, 'sessiontoken.v1.SessionTokens', 'Sign')
    assert_equal 10.0, Sessiontoken::ServiceConfig.timeout_for(timeouts, 'sessiontoken.v1.KeyAdmin', 'Rotate')
    assert_nil Sessiontoken::ServiceConfig.timeout_for(timeouts, 'other.Service', 'X')
    refute_includes config, '"timeout"'
    assert_includes config, '"retryPolicy"', 'gRPC core applies the retries'
    assert_raises(ArgumentError) do
      Sessiontoken::ServiceConfig.split('{"methodConfig":[{"name":[{"service":"s"}],"timeout":"2m"}]}')
    end
  end

  # A client that verifies every cookie as valid ({"user":42}), or as REVOKED the cookie
  # "revoked", and records what sign and revoke are sent.
  class Recorder
    attr_reader :signs, :revokes

    def initialize
      @signs = []
      @revokes = []
    end

    def verify(token:, **)
      return Struct.new(:result, :valid?).new(:REVOKED, false) if token == 'revoked'

      Struct.new(:result, :valid?, :payload, :refresh_recommended, :issued_at).new(:VALID, true, '{"user":42}', false, nil)
    end

    def sign(**args)
      @signs << args
      Struct.new(:token).new('signed')
    end

    def revoke(**args)
      @revokes << args
      :revoked
    end
  end

  # Runs block(session) behind middleware with the cookie "session=cookie" (nil: none);
  # returns [the block's value, the Set-Cookie header].
  def serve(middleware_options, cookie, &block)
    result = nil
    app = ->(env) { result = block.call(env['rack.session']); [200, {}, []] }
    mw = RS.new(app, { keyring: 'k', audience: 'a', logger: Logger.new(nil) }.merge(middleware_options))
    env = Rack::MockRequest.env_for('http://x/', cookie ? { 'HTTP_COOKIE' => "session=#{cookie}" } : {})
    _, headers, = mw.call(env)
    [result, headers['Set-Cookie']]
  end

  def test_logout_requests
    f = Recorder.new
    o = { client: f, subject_key: 'user' }
    serve(o, nil) { |s| s[:user] = 'alice' }
    serve(o, 'tok1') { |s| s[:n] = 1 } # user 42 from the cookie, a number
    serve(o, nil) { |s| s[:n] = 1 }
    assert_equal %w[alice 42] + [''], f.signs.map { |a| a[:subject] }
    assert_equal %w[k a], [f.signs[0][:keyring], f.signs[0][:audience]]

    r, cookie = serve(o, 'tok1', &:logout)
    assert_equal :revoked, r
    assert_match(/\Asession=; Max-Age=0/, cookie)
    r, cookie = serve(o, 'tok2', &:logout_everywhere)
    assert_equal :revoked, r
    assert_match(/\Asession=; Max-Age=0/, cookie)
    assert_equal [{ keyring: 'k', timeout: nil, token: 'tok1', audience: 'a' }, { keyring: 'k', timeout: nil, subject: '42' }],
                 f.revokes

    # Nothing to revoke: a REVOKED cookie (an empty session, left alone, logout only deletes),
    # no subject or no subject_key (logout_everywhere raises and changes nothing).
    f.revokes.clear
    r, cookie = serve(o, 'revoked') { |s| [s.to_hash, s.logout] }
    assert_equal [{}, nil], r
    assert_match(/\Asession=; Max-Age=0/, cookie)
    r, cookie = serve(o, nil) do |s|
      s[:n] = 1
      assert_raises(ArgumentError) { s.logout_everywhere }
      s.to_hash
    end
    assert_equal({ 'n' => 1 }, r)
    refute_nil cookie
    r, = serve({ client: f }, 'tok3') do |s|
      assert_raises(ArgumentError) { s.logout_everywhere }
      s[:n] = 2
      s.to_hash
    end
    assert_equal({ 'user' => 42, 'n' => 2 }, r)
    assert_empty f.revokes
    assert_equal '', f.signs.last[:subject], 'no subject without subject_key'
    assert_raises(ArgumentError) { RS.new(nil, client: f, keyring: 'k', audience: 'a', subject_key: '') }
  end
end
