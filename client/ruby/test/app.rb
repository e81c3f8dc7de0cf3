# frozen_string_literal: true

# The Sinatra application of the end-to-end test: login (a new session), whoami, a counter,
# a nested change, logout, and the revocation logouts (logout here, log out everywhere). Sessions come from Sessiontoken::RackSession, not Sinatra's own.
require 'json'
require 'sinatra/base'

class ShopApp < Sinatra::Base
  set :sessions, false
  set :show_exceptions, false
  set :raise_errors, true
  set :host_authorization, { permitted_hosts: [] } if respond_to?(:host_authorization)

  post '/login' do
    env['rack.session.options'][:renew] = true
    session[:user] = params['user']
    'ok'
  end

  get '/whoami' do
    content_type :json
    JSON.generate(session: session.to_hash, unverified: session.unverified?)
  end

  post '/counter' do
    session[:n] = (session[:n] || 0) + 1
    session[:n].to_s
  end

  post '/cart' do
    session[:cart] ||= { 'items' => [] }
    session[:cart]['items'] << params['item'] if params['item'] # in place: a nested change
    'ok'
  end

  post '/skip' do
    session[:skipped] = true
    env['rack.session.options'][:skip] = true
    'ok'
  end

  post '/big' do
    session[:blob] = 'x' * 3000
    'ok'
  end

  post '/logout' do
    session.destroy
    status 204
  end

  # {"revoked": true/false, "error": the gRPC code name when the revocation failed}
  post '/logout-here' do
    revoked { session.logout }
  end

  post '/logout-everywhere' do
    revoked { session.logout_everywhere }
  end

  def revoked
    content_type :json
    JSON.generate(revoked: !yield.nil?)
  rescue Sessiontoken::Error => e
    JSON.generate(revoked: false, error: Sessiontoken::Error.code_name(e.code))
  rescue ArgumentError => e
    JSON.generate(revoked: false, error: e.message)
  end
end
