# frozen_string_literal: true

# Sessiontoken::Client against the real server: typed results, errors with their gRPC codes,
# revocation (and the requests it sends), and the error of a call when the service is down.
require_relative 'harness'
require 'minitest/autorun'
require 'socket'
require 'sessiontoken'

class ClientTest < Minitest::Test
  def setup
    @server = Harness::Server.new
    @client = Sessiontoken::Client.new(@server.address, keyring: 'default')
  end

  def teardown
    @client&.close
    @server&.cleanup
  end

  def test_sign_verify
    s = @client.sign(payload: 'hello', ttl_seconds: 3600, audience: 'web')
    assert_equal 3600, s.expires_at - s.issued_at
    v = @client.verify(token: s.token, audience: 'web')
    assert v.valid?
    assert_equal [:VALID, 'hello', s.key_id, false], [v.result, v.payload, v.key_id, v.refresh_recommended]
    v = @client.verify(token: s.token, audience: 'api')
    assert_equal [:WRONG_AUDIENCE, false, nil], [v.result, v.valid?, v.payload]
    assert_equal :MALFORMED, @client.verify(token: 'garbage').result
  end

  def test_batches
    signed = @client.batch_sign([{ payload: 'a', ttl_seconds: 3600, audience: 'web' },
                                 { payload: 'b', ttl_seconds: 3600, keyring: 'nope' }])
    assert_instance_of Sessiontoken::SignResult, signed[0]
    assert_instance_of Sessiontoken::Error, signed[1]
    assert_equal GRPC::Core::StatusCodes::NOT_FOUND, signed[1].code
    verified = @client.batch_verify([{ token: signed[0].token, audience: 'web' },
                                     { token: signed[0].token, audience: 'api' },
                                     { token: 'x', keyring: 'nope' }])
    assert_equal [true, 'a'], [verified[0].valid?, verified[0].payload]
    assert_equal :WRONG_AUDIENCE, verified[1].result
    assert_equal GRPC::Core::StatusCodes::NOT_FOUND, verified[2].code
  end

  def test_errors
    e = assert_raises(Sessiontoken::Error) { @client.sign(payload: 'x', ttl_seconds: 60, keyring: 'nope') }
    assert_equal GRPC::Core::StatusCodes::NOT_FOUND, e.code
    assert_equal 'SessionTokens.Sign', e.method_name
    e = assert_raises(Sessiontoken::Error) { @client.sign(payload: 'x' * 5000, ttl_seconds: 60) }
    assert_equal GRPC::Core::StatusCodes::INVALID_ARGUMENT, e.code
    assert_raises(ArgumentError) { @client.sign(payload: 'x', ttl_seconds: 1.5) }
    assert_raises(ArgumentError) { Sessiontoken::Client.new(@server.address).verify(token: 'x') }
  end

  # Service down: gRPC core retries (the shared retryPolicy) and the call fails with
  # UNAVAILABLE, not a timeout (the number of attempts is not visible from Ruby).
  def test_service_down
    port = TCPServer.open('127.0.0.1', 0) { |s| s.addr[1] }
    late = Sessiontoken::Client.new("127.0.0.1:#{port}", keyring: 'default', timeout: 30)
    e = assert_raises(Sessiontoken::Error) { late.verify(token: 'st1.x') }
    assert_equal GRPC::Core::StatusCodes::UNAVAILABLE, e.code
    late.close
  end

  # Records the request messages the client sends.
  class Recorder < GRPC::ClientInterceptor
    attr_reader :sent

    def initialize
      super
      @sent = []
    end

    def request_response(request: nil, call: nil, method: nil, metadata: nil)
      @sent << request
      yield
    end
  end

  # subject at sign, verify's subject and token id, revoke by token and by subject (REVOKED).
  def test_revoke
    rec = Recorder.new
    c = Sessiontoken::Client.new(@server.address, keyring: 'default', interceptors: [rec])
    phone, laptop, other = %w[alice alice bob].map { |u| c.sign(payload: 'p', ttl_seconds: 3600, audience: 'web', subject: u) }
    assert_equal %w[alice alice bob], rec.sent.map(&:subject)
    v = c.verify(token: phone.token, audience: 'web')
    assert_equal [:VALID, 'alice', phone.token_id], [v.result, v.subject, v.token_id]
    refute_empty phone.token_id

    # By token: that one session only.
    r = c.revoke(token: phone.token, audience: 'web')
    req = rec.sent.last
    assert_equal ['default', :token, phone.token, 'web'], [req.keyring, req.target, req.token, req.audience]
    assert_operator r.drop_after, :>=, phone.expires_at
    assert_in_delta Time.now.to_f, r.revoked_at.to_f, 60
    v = c.verify(token: phone.token, audience: 'web')
    assert_equal [:REVOKED, false, nil, nil], [v.result, v.valid?, v.payload, v.subject]
    assert c.verify(token: laptop.token, audience: 'web').valid?
    e = assert_raises(Sessiontoken::Error) { c.revoke(token: laptop.token, audience: 'api') }
    assert_equal [GRPC::Core::StatusCodes::INVALID_ARGUMENT, 'SessionTokens.Revoke'], [e.code, e.method_name]

    # By subject: every session of alice issued until now, not bob's.
    r = c.revoke(subject: 'alice')
    req = rec.sent.last
    assert_equal [:subject, 'alice', ''], [req.target, req.subject, req.token]
    assert_operator r.drop_after, :>, r.revoked_at
    assert_equal :REVOKED, c.verify(token: laptop.token, audience: 'web').result
    v = c.verify(token: other.token, audience: 'web')
    assert_equal [true, 'bob'], [v.valid?, v.subject]

    # Exactly one target, checked before anything is sent.
    n = rec.sent.size
    assert_raises(ArgumentError) { c.revoke }
    assert_raises(ArgumentError) { c.revoke(token: other.token, subject: 'bob') }
    assert_equal n, rec.sent.size
  ensure
    c&.close
  end
end
