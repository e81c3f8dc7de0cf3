# frozen_string_literal: true

# Cookie and refresh rules without a server: RackSession.decide for each case, the Set-Cookie
# values, option checks, the shared service config, and the session hash's key handling.
$LOAD_PATH.unshift(File.expand_path('../lib', __dir__))
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
end
