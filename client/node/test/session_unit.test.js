'use strict';
// The session middleware with a scripted stand-in for the Client (no service), on a plain
// Node http server (no Express): decisions, cookie attributes, fail-closed paths, and the
// holding of writeHead/write/end while Sign is pending.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { recordingLogger } = require('../testing/harness');
const { request } = require('../testing/app');
const sessiontoken = require('..');

// A fake client: tokens are "tok-<n>" carrying JSON payloads in memory.
function fakeClient({ signDelayMs = 0 } = {}) {
  const store = new Map();
  let n = 0;
  const c = {
    signCalls: [],
    verifyCalls: [],
    failVerify: null,
    failSign: null,
    refresh: new Set(),
    async sign(o, callOptions) {
      c.signCalls.push({ ...o, callOptions });
      if (signDelayMs) await new Promise((r) => setTimeout(r, signDelayMs));
      if (c.failSign) throw c.failSign;
      const token = `tok-${++n}`;
      store.set(token, Buffer.from(o.payload));
      return { token, keyId: 1, issuedAt: new Date(), expiresAt: new Date() };
    },
    async verify(o, callOptions) {
      c.verifyCalls.push({ ...o, callOptions });
      if (c.failVerify) throw c.failVerify;
      const payload = store.get(o.token);
      if (!payload) return { result: 'BAD_SIGNATURE', valid: false, payload: null, refreshRecommended: false };
      return { result: 'VALID', valid: true, payload, refreshRecommended: c.refresh.has(o.token), issuedAt: c.issuedAt.get(o.token) ?? new Date() };
    },
    issuedAt: new Map(),
    put(obj, issuedAt) {
      const token = `tok-${++n}`;
      store.set(token, Buffer.from(JSON.stringify(obj)));
      if (issuedAt) c.issuedAt.set(token, issuedAt);
      return token;
    },
  };
  return c;
}

