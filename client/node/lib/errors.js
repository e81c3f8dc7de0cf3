'use strict';
const grpc = require('@grpc/grpc-js');

const CODE_NAMES = Object.fromEntries(Object.entries(grpc.status).map(([k, v]) => [v, k]));

/** Name of a google.rpc.Code / gRPC status number ('UNAVAILABLE'...). */
function codeName(code) {
  return CODE_NAMES[code] || `CODE_${code}`;
}

/**
 * A failed RPC: the service answered with a gRPC error, or could not be reached.
 * (An invalid token is not an error: verify() resolves with result !== 'VALID'.)
 */
class SessionTokenError extends Error {
  constructor({ method, code, details, cause }) {
    super(`${method}: ${codeName(code)}: ${details}`, cause ? { cause } : undefined);
    this.name = 'SessionTokenError';
    this.method = method;          // e.g. 'SessionTokens.Sign'
    this.code = code;              // numeric gRPC status code
    this.codeName = codeName(code);
    this.details = details;        // the server's message, e.g. 'ttl: required'
  }
}

/**
 * A session the service would not sign because of its size: larger than the middleware's
 * maxPayloadBytes, or refused by Sign (INVALID_ARGUMENT "payload: ..."). It was not saved.
 */
class SessionTooLargeError extends Error {
  constructor({ size, limit, details }) {
    let msg = `session too large: ${size} bytes`;
    if (limit !== null && limit !== undefined) msg += ` exceeds the limit of ${limit}`;
    if (details) msg += ` (${details})`;
    super(msg);
    this.name = 'SessionTooLargeError';
    this.size = size;              // bytes of the serialised session
    this.limit = limit ?? null;    // the middleware's limit, or null when the service refused it
  }
}

module.exports = { SessionTokenError, SessionTooLargeError, codeName, status: grpc.status };
