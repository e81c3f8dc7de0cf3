# frozen_string_literal: true

require 'grpc'
require 'sessiontoken/v1/tokens_services_pb'
require 'sessiontoken/v1/admin_services_pb'
require 'sessiontoken/service_config'

module Sessiontoken
  # A failed call: the service could not be reached, refused the request or failed. A token
  # that does not verify is not an error (VerifyResult#result says why).
  class Error < StandardError
    attr_reader :method_name, :code, :details

    def initialize(method_name, code, details)
      @method_name = method_name
      @code = code
      @details = details
      super("sessiontoken: #{method_name} failed: #{Error.code_name(code)}: #{details}")
    end

    def self.code_name(code)
      GRPC::Core::StatusCodes.constants.find { |c| GRPC::Core::StatusCodes.const_get(c) == code }&.to_s || code.to_s
    end
  end

  # token_id: the v2 token's random id (what a revocation of this token names).
  SignResult = Struct.new(:token, :key_id, :issued_at, :expires_at, :token_id, keyword_init: true)
  # result is a Symbol (:VALID, :MALFORMED, :EXPIRED, :BAD_SIGNATURE..., :REVOKED: genuine but
  # its session was revoked); payload and subject are set only when valid; refresh_recommended:
  # valid, but signed by a key that is no longer the primary; token_id: of a v2 token.
  VerifyResult = Struct.new(:result, :valid, :payload, :key_id, :issued_at, :expires_at,
                            :refresh_recommended, :subject, :token_id, keyword_init: true) do
    alias_method :valid?, :valid
  end
  # A stored revocation: Verify answers REVOKED for the tokens it matches; the entry is dropped
  # after drop_after, when none of them can be valid any more.
  RevokeResult = Struct.new(:revoked_at, :drop_after, keyword_init: true)
  RotateResult = Struct.new(:new_key_id, :previous_primary_key_id, :revision, keyword_init: true)

  # Client of the sessiontoken service: SessionTokens (sign, verify, batches, revoke) and the KeyAdmin calls an
  # application or its tests need (rotate, primary_key_id). Deadlines and retries follow the
  # service config shared by every client. Thread-safe. gRPC channels do not survive fork():
  # create a Client in each process (Sessiontoken::RackSession takes a factory for that).
  class Client
    TOKENS = 'sessiontoken.v1.SessionTokens'
    ADMIN = 'sessiontoken.v1.KeyAdmin'
    DEFAULT_ADDRESS = '127.0.0.1:50051'

    attr_reader :address, :keyring

    # address: host:port. keyring: default keyring of calls that name none. timeout: seconds,
    # the deadline of every call (default: the method's timeout in the service config).
    # credentials: GRPC::Core::ChannelCredentials (default: plaintext). service_config: JSON
    # text replacing proto/sessiontoken/v1/service_config.json. interceptors: GRPC::ClientInterceptor
    # instances, given to the stubs.
    def initialize(address = DEFAULT_ADDRESS, keyring: nil, timeout: nil, credentials: :this_channel_is_insecure,
                   service_config: nil, channel_args: {}, interceptors: [])
      @address = address
      @keyring = keyring
      @timeout = timeout
      grpc_config, @timeouts = ServiceConfig.split(service_config || ServiceConfig.default_text)
      args = {
        'grpc.service_config' => grpc_config,
        'grpc.enable_retries' => 1,
        # Reconnect quickly after the service restarts (gRPC otherwise backs off up to 120 s).
        'grpc.initial_reconnect_backoff_ms' => 200,
        'grpc.max_reconnect_backoff_ms' => 2000
      }.merge(channel_args)
      @tokens = Sessiontoken::V1::SessionTokens::Stub.new(address, credentials, channel_args: args,
                                                                                interceptors: interceptors)
      @admin = Sessiontoken::V1::KeyAdmin::Stub.new(address, credentials, channel_args: args, interceptors: interceptors)
    end

    def close
      [@tokens, @admin].each { |s| s.instance_variable_get(:@ch)&.close }
    end

    # Issues a token for payload (a String, sent as bytes) under the keyring's primary key.
    # subject: whose session it is (e.g. the user id): returned by verify, what
    # revoke(subject:) matches.
    def sign(payload:, ttl_seconds:, audience: '', subject: '', keyring: nil, timeout: nil)
      sign_result(call(@tokens, TOKENS, :sign, sign_request(payload, ttl_seconds, audience, keyring, subject), timeout))
    end

    # Checks a token. Raises Sessiontoken::Error only when the call failed, never for a token
    # that is not valid.
    def verify(token:, audience: '', max_age_seconds: nil, keyring: nil, timeout: nil)
      verify_result(call(@tokens, TOKENS, :verify, verify_request(token, audience, max_age_seconds, keyring), timeout))
    end

    # Many sign calls in one round trip: items are hashes of #sign's arguments; returns, in
    # order, a SignResult or a Sessiontoken::Error (that item failed) for each.
    def batch_sign(items, timeout: nil)
      reqs = items.map do |i|
        sign_request(i.fetch(:payload), i.fetch(:ttl_seconds), i.fetch(:audience, ''), i[:keyring], i.fetch(:subject, ''))
      end
      r = call(@tokens, TOKENS, :batch_sign, V1::BatchSignRequest.new(items: reqs), timeout)
      batch_items('SessionTokens.BatchSign', r, reqs.size) { |resp| sign_result(resp) }
    end

    # Many verify calls in one round trip: a VerifyResult or a Sessiontoken::Error per item.
    def batch_verify(items, timeout: nil)
      reqs = items.map do |i|
        verify_request(i.fetch(:token), i.fetch(:audience, ''), i[:max_age_seconds], i[:keyring])
      end
      r = call(@tokens, TOKENS, :batch_verify, V1::BatchVerifyRequest.new(items: reqs), timeout)
      batch_items('SessionTokens.BatchVerify', r, reqs.size) { |resp| verify_result(resp) }
    end

    # Revokes one session (token:, with the audience it was signed for) or every session of a
    # subject issued until now (subject:, "log out everywhere"); exactly one of them. A token
    # that does not verify is INVALID_ARGUMENT; revoking a token again succeeds.
    def revoke(token: nil, audience: '', subject: nil, keyring: nil, timeout: nil)
      r = call(@tokens, TOKENS, :revoke, revoke_request(token, audience, subject, keyring), timeout)
      RevokeResult.new(revoked_at: time_of(r.revoked_at), drop_after: time_of(r.drop_after))
    end

    # Adds a key to the keyring (an operator's call; never retried).
    def rotate(keyring: nil, promote_now: false, timeout: nil)
      r = call(@admin, ADMIN, :rotate, V1::RotateRequest.new(keyring: keyring_of(keyring), promote_now: promote_now),
               timeout)
      RotateResult.new(new_key_id: r.new_key&.key_id, previous_primary_key_id: r.previous_primary_key_id,
                       revision: r.revision)
    end

    # The id of the keyring's primary key (KeyAdmin.ListKeys).
    def primary_key_id(keyring: nil, timeout: nil)
      call(@admin, ADMIN, :list_keys, V1::ListKeysRequest.new(keyring: keyring_of(keyring)), timeout).primary_key_id
    end

    private

    def sign_request(payload, ttl_seconds, audience, keyring, subject)
      raise ArgumentError, 'ttl_seconds must be a positive Integer' unless ttl_seconds.is_a?(Integer) && ttl_seconds.positive?

      V1::SignRequest.new(keyring: keyring_of(keyring), payload: payload.to_s.b,
                          ttl: Google::Protobuf::Duration.new(seconds: ttl_seconds), audience: audience,
                          subject: subject.to_s)
    end

    def sign_result(r)
      SignResult.new(token: r.token, key_id: r.key_id, issued_at: time_of(r.issued_at), expires_at: time_of(r.expires_at),
                     token_id: r.token_id)
    end

    def revoke_request(token, audience, subject, keyring)
      token = nil if token == ''
      subject = nil if subject == ''
      raise ArgumentError, 'revoke: exactly one of token: and subject:' if token.nil? == subject.nil?

      req = V1::RevokeRequest.new(keyring: keyring_of(keyring))
      if token
        req.token = token.to_s
        req.audience = audience.to_s
      else
        req.subject = subject.to_s
      end
      req
    end

    def verify_request(token, audience, max_age_seconds, keyring)
      req = V1::VerifyRequest.new(keyring: keyring_of(keyring), token: token.to_s, audience: audience)
      req.max_age = Google::Protobuf::Duration.new(seconds: Integer(max_age_seconds)) if max_age_seconds
      req
    end

    def verify_result(r)
      valid = r.result == :VALID
      VerifyResult.new(result: r.result, valid: valid, payload: valid ? r.payload : nil,
                       key_id: r.key_id.zero? ? nil : r.key_id, issued_at: time_of(r.issued_at),
                       expires_at: time_of(r.expires_at), refresh_recommended: valid && r.refresh_recommended,
                       subject: valid ? r.subject : nil, token_id: r.token_id.empty? ? nil : r.token_id)
    end

    def batch_items(method, response, expected)
      unless response.items.size == expected
        raise Error.new(method, GRPC::Core::StatusCodes::INTERNAL,
                        "expected #{expected} items in the response, got #{response.items.size}")
      end
      response.items.map { |it| it.code.zero? ? yield(it.response) : Error.new(method, it.code, it.message) }
    end

    def keyring_of(keyring)
      k = keyring || @keyring
      raise ArgumentError, 'keyring required (or give the Client a default keyring)' if k.nil? || k.empty?

      k
    end

    def time_of(ts)
      ts && Time.at(ts.seconds, ts.nanos, :nsec)
    end

    def call(stub, service, rpc, request, timeout)
      method = rpc.to_s.split('_').map(&:capitalize).join
      seconds = timeout || @timeout || ServiceConfig.timeout_for(@timeouts, service, method)
      opts = seconds ? { deadline: Time.now + seconds } : {}
      stub.public_send(rpc, request, **opts)
    rescue GRPC::BadStatus => e
      raise Error.new("#{service.split('.').last}.#{method}", e.code, e.details)
    end
  end
end
