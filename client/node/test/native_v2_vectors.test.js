'use strict';
// parseNativeToken against the st2 vectors (tests/vectors/native_v2.json, made by the
// independent reference implementation tests/vectors/native_v2.py): subject, token id and
// sealed payloads. The test opens each sealed payload with node:crypto (HKDF-SHA256 and
// AES-256-GCM, per docs/token-format.md) to show the layout the parser reports is the one
// the service seals; the library itself never holds a key.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const path = require('node:path');
const fs = require('node:fs');
const { parseNativeToken, nativeAudienceTag } = require('..');

const VECTORS_FILE = path.resolve(__dirname, '..', '..', '..', 'tests', 'vectors', 'native_v2.json');
const { format, vectors } = JSON.parse(fs.readFileSync(VECTORS_FILE, 'utf8'));

function bound(audience) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(audience.length);
  return Buffer.concat([Buffer.from('st2.'), len, audience]);
}

function b64(buf) { return buf.toString('base64url'); }

test('the vectors file is the st2 set, clear and sealed', () => {
  assert.equal(format, 'st2');
  assert.ok(vectors.length >= 8);
  assert.ok(vectors.filter((v) => v.sealed).length >= 4);
});

for (const v of vectors) {
  test(`st2 vector ${v.name}: public fields, MAC${v.sealed ? ', sealed payload' : ''}`, () => {
    const t = parseNativeToken(v.token);
    assert.ok(t, 'parse failed');
    assert.equal(t.version, 'st2');
    assert.equal(t.keyId, v.key_id);
    assert.equal(t.issuedAt, v.issued_at);
    assert.equal(t.expiresAt, v.expires_at);
    assert.equal(t.tokenId, v.token_id);
    assert.equal(t.subject.toString('hex'), v.subject_hex);
    assert.equal(t.sealed, v.sealed);
    const audience = Buffer.from(v.audience_hex, 'hex');
    assert.deepEqual(t.audienceTag, nativeAudienceTag(audience));
    const body = Buffer.from(v.token.slice(4), 'base64url');
    const key = Buffer.from(v.key_hex, 'hex');
    const mac = crypto.createHmac('sha256', key)
      .update(Buffer.concat([bound(audience), body.subarray(0, body.length - 32)])).digest();
    assert.deepEqual(t.mac, mac);
    if (!v.sealed) {
      assert.equal(t.payload.toString('hex'), v.payload_hex);
      return;
    }
    const sealKey = Buffer.from(crypto.hkdfSync('sha256', key, Buffer.alloc(0),
      Buffer.from('sessiontoken st2 payload seal'), 32));
    const header = body.subarray(0, body.length - 32 - t.payload.length);
    const d = crypto.createDecipheriv('aes-256-gcm', sealKey, t.payload.subarray(0, 12));
    d.setAAD(Buffer.concat([bound(audience), header]));
    d.setAuthTag(t.payload.subarray(t.payload.length - 16));
    const plain = Buffer.concat([d.update(t.payload.subarray(12, t.payload.length - 16)), d.final()]);
    assert.equal(plain.toString('hex'), v.payload_hex);
    if (v.payload_hex.length >= 16) {
      assert.equal(body.indexOf(Buffer.from(v.payload_hex.slice(0, 16), 'hex')), -1, 'payload in clear');
    }
  });
}

test('st2 strict parsing: every MALFORMED rule of the spec', () => {
  const good = vectors.find((v) => v.name === 'subject').token;
  const body = Buffer.from(good.slice(4), 'base64url');
  const withByte = (i, value) => {
    const b = Buffer.from(body);
    b[i] = value;
    return 'st2.' + b64(b);
  };
  assert.ok(parseNativeToken(good));
  const cases = {
    'unknown version': 'st3.' + good.slice(4),
    'unknown flag': withByte(24, 0x02),
    'high flag': withByte(24, 0x80),
    'sealed but too short for nonce and tag': withByte(24, 0x01),
    'subject of 129 bytes': withByte(41, 129),
    'subject past the end': withByte(41, 120),
    'body of 73 bytes': 'st2.' + b64(body.subarray(0, 73)),
    'longer than 4095 characters': 'st2.' + 'A'.repeat(4092),
    'padding': good + '=',
  };
  for (const [name, token] of Object.entries(cases)) {
    assert.equal(parseNativeToken(token), null, `${name}: must be MALFORMED`);
  }
  // An st1 token stays st1, with no subject or token id.
  const v1 = parseNativeToken('st1.' + b64(Buffer.alloc(56)));
  assert.equal(v1.version, 'st1');
  assert.equal(v1.tokenId, '');
  assert.equal(v1.subject.length, 0);
  assert.equal(v1.sealed, false);
});
