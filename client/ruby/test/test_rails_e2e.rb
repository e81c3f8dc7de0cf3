# frozen_string_literal: true

# A Rails 6.1 application (Debian's ruby-railties, ruby-actionpack) with
# `config.session_store Sessiontoken::RackSession, ...`, under Puma on 127.0.0.1, against the
# real sessiontoken-server: login (reset_session, as Rails apps do), the session persists,
# rotation re-issues the cookie under the new key id, a tampered cookie gives no session,
# logout (reset_session) deletes the cookie, service down fails closed.
require_relative 'harness'
require 'base64'
require 'json'
require 'logger'
require 'minitest/autorun'
require 'net/http'
require 'stringio'
require 'tmpdir'
require 'rails'
require 'action_controller/railtie'
require 'sessiontoken'

SERVER = Harness::Server.new
CLIENT = Sessiontoken::Client.new(SERVER.address, keyring: 'default')
LOGS = StringIO.new

class ShopRails < Rails::Application
  config.root = Dir.mktmpdir('sessiontoken-rails-')
  config.eager_load = false
  config.logger = Logger.new(nil)
  config.secret_key_base = 'not used for sessions: the sessiontoken service signs them'
  config.hosts.clear
  config.session_store Sessiontoken::RackSession, client: -> { CLIENT }, keyring: 'default',
                                                  audience: 'rails:session', logger: Logger.new(LOGS)
  routes.append do
    post '/login' => 'shop#login'
    get '/whoami' => 'shop#whoami'
    post '/logout' => 'shop#logout'
  end
end

class ShopController < ActionController::Base
  def login
    reset_session # a new session at login (session fixation)
    session[:user] = params[:user]
    render plain: 'ok'
  end

  def whoami
    render json: { user: session[:user], unverified: session.unverified? }
  end

  def logout
    reset_session
    head :no_content
  end
end

ShopRails.initialize!

class RailsJourneyTest < Minitest::Test
  def setup
    @web = Harness::Web.new(ShopRails)
  end

  def teardown
    @web.stop
  end

  def request(method, path, cookie = nil)
    Harness.request(@web.base, method, path, cookie)
  end

  def test_journey
    assert_includes ShopRails.middleware.map(&:klass), Sessiontoken::RackSession
    status, _, line, cookie = request(:post, '/login?user=alice')
    assert_equal 200, status
    refute_nil line, 'login sets the session cookie'
    assert_equal 'alice', JSON.parse(Sessiontoken::Token.parse_native(cookie).payload)['user']

    status, body, line, = request(:get, '/whoami', cookie)
    assert_equal [200, { 'user' => 'alice', 'unverified' => false }, nil], [status, JSON.parse(body), line]

    rot = CLIENT.rotate
    _, body, line, fresh = request(:get, '/whoami', cookie)
    assert_equal 'alice', JSON.parse(body)['user']
    refute_nil line, 'the cookie is re-issued after a rotation'
    assert_equal rot.new_key_id, Sessiontoken::Token.parse_native(fresh).key_id

    raw = Base64.urlsafe_decode64(fresh[4..])
    header = raw.bytesize - 32 - Sessiontoken::Token.parse_native(fresh).payload.bytesize
    forged = fresh[0, 4] + Base64.urlsafe_encode64(raw.byteslice(0, header) + '{"user":"admin"}' +
                                                   raw.byteslice(-32, 32), padding: false)
    assert_nil JSON.parse(request(:get, '/whoami', forged)[1])['user']

    status, _, line, = request(:post, '/logout', fresh)
    assert_equal 204, status
    assert_match(/\Asession=; Max-Age=0; /, line)

    SERVER.stop
    status, body, line, = request(:get, '/whoami', fresh)
    assert_equal [200, { 'user' => nil, 'unverified' => true }, nil], [status, JSON.parse(body), line]
    assert_includes LOGS.string, 'cannot verify the session cookie'
    refute_includes LOGS.string, fresh[4, 20]
  end
end

Minitest.after_run do
  CLIENT.close
  SERVER.cleanup
end
