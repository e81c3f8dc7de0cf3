'use strict';
// sessiontoken for Node.js: the gRPC client (Client), the Express session middleware
// (session) and a parser of the public fields of native tokens (parseNativeToken).

const { Client, DEFAULTS, CHANNEL_DEFAULTS } = require('./lib/client');
const { session, DEFAULT_MAX_PAYLOAD_BYTES } = require('./lib/session');
const { parseNativeToken, nativeAudienceTag } = require('./lib/native');
const { SessionTokenError, SessionTooLargeError, status } = require('./lib/errors');

module.exports = {
  Client,
  session,
  parseNativeToken,
  nativeAudienceTag,
  SessionTokenError,
  SessionTooLargeError,
  DEFAULT_MAX_PAYLOAD_BYTES,
  status,
  DEFAULTS,
  CHANNEL_DEFAULTS,
};
