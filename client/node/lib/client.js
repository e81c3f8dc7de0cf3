'use strict';
// Promise client of the sessiontoken service: SessionTokens (Sign, Verify, batches) and
// KeyAdmin (operators). One channel, two stubs. Default deadlines and retries come from the
// service config shared by every client (proto/sessiontoken/v1/service_config.json): grpc-js
// retries UNAVAILABLE with jittered exponential backoff for calls that are safe to repeat
// (keyring changes such as Rotate, ImportKey, PromoteKey never are); the client sets each
// call's deadline from the file unless the caller gives one.

const grpc = require('@grpc/grpc-js');
const { load, splitServiceConfig } = require('./proto');
const { SessionTokenError, codeName } = require('./errors');

const DEFAULTS = Object.freeze({
  address: '127.0.0.1:50051',
});

// Channel defaults: reconnect quickly after the service restarts (grpc-js otherwise backs off
// up to 120 s, failing calls fast meanwhile). Anything here can be overridden.
const CHANNEL_DEFAULTS = Object.freeze({
  'grpc.initial_reconnect_backoff_ms': 200,
  'grpc.max_reconnect_backoff_ms': 2000,
  'grpc.enable_retries': 1,
});

const TOKENS = 'SessionTokens';
const ADMIN = 'KeyAdmin';

// ---- conversions -------------------------------------------------------------------------

function requireString(value, name, { allowEmpty = false } = {}) {
  if (typeof value !== 'string' || (!allowEmpty && value === '')) {
    throw new TypeError(`${name} must be a ${allowEmpty ? '' : 'non-empty '}string`);
  }
  return value;
}

function requireSeconds(value, name, { optional = false } = {}) {
  if (value === undefined || value === null) {
    if (optional) return null;
    throw new TypeError(`${name} is required`);
  }
  if (!Number.isSafeInteger(value)) throw new TypeError(`${name} must be a whole number of seconds`);
  return { seconds: String(value), nanos: 0 };
}

function toBytes(value, name) {
  if (Buffer.isBuffer(value)) return value;
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  throw new TypeError(`${name} must be a Buffer, Uint8Array or string`);
}

function toDate(ts) {
  if (!ts) return null;
  return new Date(Number(ts.seconds) * 1000 + Math.floor((ts.nanos || 0) / 1e6));
}

function toSeconds(duration) {
  if (!duration) return 0;
  return Number(duration.seconds);
}

function toNumber(u64) {
  return Number(u64 || 0);
}

function keyIdOrNull(id) {
  return id ? id : null;  // key ids are non-zero; 0 = the token names no key
}

function enumValue(enums, value, name, { optional = true } = {}) {
  if (value === undefined || value === null) {
    if (optional) return undefined;
    throw new TypeError(`${name} is required`);
  }
  if (typeof value === 'string' && enums.has(value)) return value;
  if (typeof value === 'number' && [...enums.values()].includes(value)) return value;
  throw new TypeError(`${name}: unknown value ${JSON.stringify(value)} (one of ${[...enums.keys()].join(', ')})`);
}

const POLICY_FIELDS = [
  ['rotationPeriodSeconds', 'rotation_period'],
  ['stageLeadTimeSeconds', 'stage_lead_time'],
  ['verifyWindowSeconds', 'verify_window'],
  ['destroyAfterSeconds', 'destroy_after'],
  ['maxTokenTtlSeconds', 'max_token_ttl'],
  ['tombstoneRetentionSeconds', 'tombstone_retention'],
];

function policyToProto(policy) {
  if (policy === undefined || policy === null) return undefined;
  if (typeof policy !== 'object') throw new TypeError('policy must be an object');
  const out = {};
  for (const [js, pb] of POLICY_FIELDS) {
    const d = requireSeconds(policy[js], `policy.${js}`, { optional: true });
    if (d) out[pb] = d;
  }
  if (policy.sealPayloads !== undefined) {
    if (typeof policy.sealPayloads !== 'boolean') throw new TypeError('policy.sealPayloads must be a boolean');
    out.seal_payloads = policy.sealPayloads;
  }
  for (const k of Object.keys(policy)) {
    if (k !== 'sealPayloads' && !POLICY_FIELDS.some(([js]) => js === k)) {
      throw new TypeError(`policy.${k}: unknown field`);
    }
  }
  return out;
}

function policyFromProto(p) {
  const out = {};
  for (const [js, pb] of POLICY_FIELDS) out[js] = toSeconds(p && p[pb]);
  out.sealPayloads = Boolean(p && p.seal_payloads);
  return out;
}

function keyInfo(k) {
  if (!k) return null;
  return {
    keyId: k.key_id,
    algorithm: k.algorithm,
    state: k.state,
    createdAt: toDate(k.created_at),
    stateChangedAt: toDate(k.state_changed_at),
  };
}

