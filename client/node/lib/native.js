'use strict';
// Parser of the public fields of native `st1` tokens (docs/token-format.md). It checks the
// syntax strictly, exactly as the server does, but cannot check the MAC (it holds no key):
// use it for display and diagnosis (which key signed this cookie, when does it expire),
// never to trust a token. Only SessionTokens.Verify says whether a token is genuine.

const crypto = require('node:crypto');

const PREFIX = 'st1.';
const MAX_TOKEN_CHARS = 4095;
const FIXED_BODY_BYTES = 56;  // key id 4 + issued-at 8 + expires-at 8 + aud tag 4 + mac 32
const MAX_PAYLOAD_BYTES = 3000;
const MAC_BYTES = 32;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/**
 * Parses a native token. Returns null when the token is MALFORMED by the spec's strict rules,
 * else {version, keyId, issuedAt, expiresAt (Unix seconds), audienceTag, payload, mac}.
 * Times beyond 2^53 s are returned rounded (Number); the server never issues such tokens.
 */
function parseNativeToken(token) {
  if (typeof token !== 'string' || token.length > MAX_TOKEN_CHARS || !token.startsWith(PREFIX)) {
    return null;
  }
  const b64 = token.slice(PREFIX.length);
  if (!BASE64URL.test(b64) || b64.length % 4 === 1) return null;
  const body = Buffer.from(b64, 'base64url');
  // Canonical encoding: unused low bits of the last character must be zero, so that each
  // body has exactly one encoding. Node's encoder emits the canonical, unpadded form.
  if (body.toString('base64url') !== b64) return null;
  if (body.length < FIXED_BODY_BYTES || body.length - FIXED_BODY_BYTES > MAX_PAYLOAD_BYTES) {
    return null;
  }
  const issuedAt = body.readBigInt64BE(4);
  const expiresAt = body.readBigInt64BE(12);
  if (issuedAt < 0n || expiresAt < issuedAt) return null;
  return {
    version: 'st1',
    keyId: body.readUInt32BE(0),
    issuedAt: Number(issuedAt),
    expiresAt: Number(expiresAt),
    audienceTag: Buffer.from(body.subarray(20, 24)),
    payload: Buffer.from(body.subarray(24, body.length - MAC_BYTES)),
    mac: Buffer.from(body.subarray(body.length - MAC_BYTES)),
  };
}

/** The 4-byte audience tag a native token carries: SHA-256(audience)[0..4). */
function nativeAudienceTag(audience) {
  const bytes = Buffer.isBuffer(audience) ? audience : Buffer.from(String(audience), 'utf8');
  return crypto.createHash('sha256').update(bytes).digest().subarray(0, 4);
}

module.exports = { parseNativeToken, nativeAudienceTag, MAX_TOKEN_CHARS, MAX_PAYLOAD_BYTES };
