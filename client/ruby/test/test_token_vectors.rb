# frozen_string_literal: true

# Sessiontoken::Token.parse_native against the shared vectors (tests/vectors/native_v1.json,
# made by the independent reference implementation tests/vectors/native_v1.py) and every
# MALFORMED rule of docs/token-format.md. No server.
$LOAD_PATH.unshift(File.expand_path('../lib', __dir__))
require 'base64'
require 'json'
require 'minitest/autorun'
require 'openssl'
require 'sessiontoken/token'

class TokenVectorsTest < Minitest::Test
  VECTORS = File.expand_path('../../../tests/vectors/native_v1.json', __dir__)
  T = Sessiontoken::Token

  def vectors
    doc = JSON.parse(File.read(VECTORS))
    assert_equal 'st1', doc['format']
    assert_operator doc['vectors'].size, :>=, 5
    doc['vectors']
  end

  def b64(bytes) = Base64.urlsafe_encode64(bytes, padding: false)

  def test_vectors
    vectors.each do |v|
      t = T.parse_native(v['token'])
      refute_nil t, v['name']
      assert_equal [v['key_id'], v['issued_at'], v['expires_at']], [t.key_id, t.issued_at, t.expires_at], v['name']
      assert_equal v['payload_hex'], t.payload.unpack1('H*'), v['name']
      audience = [v['audience_hex']].pack('H*')
      assert_equal T.native_audience_tag(audience), t.audience_tag, v['name']
      # The MAC rule of docs/token-format.md (test only: the library holds no keys).
      body = Base64.urlsafe_decode64(v['token'][4..])
      signed = 'st1.'.b + [audience.bytesize].pack('N') + audience + body.byteslice(0, body.bytesize - 32)
      assert_equal OpenSSL::HMAC.digest('SHA256', [v['key_hex']].pack('H*'), signed), t.mac, v['name']
    end
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
    cases.each { |name, tok| assert_nil T.parse_native(tok), name }
    refute_nil T.parse_native("st1.#{b64("\0" * (56 + 3000))}"), 'a payload of 3000 bytes parses'
  end
end