function keyringInfo(r) {
  return {
    name: r.name,
    policy: policyFromProto(r.policy),
    keys: (r.keys || []).map(keyInfo),
    primaryKeyId: r.primary_key_id,
    revision: toNumber(r.revision),
    createdAt: toDate(r.created_at),
  };
}

function signResult(r) {
  return {
    token: r.token,
    keyId: r.key_id,
    issuedAt: toDate(r.issued_at),
    expiresAt: toDate(r.expires_at),
    tokenId: r.token_id || '',
  };
}

function verifyResult(r) {
  const result = typeof r.result === 'string' ? r.result : `RESULT_${r.result}`;
  const valid = result === 'VALID';
  return {
    result,
    valid,
    payload: valid ? r.payload : null,
    keyId: keyIdOrNull(r.key_id),
    issuedAt: toDate(r.issued_at),
    expiresAt: toDate(r.expires_at),
    refreshRecommended: valid && Boolean(r.refresh_recommended),
    subject: valid ? r.subject || '' : null,
    tokenId: valid ? r.token_id || '' : null,
  };
}

function batchItems(method, response, expected, convert) {
  const items = response.items || [];
  if (items.length !== expected) {
    throw new SessionTokenError({
      method, code: grpc.status.INTERNAL,
      details: `expected ${expected} items in the response, got ${items.length}`,
    });
  }
  return items.map((it) => (it.code === 0
    ? { ok: true, ...convert(it.response || {}) }
    : { ok: false, code: it.code, codeName: codeName(it.code), message: it.message }));
}

// ---- the client --------------------------------------------------------------------------

class Client {
  /**
   * @param {object} [options]
   *   address ('127.0.0.1:50051'), credentials (grpc.ChannelCredentials; default insecure),
   *   keyring (default keyring of calls that name none), deadlineMs (of every call; default:
   *   the method's timeout in the service config), serviceConfig (JSON string replacing
   *   proto/sessiontoken/v1/service_config.json), channelOptions, protoDir, token (an API
   *   token sent as "authorization: Bearer <token>" on every call). The address may be
   *   host:port or dns:///name:port (calls balanced round_robin over every address).
   */
  constructor(options = {}) {
    if (typeof options === 'string') options = { address: options };
    const o = { ...DEFAULTS, ...options };
    this.address = requireString(o.address, 'address');
    this.defaultKeyring = o.keyring === undefined ? undefined : requireString(o.keyring, 'keyring');
    this._deadlineMs = o.deadlineMs;
    this._token = o.token === undefined ? undefined : requireString(o.token, 'token');
    const proto = load(o.protoDir);
    this._enums = proto.enums;
    const credentials = o.credentials || grpc.credentials.createInsecure();
    const { grpcConfig, timeoutMs } = splitServiceConfig(o.serviceConfig === undefined
      ? proto.serviceConfig : requireString(o.serviceConfig, 'serviceConfig'));
    this._timeoutMs = timeoutMs;
    const channelOptions = {
      ...CHANNEL_DEFAULTS, 'grpc.service_config': grpcConfig, ...(o.channelOptions || {}),
    };
    this._stubs = {};
    this._stubs[TOKENS] = new proto.SessionTokens(this.address, credentials, channelOptions);
    this._stubs[ADMIN] = new proto.KeyAdmin(this.address, credentials,
      { ...channelOptions, channelOverride: this._stubs[TOKENS].getChannel() });
    this._closed = false;
  }

  /** Closes the channel; pending calls fail with CANCELLED / UNAVAILABLE. */
  close() {
    if (this._closed) return;
    this._closed = true;
    this._stubs[TOKENS].close();
  }

  /** Resolves once the channel is connected, rejects after deadlineMs (default 5000). */
  waitForReady(deadlineMs = 5000) {
    return new Promise((resolve, reject) => {
      this._stubs[TOKENS].waitForReady(Date.now() + deadlineMs, (err) => (err ? reject(err) : resolve()));
    });
  }

  _keyring(value) {
    const k = value === undefined ? this.defaultKeyring : value;
    if (k === undefined) throw new TypeError('keyring is required (or give the Client a default keyring)');
    return requireString(k, 'keyring');
  }

  _unary(service, rpc, request, deadline, signal) {
    return new Promise((resolve, reject) => {
      const metadata = new grpc.Metadata();
      if (this._token !== undefined) metadata.set('authorization', `Bearer ${this._token}`);
      const call = this._stubs[service][rpc](request, metadata, { deadline },
        (err, response) => {
          if (signal) signal.removeEventListener('abort', onAbort);
          if (err) reject(err); else resolve(response);
        });
      const onAbort = () => call.cancel();
      if (signal) {
        if (signal.aborted) call.cancel();
        else signal.addEventListener('abort', onAbort, { once: true });
      }
    });
  }

