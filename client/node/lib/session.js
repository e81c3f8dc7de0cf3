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
//     unverified cookie is never trusted), the error is logged and the request goes on. That
//     session is marked unverified and is never saved: whatever the app writes into it, the
//     browser's cookie is neither replaced nor deleted (one warning is logged), unless the
//     app explicitly calls req.session.regenerate() or destroy() (a login or a logout);
//   * req.session has express-session's methods (non-enumerable): regenerate, save,
//     destroy, reload, so that Passport (0.6+) and express-session code work;
//   * refreshAfterSeconds (opt-in): rolling expiry, an unchanged session is re-signed only
//     when its token is older than that;
//   * a session larger than maxPayloadBytes (or that Sign refuses with INVALID_ARGUMENT
//     "payload:") is not saved: an error "session too large" is logged and, if the session
//     was changed, the cookie is deleted (the previous state is not left behind). Any other
//     Sign failure of a changed session does the same (as the Flask interface does).
//
//   * revocation (the service's Revoke): with subjectKey (e.g. 'user_id'), every token is
//     signed with the subject req.session[subjectKey] (when set). req.session.logout()
//     revokes the request's token and deletes the cookie; req.session.logoutEverywhere()
//     revokes every session of that subject issued until now ("log out everywhere": other
//     devices' cookies are REVOKED on their next request) and deletes the cookie. Both
//     return a Promise (and take an optional callback); the cookie is deleted even when the
//     revocation fails, which then rejects so the app can tell the user.
//
// When the session is saved: Sign is asynchronous, but cookies must be set before the
// response headers go out. The middleware wraps the calls that start a response
// (res.writeHead, res.write, res.end, res.flushHeaders). At the first of them it looks at
// req.session: if a new token is needed, that call and every later one are held in order
// until Sign has answered and Set-Cookie is set, then replayed. So res.send/json/redirect,
// explicit writeHead + end, res.write streaming and piped streams (sendFile) all carry the
// cookie. Changes made to req.session after the response has started are not saved (as in
// Flask); they are logged as a warning.

const {
  readCookie, serializeCookie, serializeClearCookie, appendSetCookie, normalizeCookieOptions, checkName, COOKIE_OPTIONS,
} = require('./cookie');
const { MAX_TOKEN_CHARS } = require('./native');
const { SessionTooLargeError } = require('./errors');

const STATE = Symbol('sessiontoken.session');
const HOOKED = ['writeHead', 'write', 'end', 'flushHeaders'];
const INVALID_ARGUMENT = 3;

/** The service's default limit of a native token's payload (server flag max_payload_bytes). */
const DEFAULT_MAX_PAYLOAD_BYTES = 2048;

const OPTIONS = new Set([
  'client', 'keyring', 'audience', 'cookieName', 'ttlSeconds', 'maxAgeSeconds', 'deadlineMs',
  'cookie', 'logger', 'refreshAfterSeconds', 'maxPayloadBytes', 'subjectKey',
]);
// Options of express-session / cookie-session that mean something else here.
const HINTS = {
  name: 'use cookieName',
  maxAge: 'use cookie.maxAge (milliseconds) and ttlSeconds',
  rolling: 'use refreshAfterSeconds',
  secret: 'not needed: the service holds the keys',
  keys: 'not needed: the service holds the keys',
  store: 'not supported: the session is stored in the cookie',
  resave: 'not needed: the cookie is written only when the session changed',
  saveUninitialized: 'not needed: an empty session sets no cookie',
  expires: 'use cookie.maxAge',
  signed: 'always signed by the service',
};

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

function warnUnknown(options, logger, tag) {
  for (const k of Object.keys(options)) {
    if (OPTIONS.has(k)) continue;
    logger.warn(`${tag}: unknown option ${JSON.stringify(k)} ignored${HINTS[k] ? ` (${HINTS[k]})` : ''}`);
  }
  for (const k of Object.keys(options.cookie || {})) {
    if (COOKIE_OPTIONS.includes(k)) continue;
    logger.warn(`${tag}: unknown option cookie.${k} ignored${HINTS[k] ? ` (${HINTS[k]})` : ''}`);
  }
}

