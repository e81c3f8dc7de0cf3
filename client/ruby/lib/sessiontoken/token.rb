# frozen_string_literal: true

require 'base64'
require 'digest'

module Sessiontoken
  # Parser of the public fields of native `st1` tokens (docs/token-format.md), with the
  # server's strict syntax rules. It cannot check the MAC (it holds no key): use it for
  # display and diagnosis (which key signed a cookie, when it expires), never to trust a
  # token. Only Client#verify says whether a token is genuine.
  module Token
    MAX_TOKEN_CHARS = 4095
    MAX_PAYLOAD_BYTES = 3000
    PREFIX = 'st1.'
    FIXED_BYTES = 56 # key id 4 + issued-at 8 + expires-at 8 + audience tag 4 + MAC 32
    MAC_BYTES = 32

    Native = Struct.new(:key_id, :issued_at, :expires_at, :audience_tag, :payload, :mac,
                        keyword_init: true)

    # The token's fields (times in Unix seconds, byte strings binary), or nil if MALFORMED.
    def self.parse_native(token)
      return nil unless token.is_a?(String) && token.length <= MAX_TOKEN_CHARS && token.start_with?(PREFIX)

      b64 = token[PREFIX.length..]
      return nil unless b64.match?(/\A[A-Za-z0-9_-]*\z/) && b64.length % 4 != 1

      body = Base64.urlsafe_decode64(b64)
      # Canonical encoding only: the unused low bits of the last character must be zero.
      return nil unless Base64.urlsafe_encode64(body, padding: false) == b64
      return nil if body.bytesize < FIXED_BYTES || body.bytesize - FIXED_BYTES > MAX_PAYLOAD_BYTES

      key_id, issued_at, expires_at = body.unpack('Nq>q>')
      return nil if issued_at.negative? || expires_at < issued_at

      Native.new(key_id: key_id, issued_at: issued_at, expires_at: expires_at,
                 audience_tag: body.byteslice(20, 4), payload: body.byteslice(24, body.bytesize - FIXED_BYTES),
                 mac: body.byteslice(body.bytesize - MAC_BYTES, MAC_BYTES))
    rescue ArgumentError
      nil
    end

    # The 4-byte audience tag an st1 token carries: SHA-256(audience)[0, 4].
    def self.native_audience_tag(audience)
      Digest::SHA256.digest(audience.b).byteslice(0, 4)
    end
  end
end
