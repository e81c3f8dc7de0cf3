'use strict';
// Express (and plain Node http) middleware: req.session is a plain object, stored as JSON
// in a cookie whose value is a token signed by the sessiontoken service. Semantics follow
// Flask's signed-cookie sessions:
//   * the cookie is written only when the session changed during the request (compared as
//     JSON, so nested changes count too) or when Verify says refresh_recommended (the
//     token's key was rotated out: re-issued under the new primary key);
//   * a session that had data and was emptied (or set to null) deletes the cookie;
//   * a missing, tampered, expired, wrong-audience... cookie gives an empty session and is
//     left alone;
//   * fail closed: if the service cannot be reached or errors, req.session is empty (an
//     unverified cookie is never trusted), the error is logged and the request goes on; the
//     cookie is never deleted because of an outage.
//
// When the session is saved: Sign is asynchronous, but cookies must be set before the
// response headers go out. The middleware wraps the calls that start a response
// (res.writeHead, res.write, res.end, res.flushHeaders). At the first of them it looks at
// req.session: if a new token is needed, that call and every later one are held in order
// until Sign has answered and Set-Cookie is set, then replayed. So res.send/json/redirect,
// explicit writeHead + end, res.write streaming and piped streams (sendFile) all carry the
// cookie. Changes made to req.session after the response has started are not saved (as in
// Flask); they are logged as a warning.

const { readCookie, serializeCookie, serializeClearCookie, appendSetCookie, normalizeCookieOptions, checkName } =
  require('./cookie');
const { MAX_TOKEN_CHARS } = require('./native');

const STATE = Symbol('sessiontoken.session');
const HOOKED = ['writeHead', 'write', 'end', 'flushHeaders'];

const defaultLogger = {
  error: (...a) => console.error(...a),
  warn: (...a) => console.warn(...a),
  debug: () => {},
};

