'use strict';
// Parser of the public fields of native tokens, `st2` (what Sign issues: subject, token id,
// payload in clear or sealed) and `st1` (older tokens), per docs/token-format.md. It checks
// the syntax strictly, exactly as the server does, but cannot check the MAC (it holds no
// key) nor open a sealed payload: use it for display and diagnosis (which key signed this
// cookie, whose session, when does it expire), never to trust a token. Only
// SessionTokens.Verify says whether a token is genuine.

const crypto = require('node:crypto');

const PREFIX = 'st1.';
const PREFIX_V2 = 'st2.';
const MAX_TOKEN_CHARS = 4095;
const HEADER_BYTES = 24;      // key id 4 + issued-at 8 + expires-at 8 + aud tag 4
const FIXED_BODY_BYTES = 56;  // st1: header + mac 32
const MAX_PAYLOAD_BYTES = 3000;  // st1
const MAC_BYTES = 32;
const TOKEN_ID_BYTES = 16;
const MAX_SUBJECT_BYTES = 128;
const V2_HEADER_BYTES = HEADER_BYTES + 1 + TOKEN_ID_BYTES + 1;  // + flags, token id, subject length
const FLAG_SEALED = 0x01;
const SEAL_OVERHEAD = 12 + 16;  // AES-GCM nonce + tag
const BASE64URL = /^[A-Za-z0-9_-]*$/;

// st2 fields after the st1 header, or null when malformed.
function v2Fields(body) {
  if (body.length < V2_HEADER_BYTES + MAC_BYTES) return null;
  const flags = body[HEADER_BYTES];
  if ((flags & ~FLAG_SEALED) !== 0) return null;
  const subjectBytes = body[V2_HEADER_BYTES - 1];
  if (subjectBytes > MAX_SUBJECT_BYTES) return null;
  const start = V2_HEADER_BYTES + subjectBytes;
  const sealed = (flags & FLAG_SEALED) !== 0;
  if (body.length < start + MAC_BYTES + (sealed ? SEAL_OVERHEAD : 0)) return null;
  return {
    version: 'st2',
    sealed,
    tokenId: body.subarray(HEADER_BYTES + 1, HEADER_BYTES + 1 + TOKEN_ID_BYTES).toString('base64url'),
    subject: Buffer.from(body.subarray(V2_HEADER_BYTES, start)),
    payloadStart: start,
  };
}

/**
 * Parses a native token. Returns null when the token is MALFORMED by the spec's strict rules,
 * else {version, keyId, issuedAt, expiresAt (Unix seconds), audienceTag, payload, mac,
 * sealed, tokenId, subject}. Times beyond 2^53 s are returned rounded (Number); the server
 * never issues such tokens.
 */
function parseNativeToken(token) {
  if (typeof token !== 'string' || token.length > MAX_TOKEN_CHARS) return null;
  const v2 = token.startsWith(PREFIX_V2);
  if (!v2 && !token.startsWith(PREFIX)) return null;
  const b64 = token.slice(PREFIX.length);
  if (!BASE64URL.test(b64) || b64.length % 4 === 1) return null;
  const body = Buffer.from(b64, 'base64url');
  // Canonical encoding: unused low bits of the last character must be zero, so that each
  // body has exactly one encoding. Node's encoder emits the canonical, unpadded form.
  if (body.toString('base64url') !== b64) return null;
  let fields = { version: 'st1', sealed: false, tokenId: '', subject: Buffer.alloc(0), payloadStart: HEADER_BYTES };
  if (v2) {
    fields = v2Fields(body);
    if (fields === null) return null;
  } else if (body.length < FIXED_BODY_BYTES || body.length - FIXED_BODY_BYTES > MAX_PAYLOAD_BYTES) {
    return null;
  }
  const issuedAt = body.readBigInt64BE(4);
  const expiresAt = body.readBigInt64BE(12);
  if (issuedAt < 0n || expiresAt < issuedAt) return null;
  return {
    version: fields.version,
    keyId: body.readUInt32BE(0),
    issuedAt: Number(issuedAt),
    expiresAt: Number(expiresAt),
    audienceTag: Buffer.from(body.subarray(20, 24)),
    payload: Buffer.from(body.subarray(fields.payloadStart, body.length - MAC_BYTES)),
    mac: Buffer.from(body.subarray(body.length - MAC_BYTES)),
    sealed: fields.sealed,
    tokenId: fields.tokenId,
    subject: fields.subject,
  };
}

/** The 4-byte audience tag a native token carries: SHA-256(audience)[0..4). */
function nativeAudienceTag(audience) {
  const bytes = Buffer.isBuffer(audience) ? audience : Buffer.from(String(audience), 'utf8');
  return crypto.createHash('sha256').update(bytes).digest().subarray(0, 4);
}

module.exports = { parseNativeToken, nativeAudienceTag, MAX_TOKEN_CHARS, MAX_PAYLOAD_BYTES };