  // One call. Its deadline (per call, else per client, else the method's timeout in the
  // service config) covers the retries grpc-js makes.
  async _call(service, rpc, request, opts = {}) {
    if (this._closed) throw new Error('sessiontoken: client is closed');
    const deadlineMs = opts.deadlineMs ?? this._deadlineMs ?? this._timeoutMs(`sessiontoken.v1.${service}`, rpc);
    if (deadlineMs !== undefined && !(deadlineMs > 0)) {
      throw new TypeError('deadlineMs must be a positive number of milliseconds');
    }
    const deadline = deadlineMs === undefined ? Infinity : Date.now() + deadlineMs;
    try {
      return await this._unary(service, rpc, request, deadline, opts.signal);
    } catch (err) {
      const code = typeof err.code === 'number' ? err.code : grpc.status.UNKNOWN;
      throw new SessionTokenError({
        method: `${service}.${rpc}`, code, details: err.details || err.message, cause: err,
      });
    }
  }

  // ---- SessionTokens ----

  _signRequest(o) {
    if (!o || typeof o !== 'object') throw new TypeError('sign: options object required');
    return {
      keyring: this._keyring(o.keyring),
      payload: toBytes(o.payload === undefined ? Buffer.alloc(0) : o.payload, 'payload'),
      ttl: requireSeconds(o.ttlSeconds, 'ttlSeconds'),
      audience: requireString(o.audience ?? '', 'audience', { allowEmpty: true }),
      subject: requireString(o.subject ?? '', 'subject', { allowEmpty: true }),
    };
  }

  _verifyRequest(o) {
    if (!o || typeof o !== 'object') throw new TypeError('verify: options object required');
    const req = {
      keyring: this._keyring(o.keyring),
      token: requireString(o.token, 'token', { allowEmpty: true }),
      audience: requireString(o.audience ?? '', 'audience', { allowEmpty: true }),
    };
    const maxAge = requireSeconds(o.maxAgeSeconds, 'maxAgeSeconds', { optional: true });
    if (maxAge) req.max_age = maxAge;
    return req;
  }

  /** Signs a payload with the keyring's primary key. */
  async sign(options, callOptions) {
    const r = await this._call(TOKENS, 'Sign', this._signRequest(options), callOptions);
    return signResult(r);
  }

  /** Checks a token. Resolves for every result (VALID or not); rejects only on RPC errors. */
  async verify(options, callOptions) {
    const r = await this._call(TOKENS, 'Verify', this._verifyRequest(options), callOptions);
    return verifyResult(r);
  }

  /** Many Sign calls in one round trip; each item is {ok: true, ...} or {ok: false, code...}. */
  async batchSign(items, callOptions) {
    if (!Array.isArray(items)) throw new TypeError('batchSign: an array of sign options required');
    const r = await this._call(TOKENS, 'BatchSign', { items: items.map((i) => this._signRequest(i)) }, callOptions);
    return batchItems(`${TOKENS}.BatchSign`, r, items.length, signResult);
  }

  /** Many Verify calls in one round trip, results in request order. */
  async batchVerify(items, callOptions) {
    if (!Array.isArray(items)) throw new TypeError('batchVerify: an array of verify options required');
    const r = await this._call(TOKENS, 'BatchVerify', { items: items.map((i) => this._verifyRequest(i)) }, callOptions);
    return batchItems(`${TOKENS}.BatchVerify`, r, items.length, verifyResult);
  }

  /**
   * Revokes one session ({token, audience}: the token must verify) or every session of a
   * subject issued until now ({subject}: "log out everywhere"). Verify then answers REVOKED.
   * Resolves to {revokedAt, dropAfter}; rejects with a SessionTokenError (e.g.
   * RESOURCE_EXHAUSTED when the keyring's revocation list is full).
   */
  async revoke(options, callOptions) {
    if (!options || typeof options !== 'object') throw new TypeError('revoke: options object required');
    if ((options.token === undefined) === (options.subject === undefined)) {
      throw new TypeError('revoke: give exactly one of token or subject');
    }
    const req = {
      keyring: this._keyring(options.keyring),
      audience: requireString(options.audience ?? '', 'audience', { allowEmpty: true }),
    };
    if (options.token !== undefined) req.token = requireString(options.token, 'token');
    else req.subject = requireString(options.subject, 'subject');
    const r = await this._call(TOKENS, 'Revoke', req, callOptions);
    return { revokedAt: toDate(r.revoked_at), dropAfter: toDate(r.drop_after) };
  }

  // ---- KeyAdmin ----

