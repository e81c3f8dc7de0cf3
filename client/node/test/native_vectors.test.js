'use strict';
// parseNativeToken against the shared vectors (tests/vectors/native_v1.json, made by the
// independent reference implementation tests/vectors/native_v1.py) and the strict-parsing
// rules of docs/token-format.md.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const path = require('node:path');
const fs = require('node:fs');
const { parseNativeToken, nativeAudienceTag } = require('..');

const VECTORS_FILE = path.resolve(__dirname, '..', '..', '..', 'tests', 'vectors', 'native_v1.json');
const { format, vectors } = JSON.parse(fs.readFileSync(VECTORS_FILE, 'utf8'));

// Test-only signer (the library never holds keys): the MAC rule of docs/token-format.md, to
// show that the parser's view of the body is the one the MAC covers.
function macOf(keyHex, audience, signedBody) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(audience.length);
  return crypto.createHmac('sha256', Buffer.from(keyHex, 'hex'))
    .update(Buffer.concat([Buffer.from('st1.'), len, audience, signedBody])).digest();
}

function b64(buf) { return buf.toString('base64url'); }

test('the vectors file is the st1 set and is not empty', () => {
  assert.equal(format, 'st1');
  assert.ok(vectors.length >= 5, `only ${vectors.length} vectors`);
});

for (const v of vectors) {
  test(`vector ${v.name}: public fields, payload, audience tag, MAC`, () => {
    const t = parseNativeToken(v.token);
    assert.ok(t, 'parse failed');
    assert.equal(t.version, 'st1');
    assert.equal(t.keyId, v.key_id);
    assert.equal(t.issuedAt, v.issued_at);
    assert.equal(t.expiresAt, v.expires_at);
    assert.equal(t.payload.toString('hex'), v.payload_hex);
    const audience = Buffer.from(v.audience_hex, 'hex');
    assert.equal(t.audienceTag.toString('hex'), nativeAudienceTag(audience).toString('hex'));
    const body = Buffer.from(v.token.slice(4), 'base64url');
    assert.equal(t.mac.toString('hex'), macOf(v.key_hex, audience, body.subarray(0, body.length - 32)).toString('hex'));
    assert.equal(v.token.length, 4 + Math.ceil((56 + t.payload.length) * 4 / 3));
  });
}

test('strict parsing: every MALFORMED rule of the spec', () => {
  const good = vectors.find((v) => v.name === 'hello').token;  // body of 61 bytes: 82 chars
  assert.ok(parseNativeToken(good));
  const body = Buffer.from(good.slice(4), 'base64url');
  const withTimes = (iat, exp) => {
    const b = Buffer.from(body);
    b.writeBigInt64BE(iat, 4);
    b.writeBigInt64BE(exp, 12);
    return 'st1.' + b64(b);
  };
  assert.ok(parseNativeToken(withTimes(5n, 5n)), 'expires_at == issued_at is allowed');
  const last = good[good.length - 1];
  const idx = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.indexOf(last);
  const cases = {
    'not a string': 42,
    empty: '',
    'no prefix': good.slice(4),
    'other version': 'st2.' + good.slice(4),
    'upper-case prefix': 'ST1.' + good.slice(4),
    padding: good + '=',
    'standard alphabet +': good.slice(0, 10) + '+' + good.slice(11),
    'standard alphabet /': good.slice(0, 10) + '/' + good.slice(11),
    whitespace: good.slice(0, 10) + ' ' + good.slice(10),
    'extra dot': good + '.x',
    'length mod 4 == 1': good + 'A'.repeat((1 - (good.length - 4) % 4 + 4) % 4 || 4),
    'non-zero unused bits': good.slice(0, -1) + 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'[idx ^ 1],
    'body of 55 bytes': 'st1.' + b64(Buffer.alloc(55)),
    'issued_at < 0': withTimes(-1n, 5n),
    'expires_at < issued_at': withTimes(10n, 9n),
    'payload of 3001 bytes': 'st1.' + b64(Buffer.alloc(56 + 3001)),
    'longer than 4095 characters': 'st1.' + 'A'.repeat(4092),
  };
  // 4092 'A's: 4096 characters, a multiple of 4: everything but the length is fine.
  assert.equal(cases['longer than 4095 characters'].length, 4096);
  assert.equal((cases['length mod 4 == 1'].length - 4) % 4, 1);
  for (const [name, token] of Object.entries(cases)) {
    assert.equal(parseNativeToken(token), null, `${name}: must be MALFORMED`);
  }
  // The limits themselves are accepted.
  assert.ok(parseNativeToken('st1.' + b64(Buffer.alloc(56))), 'empty payload');
  assert.ok(parseNativeToken('st1.' + b64(Buffer.alloc(56 + 3000))), '3000-byte payload');
  assert.equal(parseNativeToken('st1.' + b64(Buffer.alloc(56 + 3000))).payload.length, 3000);
});
