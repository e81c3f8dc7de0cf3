# frozen_string_literal: true

# Sessiontoken::Token.parse_native against the shared vectors (tests/vectors/native_v1.json and
# native_v2.json, made by the independent reference implementations native_v1.py and
# native_v2.py) and every MALFORMED rule of docs/token-format.md. No server.
$LOAD_PATH.unshift(File.expand_path('../lib', __dir__))
require 'base64'
require 'json'
require 'minitest/autorun'
require 'openssl'
require 'sessiontoken/token'

class TokenVectorsTest < Minitest::Test
  VECTORS = File.expand_path('../../../tests/vectors', __dir__)
  T = Sessiontoken::Token

  def vectors(name = 'native_v1.json', format = 'st1')
    doc = JSON.parse(File.read(File.join(VECTORS, name)))
    assert_equal format, doc['format']
    assert_operator doc['vectors'].size, :>=, 5
    doc['vectors']
  end

  def b64(bytes) = Base64.urlsafe_encode64(bytes, padding: false)

  def unhex(hex) = [hex].pack('H*')

  # The MAC's (and the seal's) prefix of docs/token-format.md: "st1." or "st2.", then the
  # audience with its length.
  def bound(prefix, audience) = prefix.b + [audience.bytesize].pack('N') + audience

  # Parses v['token'] and checks what every version carries (version, key id, times, audience
  # tag, MAC, by the rule of docs/token-format.md: test only, the library holds no keys).
  # Returns the parsed token and the decoded body.
  def check_vector(v, version)
    t = T.parse_native(v['token'])
    refute_nil t, v['name']
    assert_equal [version, v['key_id'], v['issued_at'], v['expires_at']],
                 [t.version, t.key_id, t.issued_at, t.expires_at], v['name']
    audience = unhex(v['audience_hex'])
    assert_equal T.native_audience_tag(audience), t.audience_tag, v['name']
    body = Base64.urlsafe_decode64(v['token'][4..])
    signed = bound(v['token'][0, 4], audience) + body.byteslice(0, body.bytesize - 32)
    assert_equal OpenSSL::HMAC.digest('SHA256', unhex(v['key_hex']), signed), t.mac, v['name']
    [t, body]
  end

  def test_vectors
    vectors.each do |v|
      t, = check_vector(v, 1)
      assert_equal v['payload_hex'], t.payload.unpack1('H*'), v['name']
      assert_equal [false, '', ''.b], [t.sealed, t.token_id, t.subject], "#{v['name']}: no st2 fields"
    end
  end

  def test_v2_vectors
    all = vectors('native_v2.json', 'st2')
    assert_operator all.count { |v| v['sealed'] }, :>=, 4
    all.each do |v|
      t, body = check_vector(v, 2)
      assert_equal [v['subject_hex'], v['token_id'], v['sealed']],
                   [t.subject.unpack1('H*'), t.token_id, t.sealed], v['name']
      if v['sealed']
        check_sealed(v, t, body)
      else
        assert_equal v['payload_hex'], t.payload.unpack1('H*'), v['name']
      end
    end
  end

  # The parser reports nonce | ciphertext | tag, which does not show the plaintext and opens
  # (test only) with the sealing key and associated data of docs/token-format.md.
  def check_sealed(v, t, body)
    plain = unhex(v['payload_hex'])
    assert_equal plain.bytesize + 12 + 16, t.payload.bytesize, v['name']
    assert_equal v['nonce_hex'], t.payload.byteslice(0, 12).unpack1('H*'), v['name']
    refute_includes body, plain.byteslice(0, 8), "#{v['name']}: payload in clear" if plain.bytesize >= 8
    cipher = OpenSSL::Cipher.new('aes-256-gcm').decrypt
    cipher.key = OpenSSL::KDF.hkdf(unhex(v['key_hex']), salt: '', info: 'sessiontoken st2 payload seal',
                                                        length: 32, hash: 'SHA256')
    cipher.iv = t.payload.byteslice(0, 12)
    cipher.auth_tag = t.payload.byteslice(-16, 16)
    header = body.byteslice(0, body.bytesize - 32 - t.payload.bytesize)
    cipher.auth_data = bound('st2.', unhex(v['audience_hex'])) + header
    sealed = t.payload.byteslice(12, t.payload.bytesize - 28)
    opened = (sealed.empty? ? ''.b : cipher.update(sealed)) + cipher.final # update refuses ''
    assert_equal v['payload_hex'], opened.unpack1('H*'), v['name']
  end

  def test_malformed
    good = vectors.find { |v| v['name'] == 'hello' }['token']
    refute_nil T.parse_native(good)
    body = Base64.urlsafe_decode64(good[4..])
    with_times = ->(iat, exp) { 'st1.' + b64(body.byteslice(0, 4) + [iat, exp].pack('q>q>') + body.byteslice(20..)) }
    refute_nil T.parse_native(with_times.call(5, 5)), 'expires_at == issued_at is allowed'
    alphabet = [*'A'..'Z', *'a'..'z', *'0'..'9', '-', '_'].join
    idx = alphabet.index(good[-1])
    cases = {
      'not a string' => 42, 'empty' => '', 'no prefix' => good[4..], 'other version' => "st2.#{good[4..]}",
      'upper-case prefix' => "ST1.#{good[4..]}", 'padding' => "#{good}=",
      'standard alphabet +' => "#{good[0, 10]}+#{good[11..]}", 'standard alphabet /' => "#{good[0, 10]}/#{good[11..]}",
      'whitespace' => "#{good[0, 10]} #{good[10..]}", 'newline' => "#{good[0, 10]}\n#{good[10..]}",
      'extra dot' => "#{good}.x", 'length mod 4 == 1' => "#{good}AAA",
      'non-zero unused bits' => good[0..-2] + alphabet[idx ^ 1],
      'body of 55 bytes' => "st1.#{b64("\0" * 55)}", 'issued_at < 0' => with_times.call(-1, 5),
      'expires_at < issued_at' => with_times.call(10, 9),
      'payload of 3001 bytes' => "st1.#{b64("\0" * (56 + 3001))}",
      'longer than 4095 characters' => "st1.#{'A' * 4092}"
    }
    assert_equal 1, (good.length + 3 - 4) % 4, 'test setup: the mod-4 case no longer fits the hello token'
    refute_all cases
    refute_nil T.parse_native("st1.#{b64("\0" * (56 + 3000))}"), 'a payload of 3000 bytes parses'
  end

  def test_v2_malformed
    good = vectors('native_v2.json', 'st2').find { |v| v['name'] == 'subject' }['token']
    assert_equal 'user-42', T.parse_native(good)&.subject
    body = Base64.urlsafe_decode64(good[4..])
    with_byte = ->(i, value) { "st2.#{b64(body.byteslice(0, i) + value.chr + body.byteslice((i + 1)..))}" }
    cases = {
      'unknown version' => "st3.#{good[4..]}", 'unknown flag' => with_byte.call(24, 0x02),
      'high flag' => with_byte.call(24, 0x80), 'sealed, too short for nonce and tag' => with_byte.call(24, 0x01),
      'subject of 129 bytes' => with_byte.call(41, 129), 'subject past the end' => with_byte.call(41, 120),
      'body of 73 bytes' => "st2.#{b64(body.byteslice(0, 73))}", 'padding' => "#{good}=",
      'longer than 4095 characters' => "st2.#{'A' * 4092}"
    }
    refute_all cases
    refute_nil T.parse_native("st2.#{b64("\0" * 74)}"), 'a body of 74 bytes (no subject, empty payload) parses'
  end

  def refute_all(cases) = cases.each { |name, tok| assert_nil T.parse_native(tok), name }
end
