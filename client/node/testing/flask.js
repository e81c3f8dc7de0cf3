'use strict';
// Test support: signs a cookie exactly as Flask's default session interface does
// (itsdangerous URLSafeTimedSerializer with the salt "cookie-session", HMAC-SHA1 with the
// "hmac" key derivation, zlib compression when it saves at least 2 bytes), so that the Node
// tests can make Flask cookies at the current time. test/flask_vectors.test.js checks it
// against tests/vectors/flask_v1.json (made by the real Flask).

const crypto = require('node:crypto');
const zlib = require('node:zlib');

function intToBytes(n) {  // itsdangerous.encoding.int_to_bytes: minimal big-endian, 0 -> b''
  if (n === 0) return Buffer.alloc(0);
  let hex = n.toString(16);
  if (hex.length % 2) hex = '0' + hex;
  return Buffer.from(hex, 'hex');
}

/**
 * payload: the serialized session (Buffer or string), or an object (compact JSON).
 * secret: Buffer or string (utf-8).
 */
function flaskCookie(secret, payload, { salt = 'cookie-session', timestamp = Math.floor(Date.now() / 1000) } = {}) {
  let json = Buffer.isBuffer(payload) ? payload
    : Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload), 'utf8');
  let prefix = '';
  const compressed = zlib.deflateSync(json);
  if (compressed.length < json.length - 1) {
    json = compressed;
    prefix = '.';
  }
  const value = `${prefix}${json.toString('base64url')}.${intToBytes(timestamp).toString('base64url')}`;
  const key = crypto.createHmac('sha1', secret).update(salt).digest();
  const sig = crypto.createHmac('sha1', key).update(value).digest().toString('base64url');
  return `${value}.${sig}`;
}

module.exports = { flaskCookie };