  async rotate(options = {}, callOptions) {
    const req = { keyring: this._keyring(options.keyring), promote_now: Boolean(options.promoteNow) };
    const alg = enumValue(this._enums.Algorithm, options.algorithm, 'algorithm');
    if (alg !== undefined) req.algorithm = alg;
    const r = await this._call(ADMIN, 'Rotate', req, callOptions);
    return {
      newKey: keyInfo(r.new_key),
      previousPrimaryKeyId: r.previous_primary_key_id,
      revision: toNumber(r.revision),
    };
  }

  async listKeys(options = {}, callOptions) {
    const r = await this._call(ADMIN, 'ListKeys', { keyring: this._keyring(options.keyring) }, callOptions);
    return {
      keyring: r.keyring,
      keys: (r.keys || []).map(keyInfo),
      primaryKeyId: r.primary_key_id,
      revision: toNumber(r.revision),
    };
  }

  // How much each key is in use, counted by the replica that answers (docs/operations.md).
  async getKeyUsage(options = {}, callOptions) {
    const r = await this._call(ADMIN, 'GetKeyUsage', { keyring: this._keyring(options.keyring) }, callOptions);
    return {
      keyring: r.keyring,
      revision: toNumber(r.revision),
      countingSince: toDate(r.counting_since),
      keys: (r.keys || []).map((k) => ({
        keyId: k.key_id,
        state: k.state,
        verifiedLastHour: toNumber(k.verified_last_hour),
        verifiedLastDay: toNumber(k.verified_last_day),
        lastVerifiedAt: toDate(k.last_verified_at),
        rejectedDisabledLastDay: toNumber(k.rejected_disabled_last_day),
        signedLastDay: toNumber(k.signed_last_day),
      })),
    };
  }

  async _keyCall(rpc, options = {}, callOptions) {
    if (!Number.isInteger(options.keyId) || options.keyId <= 0 || options.keyId > 0xffffffff) {
      throw new TypeError('keyId must be a key id (1 .. 2^32-1)');
    }
    const req = { keyring: this._keyring(options.keyring), key_id: options.keyId };
    return keyringInfo(await this._call(ADMIN, rpc, req, callOptions));
  }

  promoteKey(options, callOptions) { return this._keyCall('PromoteKey', options, callOptions); }
  disableKey(options, callOptions) { return this._keyCall('DisableKey', options, callOptions); }
  enableKey(options, callOptions) { return this._keyCall('EnableKey', options, callOptions); }
  destroyKey(options, callOptions) { return this._keyCall('DestroyKey', options, callOptions); }

  async importKey(options = {}, callOptions) {
    const req = {
      keyring: this._keyring(options.keyring),
      algorithm: enumValue(this._enums.Algorithm, options.algorithm, 'algorithm', { optional: false }),
      secret: toBytes(options.secret, 'secret'),
    };
    const state = enumValue(this._enums.KeyState, options.state, 'state');
    if (state !== undefined) req.state = state;
    const r = await this._call(ADMIN, 'ImportKey', req, callOptions);
    // A weak secret is imported all the same (cookies signed with it exist): the service says
    // why and what to do; returned, and printed once through Node's warning channel.
    const warning = r.warning || '';
    if (warning) process.emitWarning(warning, { type: 'WeakSecretWarning', code: 'SESSIONTOKEN_WEAK_SECRET' });
    return { key: keyInfo(r.key), revision: toNumber(r.revision), warning };
  }

  async createKeyring(options = {}, callOptions) {
    const req = { name: requireString(options.name, 'name') };
    const policy = policyToProto(options.policy);
    if (policy) req.policy = policy;
    const alg = enumValue(this._enums.Algorithm, options.algorithm, 'algorithm');
    if (alg !== undefined) req.algorithm = alg;
    return keyringInfo(await this._call(ADMIN, 'CreateKeyring', req, callOptions));
  }

  async listKeyrings(callOptions) {
    const r = await this._call(ADMIN, 'ListKeyrings', {}, callOptions);
    return (r.keyrings || []).map((e) => ({
      name: e.name,
      revision: toNumber(e.revision),
      primaryKeyId: e.primary_key_id,
      keyCount: e.key_count,
    }));
  }

  async getKeyring(options = {}, callOptions) {
    return keyringInfo(await this._call(ADMIN, 'GetKeyring', { keyring: this._keyring(options.keyring) }, callOptions));
  }

  async setPolicy(options = {}, callOptions) {
    const req = { keyring: this._keyring(options.keyring), policy: policyToProto(options.policy) || {} };
    return keyringInfo(await this._call(ADMIN, 'SetPolicy', req, callOptions));
  }
}

module.exports = { Client, DEFAULTS, CHANNEL_DEFAULTS };