function isPlainObject(v) {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function describe(err) {
  return err && err.message ? err.message : String(err);
}

function session(options) {
  if (!options || typeof options !== 'object') throw new TypeError('session(options): options required');
  const { client } = options;
  if (!client || typeof client.sign !== 'function' || typeof client.verify !== 'function') {
    throw new TypeError('session: options.client must be a sessiontoken Client');
  }
  const keyring = options.keyring ?? client.defaultKeyring;
  if (typeof keyring !== 'string' || keyring === '') throw new TypeError('session: options.keyring required');
  if (typeof options.audience !== 'string') {
    throw new TypeError('session: options.audience required (a string naming this cookie\'s purpose; may be empty)');
  }
  const audience = options.audience;
  const cookieName = options.cookieName ?? 'session';
  checkName(cookieName);
  const ttlSeconds = options.ttlSeconds ?? 86400;
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds <= 0) throw new TypeError('session: ttlSeconds must be a positive integer');
  const maxAgeSeconds = options.maxAgeSeconds ?? ttlSeconds;
  const cookieOpts = normalizeCookieOptions({ maxAge: ttlSeconds * 1000, ...(options.cookie || {}) });
  const callOptions = options.deadlineMs ? { deadlineMs: options.deadlineMs } : undefined;
  const logger = { ...defaultLogger, ...(options.logger || {}) };
  const tag = `sessiontoken.session[${cookieName}]`;

  function secureFor(req) {
    if (cookieOpts.secure !== 'auto') return cookieOpts.secure;
    if (typeof req.secure === 'boolean') return req.secure;  // Express (honours 'trust proxy')
    return Boolean(req.socket && req.socket.encrypted);
  }

  // Reads and verifies the request's cookie. Never throws.
  async function load(req) {
    const token = readCookie(req.headers && req.headers.cookie, cookieName);
    if (!token) return { data: {}, refresh: false };
    if (token.length > MAX_TOKEN_CHARS) {
      // No format's token is that long (docs/token-format.md: MALFORMED). The server answers
      // such a Verify with INVALID_ARGUMENT, which would be logged as a service error.
      logger.debug(`${tag}: session cookie rejected: longer than ${MAX_TOKEN_CHARS} characters`);
      return { data: {}, refresh: false };
    }
    let r;
    try {
      r = await client.verify({ keyring, token, audience, maxAgeSeconds }, callOptions);
    } catch (err) {
      logger.error(`${tag}: cannot verify the session cookie, using an empty session: ${describe(err)}`);
      return { data: {}, refresh: false, failed: true };
    }
    if (!r.valid) {
      logger.debug(`${tag}: session cookie rejected: ${r.result}`);
      return { data: {}, refresh: false };
    }
    let data;
    try {
      data = JSON.parse(r.payload.toString('utf8'));
    } catch {
      data = undefined;
    }
    if (!isPlainObject(data)) {
      logger.warn(`${tag}: valid token whose payload is not a JSON object; using an empty session`);
      return { data: {}, refresh: false };
    }
    return { data, refresh: r.refreshRecommended };
  }

  // What the response needs, from req.session now: {kind: 'none'|'clear'|'sign', json}.
  function decide(req, state) {
    let current = req.session;
    if (current === undefined || current === null) current = {};
    if (typeof current !== 'object' || Array.isArray(current)) {
      logger.error(`${tag}: req.session must be a plain object; session not saved`);
      return { kind: 'none' };
    }
    let json;
    try {
      json = JSON.stringify(current);
    } catch (err) {
      logger.error(`${tag}: req.session is not JSON-serialisable; session not saved: ${describe(err)}`);
      return { kind: 'none' };
    }
    if (json === '{}') return { kind: state.initial === '{}' ? 'none' : 'clear' };
    if (json !== state.initial || state.refresh) return { kind: 'sign', json };
    return { kind: 'none' };
  }

  function hook(req, res, state) {
    const orig = {};
    for (const m of HOOKED) orig[m] = res[m];
    let phase = 'open';  // open -> (holding ->) done; wrappers stay installed, passing through
    const queue = [];
    let heldWrite = false;

    const warnLate = () => {
      let json;
      try { json = JSON.stringify(req.session ?? {}); } catch { return; }  // already logged
      if (json !== state.saved) {
        logger.warn(`${tag}: req.session changed after the response started; change not saved`);
      }
    };

    function replay() {
      phase = 'done';
      for (const { m, args } of queue) {
        try {
          orig[m].apply(res, args);
        } catch (err) {
          logger.error(`${tag}: response call ${m}() failed after the session was saved: ${describe(err)}`);
          if (!res.headersSent) {
            res.statusCode = 500;
            orig.end.call(res);
          } else {
            res.destroy(err);
          }
          return;
        }
      }
      queue.length = 0;
      if (heldWrite && !res.writableNeedDrain && !res.destroyed) res.emit('drain');
    }

    function start(m) {
      // First call that starts the response. Returns true when the call must be held.
      if (res.headersSent) {  // someone bypassed the hooked methods
        phase = 'done';
        return false;
      }
      const d = decide(req, state);
      const secure = secureFor(req);
      state.saved = d.json ?? state.initial;
      if (d.kind === 'clear') {
        appendSetCookie(res, serializeClearCookie(cookieName, cookieOpts, secure));
        state.saved = '{}';
      }
      if (d.kind !== 'sign') {
        phase = 'done';
        return false;
      }
      phase = 'holding';
      const refreshOnly = d.json === state.initial;
      Promise.resolve()
        .then(() => client.sign({ keyring, payload: d.json, ttlSeconds, audience }, callOptions))
        .then((signed) => {
          appendSetCookie(res, serializeCookie(cookieName, signed.token, cookieOpts, secure));
        }, (err) => {
          if (refreshOnly) {
            logger.warn(`${tag}: cannot re-issue the session cookie under the new key (kept the old one): ${describe(err)}`);
          } else {
            logger.error(`${tag}: cannot sign the session, session not saved: ${describe(err)}`);
          }
        })
        .catch((err) => logger.error(`${tag}: ${describe(err)}`))
        .finally(replay);
      return true;
    }

    for (const m of HOOKED) {
      if (typeof orig[m] !== 'function') continue;
      res[m] = function sessiontokenHook(...args) {
        if (phase === 'open' && !start(m)) return orig[m].apply(this, args);
        if (phase === 'done') {
          if (m === 'end') warnLate();
          return orig[m].apply(this, args);
        }
        queue.push({ m, args });  // holding
        if (m === 'write') {
          heldWrite = true;
          return false;  // ask streams to wait for 'drain' (emitted after the replay)
        }
        return m === 'flushHeaders' ? undefined : this;
      };
    }
  }

  return async function sessiontokenSession(req, res, next) {
    if (req[STATE]) {  // installed twice for one request
      next();
      return;
    }
    let loaded;
    try {
      loaded = await load(req);
    } catch (err) {  // defensive: load() does not throw
      logger.error(`${tag}: ${describe(err)}`);
      loaded = { data: {}, refresh: false };
    }
    const state = { initial: JSON.stringify(loaded.data), refresh: loaded.refresh, saved: undefined };
    req[STATE] = state;
    req.session = loaded.data;
    try {
      hook(req, res, state);
    } catch (err) {
      logger.error(`${tag}: cannot hook the response, session will not be saved: ${describe(err)}`);
    }
    next();
  };
}

module.exports = { session };
