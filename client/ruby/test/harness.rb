# frozen_string_literal: true

# Test support: the generated stubs on $LOAD_PATH ($SESSIONTOKEN_RB_STUBS, made by
# client/ruby/generate.sh), the real sessiontoken-server binary ($SESSIONTOKEN_SERVER) on
# 127.0.0.1 with a port it picks in a fresh temporary data directory with a random KEK, and
# a Rack app under a real Puma server on a free loopback port.
%w[http_proxy https_proxy HTTP_PROXY HTTPS_PROXY grpc_proxy all_proxy ALL_PROXY].each { |v| ENV.delete(v) }
ENV['no_proxy'] = ENV['NO_PROXY'] = '127.0.0.1,localhost'

stubs = ENV['SESSIONTOKEN_RB_STUBS']
$LOAD_PATH.unshift(stubs) if stubs && !stubs.empty?
$LOAD_PATH.unshift(File.expand_path('../lib', __dir__))

require 'fileutils'
require 'securerandom'
require 'tmpdir'
require 'timeout'

module Harness
  LISTEN_RE = /\Asessiontoken-server listening on (127\.0\.0\.1:\d+)\z/.freeze

  # A running sessiontoken-server.
  class Server
    attr_reader :address

    def initialize
      bin = ENV['SESSIONTOKEN_SERVER']
      raise 'SESSIONTOKEN_SERVER is not set (ctest sets it)' if bin.nil? || bin.empty?

      @dir = Dir.mktmpdir('sessiontoken-rb-')
      kek = File.join(@dir, 'kek.hex')
      File.write(kek, "#{SecureRandom.hex(32)}\n", perm: 0o600)
      @log = File.join(@dir, 'server.log')
      env = ENV.to_h.reject { |k, _| k == 'SESSIONTOKEN_KEK' }
      out_r, out_w = IO.pipe
      @pid = Process.spawn(env, bin, '--listen=127.0.0.1:0', "--data_dir=#{File.join(@dir, 'data')}",
                           "--kek_file=#{kek}", out: out_w, err: @log, unsetenv_others: true)
      out_w.close
      line = Timeout.timeout(15) { out_r.gets }.to_s.chomp
      m = LISTEN_RE.match(line)
      raise "server did not announce its port (#{line.inspect}):\n#{log}" unless m

      @address = m[1]
      @drain = Thread.new { out_r.read rescue nil } # rubocop:disable Style/RescueModifier
    end

    def log
      File.exist?(@log) ? File.read(@log) : ''
    end

    # SIGTERM, then SIGKILL after 15 s. Idempotent.
    def stop
      return unless @pid

      Process.kill('TERM', @pid)
      begin
        Timeout.timeout(15) { Process.wait(@pid) }
      rescue Timeout::Error
        Process.kill('KILL', @pid)
        Process.wait(@pid)
      end
      @pid = nil
    end

    def cleanup
      stop
      FileUtils.rm_rf(@dir)
    end
  end

  # A Rack app under Puma (single mode, threads) on 127.0.0.1 and a free port.
  # One HTTP response of the app: status (Integer), body, the `session` Set-Cookie line (nil
  # when none) and the cookie's value; `headers` is the Net::HTTP response. Destructures like
  # an array (status, body, set_cookie, value).
  Response = Struct.new(:status, :body, :set_cookie, :value, :headers) do
    def to_ary
      to_a
    end
  end

  # GET or POST `path` on `base` with the session cookie (if any); more than one session
  # Set-Cookie in one response is an error.
  def self.request(base, method, path, cookie = nil)
    require 'net/http'
    uri = URI("#{base}#{path}")
    req = method == :get ? Net::HTTP::Get.new(uri) : Net::HTTP::Post.new(uri, 'Content-Type' => 'text/plain')
    req['Cookie'] = "session=#{cookie}" if cookie
    res = Net::HTTP.start(uri.host, uri.port) { |http| http.request(req) }
    lines = (res.get_fields('Set-Cookie') || []).flat_map { |v| v.split("\n") }.select { |l| l.start_with?('session=') }
    raise "two session cookies: #{lines.inspect}" if lines.size > 1

    line = lines.first
    Response.new(res.code.to_i, res.body, line, line && line[/\Asession=([^;]*)/, 1], res)
  end

  class Web
    attr_reader :base

    def initialize(app)
      require 'puma'
      require 'puma/events'
      require 'puma/server'
      @server = Puma::Server.new(app, Puma::Events.strings, min_threads: 1, max_threads: 4)
      listener = @server.add_tcp_listener('127.0.0.1', 0)
      @base = "http://127.0.0.1:#{listener.addr[1]}"
      @thread = @server.run
    end

    def stop
      @server.stop(true)
    end
  end
end