function positiveInteger(value, name, { nullable = false } = {}) {
  if (nullable && value === null) return null;
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new TypeError(`session: ${name} must be a positive integer${nullable ? ' (or null)' : ''}`);
  }
  return value;
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
  const ttlSeconds = positiveInteger(options.ttlSeconds ?? 86400, 'ttlSeconds');
  const maxAgeSeconds = options.maxAgeSeconds ?? ttlSeconds;
  const refreshAfterSeconds = options.refreshAfterSeconds === undefined ? null
    : positiveInteger(options.refreshAfterSeconds, 'refreshAfterSeconds', { nullable: true });
  if (refreshAfterSeconds !== null && refreshAfterSeconds >= ttlSeconds) {
    throw new TypeError('session: refreshAfterSeconds must be less than ttlSeconds');
  }
  const maxPayloadBytes = options.maxPayloadBytes === undefined ? DEFAULT_MAX_PAYLOAD_BYTES
    : positiveInteger(options.maxPayloadBytes, 'maxPayloadBytes', { nullable: true });
  const subjectKey = options.subjectKey ?? null;
  if (subjectKey !== null && (typeof subjectKey !== 'string' || subjectKey === '')) {
    throw new TypeError('session: subjectKey must be a non-empty string (the session key holding the user id)');
  }
  const cookieOpts = normalizeCookieOptions({ ...(options.cookie || {}) });
  const callOptions = options.deadlineMs ? { deadlineMs: options.deadlineMs } : undefined;
  const logger = { ...defaultLogger, ...(options.logger || {}) };
  const tag = `sessiontoken.session[${cookieName}]`;
  warnUnknown(options, logger, tag);
  let warnedProxy = false;

  function secureFor(req) {
    if (cookieOpts.secure !== 'auto') return cookieOpts.secure;
    const secure = typeof req.secure === 'boolean'
      ? req.secure  // Express (honours 'trust proxy')
      : Boolean(req.socket && req.socket.encrypted);
    if (!secure && !warnedProxy) {
      const xfp = String((req.headers && req.headers['x-forwarded-proto']) || '').split(',')[0].trim().toLowerCase();
      if (xfp === 'https') {
        warnedProxy = true;
        logger.warn(`${tag}: cookie.secure is 'auto' and the request came through a proxy as HTTPS ` +
          '(X-Forwarded-Proto: https), but the app does not trust the proxy (Express: app.set(\'trust proxy\', ...)): ' +
          'the session cookie is sent without the Secure attribute');
      }
    }
    return secure;
  }

  // Reads and verifies the request's cookie. Never throws.
  // Resolves {data, refresh, hadCookie, unverified}.
  async function load(req) {
    const token = readCookie(req.headers && req.headers.cookie, cookieName);
    if (!token) return { data: {}, refresh: false, hadCookie: false };
    if (token.length > MAX_TOKEN_CHARS) {
      // No format's token is that long (docs/token-format.md: MALFORMED). The server answers
      // such a Verify with INVALID_ARGUMENT, which would be logged as a service error.
      logger.debug(`${tag}: session cookie rejected: longer than ${MAX_TOKEN_CHARS} characters`);
      return { data: {}, refresh: false, hadCookie: true };
    }
    let r;
    try {
      r = await client.verify({ keyring, token, audience, maxAgeSeconds }, callOptions);
    } catch (err) {
      logger.error(`${tag}: cannot verify the session cookie, using an empty session: ${describe(err)}`);
      return { data: {}, refresh: false, hadCookie: true, unverified: true };
    }
    if (!r.valid) {
      logger.debug(`${tag}: session cookie rejected: ${r.result}`);
      return { data: {}, refresh: false, hadCookie: true };
    }
    let data;
    try {
      data = JSON.parse(r.payload.toString('utf8'));
    } catch {
      data = undefined;
    }
    if (!isPlainObject(data)) {
      logger.warn(`${tag}: valid token whose payload is not a JSON object; using an empty session`);
      return { data: {}, refresh: false, hadCookie: true };
    }
    let refresh = Boolean(r.refreshRecommended);
    if (refreshAfterSeconds !== null && r.issuedAt instanceof Date) {
      refresh = refresh || (Date.now() - r.issuedAt.getTime()) / 1000 >= refreshAfterSeconds;
    }
    return { data, refresh, hadCookie: true, token };
  }

  // The subject of a session (its subjectKey value as a string), or '' when none.
  function subjectOf(data) {
    if (subjectKey === null || !data || typeof data !== 'object') return '';
    const v = data[subjectKey];
    return v === undefined || v === null ? '' : String(v);
  }

  // Revokes with `target` ({token, audience} or {subject}) after the session is destroyed.
  function revokeThenDestroy(req, st, target, cb) {
    st.regenerated = true;
    delete req.session;  // the cookie is deleted whatever the service answers
    const p = target === null ? Promise.resolve(null)
      : client.revoke({ keyring, ...target }, callOptions);
    const done = p.then((r) => r, (err) => {
      logger.error(`${tag}: revocation failed (the cookie is deleted anyway): ${describe(err)}`);
      throw err;
    });
    if (typeof cb === 'function') done.then((r) => cb(undefined, r), (err) => cb(err));
    return done;
  }

  // The JSON of `value` if it is a savable session, else an Error.
  function serialise(value) {
    if (value === undefined || value === null) return '{}';
    if (typeof value !== 'object' || Array.isArray(value)) {
      return new TypeError('req.session must be a plain object');
    }
    try {
      return JSON.stringify(value);
    } catch (err) {
      return new TypeError(`req.session is not JSON-serialisable: ${describe(err)}`);
    }
  }

  function tooLarge(json) {
    const size = Buffer.byteLength(json, 'utf8');
    if (maxPayloadBytes === null || size <= maxPayloadBytes) return null;
    return new SessionTooLargeError({ size, limit: maxPayloadBytes });
  }

  // What the response needs, from req.session now: {kind: 'none'|'clear'|'sign', json}.
  function decide(req, state) {
    const json = serialise(req.session);
    if (json instanceof Error) {
      logger.error(`${tag}: session not saved: ${json.message}`);
      return { kind: 'none' };
    }
    if (state.unverified && !state.regenerated) {
      // The cookie could not be checked: it may hold a valid login. Never touch it.
      if (json !== state.initial) {
        logger.warn(`${tag}: session not saved: the request's cookie could not be verified; the cookie is left unchanged`);
      }
      return { kind: 'none', json };
    }
    if (json === '{}') {
      const cookiePresent = state.initial !== '{}' || (state.regenerated && state.hadCookie);
      return { kind: cookiePresent ? 'clear' : 'none', json };
    }
    if (json !== state.initial || state.refresh || state.regenerated) return { kind: 'sign', json };
    return { kind: 'none', json };
  }

  // Gives req.session express-session's methods (non-enumerable, so never serialised).
  function attach(req, state, data) {
    const later = (cb, err) => { if (typeof cb === 'function') setImmediate(cb, err); };
    const methods = {
      regenerate(cb) {  // a new, empty session (also replaces an unverified one: a login)
        state.regenerated = true;
        req.session = attach(req, state, {});
        later(cb);
        return req.session;
      },
      save(cb) {  // checked now; written when the response starts
        let err = serialise(req.session);
        err = err instanceof Error ? err : tooLarge(err);
        later(cb, err || undefined);
        return this;
      },
      destroy(cb) {  // the cookie is deleted (also an unverified one: a logout)
        state.regenerated = true;
        delete req.session;
        later(cb);
        return this;
      },
      logout(cb) {  // revokes this request's token, deletes the cookie
        return revokeThenDestroy(req, state, state.token ? { token: state.token, audience } : null, cb);
      },
      logoutEverywhere(cb) {  // revokes every session of this subject, deletes the cookie
        const subject = subjectOf(req.session);
        if (!subject) {
          const err = new TypeError(`logoutEverywhere: the session has no ${subjectKey === null ? 'subjectKey option' : subjectKey}`);
          if (typeof cb === 'function') { setImmediate(cb, err); return Promise.resolve(null); }
          return Promise.reject(err);
        }
        return revokeThenDestroy(req, state, { subject }, cb);
      },
      reload(cb) {  // back to what the request's cookie held
        req.session = attach(req, state, JSON.parse(state.initial));
        later(cb);
        return req.session;
      },
    };
    for (const [name, fn] of Object.entries(methods)) {
      Object.defineProperty(data, name, { value: fn, enumerable: false, writable: true, configurable: true });
    }
    return data;
  }

  // Signs `json`; resolves the Set-Cookie value to add, or null.
  async function sign(st, json, refreshOnly, secure) {
    let err = tooLarge(json);
    if (!err) {
      try {
        const req = { keyring, payload: json, ttlSeconds, audience };
        const subject = subjectOf(JSON.parse(json));
        if (subject) req.subject = subject;
        const signed = await client.sign(req, callOptions);
        return serializeCookie(cookieName, signed.token, cookieOpts, secure);
      } catch (e) {
        err = e;
        if (e && e.code === INVALID_ARGUMENT && String(e.details || '').startsWith('payload:')) {
          err = new SessionTooLargeError({ size: Buffer.byteLength(json, 'utf8'), limit: null, details: e.details });
        }
      }
    }
    const what = err instanceof SessionTooLargeError ? 'session not saved' : 'cannot sign the session, session not saved';
    if (refreshOnly || st.unverified || !st.hadCookie) {
      // A refresh keeps the (still valid) old cookie; an unverified one is never touched.
      const kept = st.hadCookie ? ' (the cookie is left unchanged)' : '';
      logger[refreshOnly ? 'warn' : 'error'](`${tag}: ${refreshOnly ? 'cannot re-issue the session cookie' : what}${kept}: ${describe(err)}`);
      return null;
    }
    // A changed session that cannot be stored must not leave the previous state behind.
    logger.error(`${tag}: ${what}, cookie deleted: ${describe(err)}`);
    return serializeClearCookie(cookieName, cookieOpts, secure);
  }

  function hook(req, res, st) {
    const orig = {};
    for (const m of HOOKED) orig[m] = res[m];
    let phase = 'open';  // open -> (holding ->) done; wrappers stay installed, passing through
    const queue = [];
    let heldWrite = false;

    const warnLate = () => {
      const json = serialise(req.session);
      if (json instanceof Error) return;  // already logged
      if (json !== st.saved) {
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

    function start() {
      // First call that starts the response. Returns true when the call must be held.
      if (res.headersSent) {  // someone bypassed the hooked methods
        phase = 'done';
        return false;
      }
      const d = decide(req, st);
      st.saved = d.json ?? st.initial;
      if (d.kind === 'none') {
        phase = 'done';
        return false;
      }
      const secure = secureFor(req);
      if (d.kind === 'clear') {
        appendSetCookie(res, serializeClearCookie(cookieName, cookieOpts, secure));
        phase = 'done';
        return false;
      }
      phase = 'holding';
      const refreshOnly = d.json === st.initial && !st.regenerated;
      sign(st, d.json, refreshOnly, secure)
        .then((cookie) => { if (cookie) appendSetCookie(res, cookie); })
        .catch((err) => logger.error(`${tag}: ${describe(err)}`))
        .finally(replay);
      return true;
    }

    for (const m of HOOKED) {
      if (typeof orig[m] !== 'function') continue;
      res[m] = function sessiontokenHook(...args) {
        if (phase === 'open' && !start()) return orig[m].apply(this, args);
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
      loaded = { data: {}, refresh: false, hadCookie: true, unverified: true };
    }
    const st = {
      initial: JSON.stringify(loaded.data),
      refresh: loaded.refresh,
      hadCookie: loaded.hadCookie,
      unverified: Boolean(loaded.unverified),
      token: loaded.token,  // the valid token this request came with (logout revokes it)
      regenerated: false,
      saved: undefined,
    };
    req[STATE] = st;
    req.session = attach(req, st, loaded.data);
    try {
      hook(req, res, st);
    } catch (err) {
      logger.error(`${tag}: cannot hook the response, session will not be saved: ${describe(err)}`);
    }
    next();
  };
}

module.exports = { session, DEFAULT_MAX_PAYLOAD_BYTES };
