'use strict';
// Minimal RFC 6265 cookie reading/writing, so that the middleware needs neither
// cookie-parser nor Express's res.cookie (it works on any Node http.ServerResponse).

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;           // cookie-name (RFC 7230 token)
const COOKIE_VALUE = /^[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*$/;  // cookie-octet*
const ATTR_VALUE = /^[\x20-\x3A\x3C-\x7E]*$/;              // no ';' and no control chars

/** The first value of cookie `name` in a Cookie request header, or undefined. */
function readCookie(header, name) {
  if (!header) return undefined;
  const text = Array.isArray(header) ? header.join('; ') : String(header);
  for (const part of text.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    let value = part.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    return value;
  }
  return undefined;
}

function checkName(name) {
  if (typeof name !== 'string' || !TOKEN.test(name)) throw new TypeError(`invalid cookie name ${JSON.stringify(name)}`);
}

function sameSiteAttr(v) {
  if (v === undefined || v === null || v === false) return null;
  if (v === true) return 'Strict';
  const s = String(v).toLowerCase();
  if (s === 'strict') return 'Strict';
  if (s === 'lax') return 'Lax';
  if (s === 'none') return 'None';
  throw new TypeError(`cookie.sameSite: ${JSON.stringify(v)} (strict, lax, none, true or false)`);
}

/** The cookie options normalizeCookieOptions knows. */
const COOKIE_OPTIONS = Object.freeze(['httpOnly', 'secure', 'sameSite', 'path', 'domain', 'maxAge', 'partitioned']);

/**
 * Validates cookie options once (at middleware creation). maxAge is in milliseconds like
 * Express's res.cookie; null/undefined (the default, as express-session's) gives a
 * browser-session cookie.
 */
function normalizeCookieOptions(o) {
  const out = {
    httpOnly: o.httpOnly !== undefined ? Boolean(o.httpOnly) : true,
    secure: o.secure === 'auto' || o.secure === undefined ? 'auto' : Boolean(o.secure),
    sameSite: sameSiteAttr(o.sameSite === undefined ? 'lax' : o.sameSite),
    path: o.path === undefined ? '/' : o.path,
    domain: o.domain,
    maxAge: o.maxAge,
    partitioned: Boolean(o.partitioned),
  };
  for (const k of ['path', 'domain']) {
    if (out[k] !== undefined && out[k] !== null && (typeof out[k] !== 'string' || !ATTR_VALUE.test(out[k]))) {
      throw new TypeError(`cookie.${k}: invalid value ${JSON.stringify(out[k])}`);
    }
  }
  if (out.maxAge !== undefined && out.maxAge !== null && !(Number.isFinite(out.maxAge) && out.maxAge >= 0)) {
    throw new TypeError('cookie.maxAge must be a number of milliseconds >= 0 (or null)');
  }
  return out;
}

function attributes(o, secure) {
  let s = '';
  if (o.domain) s += `; Domain=${o.domain}`;
  if (o.path) s += `; Path=${o.path}`;
  if (o.httpOnly) s += '; HttpOnly';
  if (secure) s += '; Secure';
  if (o.partitioned) s += '; Partitioned';
  if (o.sameSite) s += `; SameSite=${o.sameSite}`;
  return s;
}

/** Set-Cookie value that stores `value`. */
function serializeCookie(name, value, o, secure, now = Date.now()) {
  checkName(name);
  if (typeof value !== 'string' || !COOKIE_VALUE.test(value)) throw new TypeError('invalid cookie value');
  let s = `${name}=${value}`;
  if (o.maxAge !== undefined && o.maxAge !== null) {
    s += `; Max-Age=${Math.floor(o.maxAge / 1000)}; Expires=${new Date(now + o.maxAge).toUTCString()}`;
  }
  return s + attributes(o, secure);
}

/** Set-Cookie value that deletes the cookie (same Domain/Path, so the browser matches it). */
function serializeClearCookie(name, o, secure) {
  checkName(name);
  return `${name}=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT${attributes(o, secure)}`;
}

function appendSetCookie(res, value) {
  const prev = res.getHeader('Set-Cookie');
  if (prev === undefined) res.setHeader('Set-Cookie', value);
  else res.setHeader('Set-Cookie', (Array.isArray(prev) ? prev : [String(prev)]).concat(value));
}

module.exports = {
  readCookie, serializeCookie, serializeClearCookie, appendSetCookie, normalizeCookieOptions, checkName, COOKIE_OPTIONS,
};