async function serve(mw, handler) {
  const srv = http.createServer((req, res) => {
    mw(req, res, () => {
      try { handler(req, res); } catch (e) { res.statusCode = 500; res.end(String(e)); }
    });
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${srv.address().port}`;
  return { base, close: () => new Promise((r) => srv.close(r)) };
}

test('options are checked when the middleware is made', () => {
  const client = fakeClient();
  assert.throws(() => sessiontoken.session({ keyring: 'k', audience: '' }), TypeError);
  assert.throws(() => sessiontoken.session({ client, audience: '' }), /keyring/);
  assert.throws(() => sessiontoken.session({ client, keyring: 'k' }), /audience/);
  assert.throws(() => sessiontoken.session({ client, keyring: 'k', audience: '', cookieName: 'a b' }), TypeError);
  assert.throws(() => sessiontoken.session({ client, keyring: 'k', audience: '', ttlSeconds: 0 }), TypeError);
  assert.throws(() => sessiontoken.session({ client, keyring: 'k', audience: '', cookie: { sameSite: 'sometimes' } }), TypeError);
  assert.throws(() => sessiontoken.session({ client, keyring: 'k', audience: '', cookie: { path: '/a;b' } }), TypeError);
  assert.equal(typeof sessiontoken.session({ client, keyring: 'k', audience: '' }), 'function');
});

test('plain http: sign on change, cookie attributes, call arguments', async (t) => {
  const client = fakeClient();
  const mw = sessiontoken.session({
    client, keyring: 'ring', audience: 'aud', cookieName: 'sid', ttlSeconds: 120, deadlineMs: 700,
    cookie: { secure: true, sameSite: 'strict', domain: 'example.test', path: '/app', httpOnly: false, maxAge: 120000 },
  });
  const app = await serve(mw, (req, res) => {
    if (req.url === '/set') req.session.a = 1;
    res.end(JSON.stringify(req.session));
  });
  t.after(app.close);
  const r = await request(app.base, 'GET', '/set', { cookieName: 'sid' });
  assert.equal(r.session.value, 'tok-1');
  assert.deepEqual(r.session.attrs, {
    'max-age': '120', expires: r.session.attrs.expires, domain: 'example.test', path: '/app', secure: true, samesite: 'Strict',
  });
  assert.ok(Math.abs(new Date(r.session.attrs.expires) - Date.now() - 120000) < 5000);
  assert.deepEqual(client.signCalls, [{ keyring: 'ring', payload: '{"a":1}', ttlSeconds: 120, audience: 'aud', callOptions: { deadlineMs: 700 } }]);
  const r2 = await request(app.base, 'GET', '/get', { cookie: 'tok-1', cookieName: 'sid' });
  assert.deepEqual(JSON.parse(r2.text), { a: 1 });
  assert.deepEqual(client.verifyCalls.at(-1), { keyring: 'ring', token: 'tok-1', audience: 'aud', maxAgeSeconds: 120, callOptions: { deadlineMs: 700 } });
  assert.equal(r2.session, undefined);
});

for (const cookie of [undefined, { maxAge: null }]) {
  test(`cookie ${JSON.stringify(cookie)}: a browser-session cookie (as express-session); secure "auto" is off on HTTP`, async (t) => {
    const client = fakeClient();
    const mw = sessiontoken.session({ client, keyring: 'k', audience: '', cookie });
    const app = await serve(mw, (req, res) => { req.session.x = 1; res.end(); });
    t.after(app.close);
    const r = await request(app.base, 'GET', '/');
    assert.equal(r.session.value, 'tok-1');
    assert.equal(r.session.attrs['max-age'], undefined);
    assert.equal(r.session.attrs.expires, undefined);
    assert.equal(r.session.attrs.secure, undefined);
    assert.equal(r.session.attrs.httponly, true);
    assert.equal(r.session.attrs.samesite, 'Lax');
  });
}

test('options of express-session/cookie-session that mean nothing here are warned about', () => {
  const client = fakeClient();
  const logger = recordingLogger();
  sessiontoken.session({
    client, keyring: 'k', audience: '', logger, name: 'sid', maxAge: 1000, rolling: true, cookie: { expires: new Date(), sameSite: 'lax' },
  });
  assert.equal(logger.find('warn', /unknown option "name" ignored \(use cookieName\)/).length, 1);
  assert.equal(logger.find('warn', /unknown option "maxAge" ignored \(use cookie.maxAge/).length, 1);
  assert.equal(logger.find('warn', /unknown option "rolling" ignored \(use refreshAfterSeconds\)/).length, 1);
  assert.equal(logger.find('warn', /unknown option cookie.expires ignored/).length, 1);
  assert.equal(logger.entries.length, 4, JSON.stringify(logger.entries));
  logger.clear();
  sessiontoken.session({ client, keyring: 'k', audience: '', logger, refreshAfterSeconds: 60, maxPayloadBytes: null, cookie: { partitioned: true } });
  assert.deepEqual(logger.entries, []);
  assert.throws(() => sessiontoken.session({ client, keyring: 'k', audience: '', ttlSeconds: 60, refreshAfterSeconds: 60 }), /less than ttlSeconds/);
  assert.throws(() => sessiontoken.session({ client, keyring: 'k', audience: '', maxPayloadBytes: 0 }), /maxPayloadBytes/);
});

test('secure "auto" behind an untrusted HTTPS proxy: no Secure attribute, one warning', async (t) => {
  const client = fakeClient();
  const logger = recordingLogger();
  const mw = sessiontoken.session({ client, keyring: 'k', audience: '', logger });
  const app = await serve(mw, (req, res) => { req.session.x = (req.session.x || 0) + 1; res.end(); });
  t.after(app.close);
  for (let i = 0; i < 2; i++) {
    const res = await fetch(app.base, { headers: { 'x-forwarded-proto': 'https' } });
    assert.equal(await res.text(), '');
    assert.doesNotMatch(res.headers.get('set-cookie'), /Secure/);
  }
  assert.equal(logger.find('warn', /X-Forwarded-Proto: https.*does not trust the proxy/).length, 1, JSON.stringify(logger.entries));
});

test('refresh_recommended re-issues an unchanged session; other cookies are kept', async (t) => {
  const client = fakeClient();
  const old = client.put({ user: 'u' });
  client.refresh.add(old);
  const mw = sessiontoken.session({ client, keyring: 'k', audience: '' });
  const app = await serve(mw, (req, res) => {
    res.setHeader('Set-Cookie', 'theme=dark; Path=/');
    res.end(JSON.stringify(req.session));
  });
  t.after(app.close);
  const r = await request(app.base, 'GET', '/', { cookie: old });
  assert.deepEqual(JSON.parse(r.text), { user: 'u' });
  assert.notEqual(r.session.value, old);
  assert.deepEqual(client.signCalls.map((c) => c.payload), ['{"user":"u"}']);
  assert.deepEqual(r.setCookies.map((c) => c.name).sort(), ['session', 'theme']);
});

test('a failed refresh keeps the old cookie and only warns', async (t) => {
  const client = fakeClient();
  const old = client.put({ user: 'u' });
  client.refresh.add(old);
  client.failSign = new Error('UNAVAILABLE: down');
  const logger = recordingLogger();
  const mw = sessiontoken.session({ client, keyring: 'k', audience: '', logger });
  const app = await serve(mw, (req, res) => res.end(JSON.stringify(req.session)));
  t.after(app.close);
  const r = await request(app.base, 'GET', '/', { cookie: old });
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.text), { user: 'u' });
  assert.equal(r.session, undefined);
  assert.equal(logger.find('warn', /cannot re-issue/).length, 1);
  assert.equal(logger.find('error', /./).length, 0);
});

test('verify failure: empty session, error logged, cookie neither trusted nor deleted', async (t) => {
  const client = fakeClient();
  const token = client.put({ user: 'u' });
  client.failVerify = Object.assign(new Error('SessionTokens.Verify: UNAVAILABLE: no connection'), { code: 14 });
  const logger = recordingLogger();
  const mw = sessiontoken.session({ client, keyring: 'k', audience: '', logger });
  const app = await serve(mw, (req, res) => {
    if (req.url === '/clear') for (const k of Object.keys(req.session)) delete req.session[k];
    res.end(JSON.stringify(req.session));
  });
  t.after(app.close);
  for (const url of ['/', '/clear']) {
    const r = await request(app.base, 'GET', url, { cookie: token });
    assert.equal(r.status, 200);
    assert.equal(r.text, '{}');
    assert.equal(r.session, undefined, `${url}: must not touch the cookie`);
  }
  assert.equal(logger.find('error', /cannot verify.*UNAVAILABLE/).length, 2);
});

test('writes are held, in order, until Sign answers; drain is emitted', async (t) => {
  const client = fakeClient({ signDelayMs: 80 });
  const mw = sessiontoken.session({ client, keyring: 'k', audience: '' });
  const order = [];
  const app = await serve(mw, (req, res) => {
    req.session.s = 1;
    res.statusCode = 201;
    res.setHeader('X-Before', '1');
    const ok = res.write('one,');
    order.push(`write returned ${ok}`);
    res.once('drain', () => order.push('drain'));
    res.write('two,');
    res.end('three', () => order.push('end callback'));
    order.push(`headersSent ${res.headersSent}`);
  });
  t.after(app.close);
  const r = await request(app.base, 'GET', '/');
  assert.equal(r.status, 201);
  assert.equal(r.text, 'one,two,three');
  assert.equal(r.headers.get('x-before'), '1');
  assert.equal(r.session.value, 'tok-1');
  assert.deepEqual(order, ['write returned false', 'headersSent false', 'drain', 'end callback']);
});

test('a response call that throws during the replay ends with 500 instead of crashing', async (t) => {
  const client = fakeClient({ signDelayMs: 10 });
  const logger = recordingLogger();
  const mw = sessiontoken.session({ client, keyring: 'k', audience: '', logger });
  const app = await serve(mw, (req, res) => {
    req.session.s = 1;
    res.writeHead(99999);  // invalid status: throws when really written
    res.end('x');
  });
  t.after(app.close);
  const r = await request(app.base, 'GET', '/');
  assert.equal(r.status, 500);
  assert.equal(logger.find('error', /writeHead\(\) failed/).length, 1);
});

test('installed twice: the second instance passes through', async (t) => {
  const client = fakeClient();
  const token = client.put({ a: 1 });
  const mw = sessiontoken.session({ client, keyring: 'k', audience: '' });
  const app = await serve((req, res, next) => mw(req, res, () => mw(req, res, next)), (req, res) => {
    req.session.b = 2;
    res.end(JSON.stringify(req.session));
  });
  t.after(app.close);
  const r = await request(app.base, 'GET', '/', { cookie: token });
  assert.deepEqual(JSON.parse(r.text), { a: 1, b: 2 });
  assert.equal(client.verifyCalls.length, 1);
  assert.equal(client.signCalls.length, 1);
});

test('quoted cookie values and several cookies in the header are read', async (t) => {
  const client = fakeClient();
  const token = client.put({ q: 1 });
  const mw = sessiontoken.session({ client, keyring: 'k', audience: '' });
  const app = await serve(mw, (req, res) => res.end(JSON.stringify(req.session)));
  t.after(app.close);
  const res = await fetch(app.base, { headers: { cookie: `a=1; session="${token}"; b=2` } });
  assert.deepEqual(await res.json(), { q: 1 });
  assert.deepEqual(client.verifyCalls.map((c) => c.token), [token]);
});

test('a cookie longer than any token is rejected without a call or an error', async (t) => {
  const client = fakeClient();
  const logger = recordingLogger();
  const mw = sessiontoken.session({ client, keyring: 'k', audience: '', logger });
  const app = await serve(mw, (req, res) => res.end(JSON.stringify(req.session)));
  t.after(app.close);
  const r = await request(app.base, 'GET', '/', { cookie: 'A'.repeat(4096) });
  assert.equal(r.text, '{}');
  assert.equal(client.verifyCalls.length, 0);
  assert.equal(logger.find('error', /./).length, 0);
  await request(app.base, 'GET', '/', { cookie: 'A'.repeat(4095) });
  assert.equal(client.verifyCalls.length, 1, 'a 4095-character cookie is still verified');
});

test('unverified session (Verify failed): writes, clears and too-large sessions never touch the cookie', async (t) => {
  const client = fakeClient();
  const token = client.put({ user: 'u' });
  client.failVerify = Object.assign(new Error('SessionTokens.Verify: DEADLINE_EXCEEDED: stalled'), { code: 4 });
  const logger = recordingLogger();
  const mw = sessiontoken.session({ client, keyring: 'k', audience: '', logger });
  const app = await serve(mw, (req, res) => {
    if (req.url === '/csrf') req.session.csrf = 'c';
    if (req.url === '/huge') req.session.blob = 'x'.repeat(5000);
    if (req.url === '/null') req.session = null;
    res.end(JSON.stringify(req.session));
  });
  t.after(app.close);
  for (const url of ['/csrf', '/huge', '/null']) {
    logger.clear();
    const r = await request(app.base, 'GET', url, { cookie: token });
    assert.equal(r.status, 200);
    assert.equal(r.session, undefined, `${url}: must not touch the cookie`);
    // One warning when the app wrote into the unverified session (null leaves it empty).
    assert.equal(logger.find('warn', /not saved: the request's cookie could not be verified/).length, url === '/null' ? 0 : 1,
      JSON.stringify(logger.entries));
  }
  assert.equal(client.signCalls.length, 0);
});

test('express-session methods: non-enumerable regenerate, save, destroy, reload', async (t) => {
  const client = fakeClient();
  const token = client.put({ user: 'u', n: 1 });
  const mw = sessiontoken.session({ client, keyring: 'k', audience: '', maxPayloadBytes: 100 });
  const app = await serve(mw, (req, res) => {
    const s = req.session;
    assert.deepEqual(Object.keys(s).filter((k) => typeof s[k] === 'function'), []);
    const done = (out) => res.end(JSON.stringify(out));
    if (req.url === '/regenerate') {
      s.regenerate((err) => { req.session.fresh = true; done({ err: err ?? null, old: s.user ?? null }); });
    } else if (req.url === '/reload') {
      s.n = 99;
      s.reload((err) => done({ err: err ?? null, n: req.session.n }));
    } else if (req.url === '/destroy') {
      s.destroy((err) => done({ err: err ?? null, session: req.session ?? null }));
    } else if (req.url === '/save-too-large') {
      s.blob = 'x'.repeat(200);
      s.save((err) => { delete req.session.blob; done({ err: err ? err.name : null }); });
    } else {
      s.save((err) => done({ err: err ?? null, keys: Object.keys(req.session) }));
    }
  });
  t.after(app.close);
  let r = await request(app.base, 'GET', '/regenerate', { cookie: token });
  assert.deepEqual(JSON.parse(r.text), { err: null, old: 'u' });
  assert.equal(client.signCalls.at(-1).payload, '{"fresh":true}');
  r = await request(app.base, 'GET', '/reload', { cookie: token });
  assert.deepEqual(JSON.parse(r.text), { err: null, n: 1 });
  assert.equal(r.session, undefined);
  r = await request(app.base, 'GET', '/destroy', { cookie: token });
  assert.deepEqual(JSON.parse(r.text), { err: null, session: null });
  assert.equal(r.session.value, '');
  assert.equal(r.session.attrs['max-age'], '0');
  r = await request(app.base, 'GET', '/save-too-large', { cookie: token });
  assert.deepEqual(JSON.parse(r.text), { err: 'SessionTooLargeError' });
  r = await request(app.base, 'GET', '/save', { cookie: token });
  assert.deepEqual(JSON.parse(r.text), { err: null, keys: ['user', 'n'] });
  assert.equal(r.session, undefined);
});

test('refreshAfterSeconds: only a token older than the threshold is re-signed', async (t) => {
  const client = fakeClient();
  const fresh = client.put({ user: 'u' }, new Date(Date.now() - 10 * 1000));
  const old = client.put({ user: 'u' }, new Date(Date.now() - 120 * 1000));
  const mw = sessiontoken.session({ client, keyring: 'k', audience: '', ttlSeconds: 3600, refreshAfterSeconds: 60 });
  const app = await serve(mw, (req, res) => res.end(JSON.stringify(req.session)));
  t.after(app.close);
  let r = await request(app.base, 'GET', '/', { cookie: fresh });
  assert.equal(r.session, undefined);
  assert.equal(client.signCalls.length, 0);
  r = await request(app.base, 'GET', '/', { cookie: old });
  assert.ok(r.session, 'an old token is re-signed');
  assert.equal(client.signCalls.length, 1);
  assert.equal(client.signCalls[0].payload, '{"user":"u"}');
});

test('too large or not signable: changed session -> cookie deleted, error logged', async (t) => {
  const client = fakeClient();
  const token = client.put({ user: 'u', role: 'admin' });
  const logger = recordingLogger();
  const mw = sessiontoken.session({ client, keyring: 'k', audience: '', logger });
  const app = await serve(mw, (req, res) => {
    delete req.session.role;
    if (req.url === '/huge') req.session.blob = 'x'.repeat(3000);
    res.end('ok');
  });
  t.after(app.close);
  let r = await request(app.base, 'GET', '/huge', { cookie: token });
  assert.equal(r.session.value, '');
  assert.equal(logger.find('error', /session too large: 30\d\d bytes exceeds the limit of 2048/).length, 1, JSON.stringify(logger.entries));
  assert.equal(client.signCalls.length, 0, 'the client-side limit saves the RPC');
  // The service's own refusal (INVALID_ARGUMENT "payload: ...") is the same error.
  logger.clear();
  client.failSign = Object.assign(new Error('SessionTokens.Sign: INVALID_ARGUMENT: payload: 3000 bytes exceeds the limit of 1000'),
    { code: 3, details: 'payload: 3000 bytes exceeds the limit of 1000' });
  r = await request(app.base, 'GET', '/', { cookie: token });
  assert.equal(r.session.value, '');
  assert.equal(logger.find('error', /session too large.*payload: 3000 bytes/).length, 1, JSON.stringify(logger.entries));
  logger.clear();
  client.failSign = Object.assign(new Error('SessionTokens.Sign: UNAVAILABLE: down'), { code: 14 });
  r = await request(app.base, 'GET', '/', { cookie: token });
  assert.equal(r.session.value, '');
  assert.equal(logger.find('error', /cannot sign the session, session not saved, cookie deleted: .*UNAVAILABLE/).length, 1);
});
