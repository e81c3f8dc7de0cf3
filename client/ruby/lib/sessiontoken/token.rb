# frozen_string_literal: true

require 'base64'
require 'digest'

module Sessiontoken
  # Parser of the public fields of native tokens, `st2` (what Sign issues: subject, token id,
  # payload in clear or sealed) and `st1` (older tokens), per docs/token-format.md, with the
  # server's strict syntax rules. It cannot check the MAC (it holds no key): use it for
  # display and diagnosis (which key signed a cookie, when it expires), never to trust a
  # token. Only Client#verify says whether a token is genuine.
  module Token
    MAX_TOKEN_CHARS = 4095
    MAX_PAYLOAD_BYTES = 3000
    PREFIX = 'st1.'
    PREFIX_V2 = 'st2.'
    FIXED_BYTES = 56 # key id 4 + issued-at 8 + expires-at 8 + audience tag 4 + MAC 32
    MAC_BYTES = 32
    HEADER_BYTES = 24
    V2_HEADER_BYTES = HEADER_BYTES + 1 + 16 + 1 # + flags, token id, subject length
    MAX_SUBJECT_BYTES = 128
    SEAL_OVERHEAD = 12 + 16 # AES-GCM nonce + tag

    # payload: in clear, or for a sealed st2 token nonce | ciphertext | GCM tag.
    Native = Struct.new(:key_id, :issued_at, :expires_at, :audience_tag, :payload, :mac,
                        :version, :sealed, :token_id, :subject, keyword_init: true)

    # st2 fields after the st1 header: {start:, sealed:, token_id:, subject:}, or nil.
    def self.v2_fields(body)
      return nil if body.bytesize < V2_HEADER_BYTES + MAC_BYTES

      flags = body.getbyte(HEADER_BYTES)
      n = body.getbyte(V2_HEADER_BYTES - 1)
      sealed = flags == 1
      return nil if flags > 1 || n > MAX_SUBJECT_BYTES
      return nil if body.bytesize < V2_HEADER_BYTES + n + MAC_BYTES + (sealed ? SEAL_OVERHEAD : 0)

      { start: V2_HEADER_BYTES + n, sealed: sealed, subject: body.byteslice(V2_HEADER_BYTES, n),
        token_id: Base64.urlsafe_encode64(body.byteslice(HEADER_BYTES + 1, 16), padding: false) }
    end

    # The token's fields (times in Unix seconds, byte strings binary), or nil if MALFORMED.
    def self.parse_native(token)
      return nil unless token.is_a?(String) && token.length <= MAX_TOKEN_CHARS
      return nil unless token.start_with?(PREFIX, PREFIX_V2)

      b64 = token[PREFIX.length..]
      return nil unless b64.match?(/\A[A-Za-z0-9_-]*\z/) && b64.length % 4 != 1

      body = Base64.urlsafe_decode64(b64)
      # Canonical encoding only: the unused low bits of the last character must be zero.
      return nil unless Base64.urlsafe_encode64(body, padding: false) == b64
      fields = if token.start_with?(PREFIX_V2)
                 v2_fields(body)&.merge(version: 2)
               elsif body.bytesize >= FIXED_BYTES && body.bytesize - FIXED_BYTES <= MAX_PAYLOAD_BYTES
                 { start: HEADER_BYTES, version: 1, sealed: false, token_id: '', subject: ''.b }
               end
      return nil if fields.nil?

      key_id, issued_at, expires_at = body.unpack('Nq>q>')
      return nil if issued_at.negative? || expires_at < issued_at

      start = fields.delete(:start)
      Native.new(key_id: key_id, issued_at: issued_at, expires_at: expires_at,
                 audience_tag: body.byteslice(20, 4),
                 payload: body.byteslice(start, body.bytesize - MAC_BYTES - start),
                 mac: body.byteslice(body.bytesize - MAC_BYTES, MAC_BYTES), **fields)
    rescue ArgumentError
      nil
    end

    # The 4-byte audience tag an st1 token carries: SHA-256(audience)[0, 4].
    def self.native_audience_tag(audience)
      Digest::SHA256.digest(audience.b).byteslice(0, 4)
    end
  end
end
