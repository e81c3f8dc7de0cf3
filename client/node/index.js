'use strict';
// sessiontoken for Node.js: the gRPC client (Client), the Express session middleware
// (session) and a parser of the public fields of native tokens (parseNativeToken).

const { Client, DEFAULTS, CHANNEL_DEFAULTS } = require('./lib/client');
const { session } = require('./lib/session');
const { parseNativeToken, nativeAudienceTag } = require('./lib/native');
const { SessionTokenError, status } = require('./lib/errors');

module.exports = {
  Client,
  session,
  parseNativeToken,
  nativeAudienceTag,
  SessionTokenError,
  status,
  DEFAULTS,
  CHANNEL_DEFAULTS,
};
