# frozen_string_literal: true

# Revocation through Sessiontoken::RackSession (subject_key) against the real server binary and
# a real Sinatra app under Puma:
# * log in as the same user on two "devices" and as another user on a third; log out
#   everywhere on one: the other device's cookie is refused on its next request, the other
#   user is untouched, and a new login works;
# * logout revokes the current session token: its cookie value, replayed (stolen), is refused;
# * the service down during a logout: the cookie is deleted anyway, the app hears the error,
#   which is logged without the cookie's value.
require_relative 'harness'
require_relative 'app'
require 'delegate'
require 'json'
require 'logger'
require 'minitest/autorun'
require 'stringio'
require 'sessiontoken'

class RackRevocationTest < Minitest::Test
  KEYRING = 'default'
  AUDIENCE = 'shop:session'

  # The client, except that the service goes away just before revoke.
  class StopBeforeRevoke < SimpleDelegator
    def initialize(client, server)
      super(client)
      @server = server
    end

    def revoke(**args)
      @server.stop
      __getobj__.revoke(**args)
    end
  end

  def setup
    @server = Harness::Server.new
    @client = Sessiontoken::Client.new(@server.address, keyring: KEYRING)
    @logs = StringIO.new
    @web = start_web(@client)
  end

  def start_web(client)
    logger = Logger.new(@logs)
    logger.level = Logger::DEBUG
    app = Rack::Builder.new do
      use Sessiontoken::RackSession, client: -> { client }, keyring: KEYRING, audience: AUDIENCE,
                                     ttl_seconds: 3600, logger: logger, subject_key: 'user', timeout: 3
      run ShopApp
    end
    Harness::Web.new(app)
  end

  def teardown
    @web&.stop
    @client&.close
    @server&.cleanup
  end

  def request(path, cookie = nil, web = @web) = Harness.request(web.base, :post, path, cookie)

  def user(cookie)
    JSON.parse(Harness.request(@web.base, :get, '/whoami', cookie).body)['session']['user']
  end

  def login(user, web = @web)
    r = request("/login?user=#{user}", nil, web)
    tok = Sessiontoken::Token.parse_native(r.value)
    assert_equal [2, user], [tok&.version, tok&.subject], 'the cookie carries the subject'
    r.value
  end

  def test_log_out_everywhere
    phone = login('alice')
    laptop = login('alice')
    other = login('bob')
    v = @client.verify(token: laptop, audience: AUDIENCE)
    assert_equal [:VALID, 'alice'], [v.result, v.subject]

    r = request('/logout-everywhere', phone)
    assert_equal({ 'revoked' => true }, JSON.parse(r.body))
    assert_match(/\Asession=; Max-Age=0; /, r.set_cookie, 'the device that logged out keeps no cookie')
    # The other device: refused on its next request (an empty session, cookie left alone).
    r = Harness.request(@web.base, :get, '/whoami', laptop)
    assert_equal({ 'session' => {}, 'unverified' => false }, JSON.parse(r.body))
    assert_nil r.set_cookie
    assert_equal :REVOKED, @client.verify(token: laptop, audience: AUDIENCE).result
    assert_includes @logs.string, 'rejected: REVOKED'
    assert_equal 'bob', user(other)
    # Tokens issued after the cutoff (whole seconds) are valid: a new login works.
    sleep 1.1
    assert_equal 'alice', user(login('alice'))
    [phone, laptop].each { |c| refute_includes @logs.string, c[4, 20] }
  end

  def test_logout_revokes_the_current_token
    stolen = login('carol')
    r = request('/logout-here', stolen)
    assert_equal({ 'revoked' => true }, JSON.parse(r.body))
    assert_match(/\Asession=; Max-Age=0; /, r.set_cookie)
    assert_nil user(stolen), 'a logged-out cookie must not be accepted'
    assert_equal :REVOKED, @client.verify(token: stolen, audience: AUDIENCE).result
    # Without a valid cookie there is nothing to revoke; without a subject, log out
    # everywhere fails and changes nothing.
    assert_equal({ 'revoked' => false }, JSON.parse(request('/logout-here').body))
    counter = request('/counter').value
    r = request('/logout-everywhere', counter)
    assert_equal [false, nil], [JSON.parse(r.body)['revoked'], r.set_cookie]
    assert_includes JSON.parse(r.body)['error'], 'the session has no user'
  end

  def test_logout_with_the_service_down_still_deletes_the_cookie
    server = Harness::Server.new
    client = Sessiontoken::Client.new(server.address, keyring: KEYRING, timeout: 3)
    web = start_web(StopBeforeRevoke.new(client, server))
    dave = login('dave', web)
    r = request('/logout-here', dave, web)
    body = JSON.parse(r.body)
    refute body['revoked']
    assert_includes %w[UNAVAILABLE DEADLINE_EXCEEDED], body['error']
    assert_match(/\Asession=; Max-Age=0; /, r.set_cookie, 'the cookie is deleted even so')
    assert_includes @logs.string, 'logout: not revoked (the cookie is deleted anyway)'
    refute_includes @logs.string, dave[4, 20]
  ensure
    web&.stop
    client&.close
    server&.cleanup
  end
end
