# frozen_string_literal: true

# The Rack middleware under Puma's cluster mode (two forked workers, the `puma` command as a
# user runs it): gRPC channels do not survive fork(), so each worker makes its own Client
# through the factory. A login in one worker is honoured by the other; logout deletes it.
require_relative 'harness'
require 'json'
require 'minitest/autorun'
require 'net/http'
require 'sessiontoken'

class RackClusterTest < Minitest::Test
  def setup
    @server = Harness::Server.new
    env = { 'SESSIONTOKEN_ADDRESS' => @server.address,
            'RUBYLIB' => [File.expand_path('../lib', __dir__), ENV['SESSIONTOKEN_RB_STUBS']].compact.join(':') }
    @out_r, out_w = IO.pipe
    # Puma's banner is UTF-8; under the POSIX locale Ruby would read it as US-ASCII.
    @out_r.set_encoding(Encoding::UTF_8)
    @pid = Process.spawn(env, 'puma', '-w', '2', '-t', '1:2', '-b', 'tcp://127.0.0.1:0',
                         File.expand_path('cluster.ru', __dir__), out: out_w, err: out_w, pgroup: true)
    out_w.close
    @output = +''
    port = nil
    Timeout.timeout(60) do
      until port
        line = (@out_r.gets or raise "puma exited:\n#{@output}").scrub
        @output << line
        port = line[%r{Listening on http://127\.0\.0\.1:(\d+)}, 1]
      end
    end
    @base = "http://127.0.0.1:#{port}"
    @drain = Thread.new { @out_r.each_line { |l| @output << l } }
  end

  def teardown
    if @pid
      Process.kill('TERM', @pid)
      begin
        Timeout.timeout(30) { Process.wait(@pid) }
      rescue Timeout::Error
        Process.kill('KILL', -@pid)
        Process.wait(@pid)
      end
    end
    @server&.cleanup
  end

  def request(method, path, cookie = nil)
    Harness.request(@base, method, path, cookie)
  end

  def test_forked_workers
    res = request(:post, '/login?user=alice')
    cookie = res.value
    assert_equal 200, res.status, @output
    refute_nil cookie, @output
    workers = {}
    # New connections are spread over the workers; ask until both answered (bounded).
    100.times do
      res = request(:get, '/whoami', cookie)
      assert_equal({ 'user' => 'alice' }, JSON.parse(res.body)['session'], @output)
      workers[res.headers['X-Worker']] = true
      break if workers.size == 2
    end
    assert_equal 2, workers.size, "one worker answered every request:\n#{@output}"
    res = request(:post, '/logout', cookie)
    assert_equal [204, ''], [res.status, res.value]
    refute_match(/cannot verify|ERROR/, @output)
  end
end
