# frozen_string_literal: true

# The e2e app under Puma's cluster mode (forked workers): each worker makes its own Client
# through the factory, after the fork. Run by test_rack_cluster_e2e.rb.
require_relative 'app'
require 'logger'
require 'sessiontoken'

class WorkerPid
  def initialize(app) = (@app = app)

  def call(env)
    status, headers, body = @app.call(env)
    headers['X-Worker'] = Process.pid.to_s
    [status, headers, body]
  end
end

use WorkerPid
use Sessiontoken::RackSession, client: -> { Sessiontoken::Client.new(ENV.fetch('SESSIONTOKEN_ADDRESS')) },
                               keyring: 'default', audience: 'shop:session', logger: Logger.new($stderr)
run ShopApp
