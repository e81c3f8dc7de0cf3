'use strict';
// The Express journey against the real sessiontoken-server binary: real HTTP requests with
// cookies to a real Express 5 app on 127.0.0.1. login -> session persists -> rotate through
// the admin API -> the old cookie is still accepted and re-issued under the new key id ->
// tampered, foreign-audience, expired cookies give an empty session -> logout deletes the
// cookie -> the service stops -> requests fail closed and still get answered.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { startServer, recordingLogger } = require('../testing/harness');
const { createApp, listen, request, STATIC_FILE } = require('../testing/app');
const { flaskCookie } = require('../testing/flask');
const sessiontoken = require('..');

const KEYRING = 'default';
const AUDIENCE = 'shop:session';
const TTL = 3600;

let server;   // sessiontoken-server
let client;   // sessiontoken.Client
let web;      // the Express app
let logger;

before(async () => {
  server = await startServer();
  client = new sessiontoken.Client({ address: server.address, deadlineMs: 3000 });
  logger = recordingLogger();
  web = await listen(createApp({
    client, keyring: KEYRING, audience: AUDIENCE, ttlSeconds: TTL, logger,
    cookie: { sameSite: 'lax' },
  }));
});

after(async () => {
  if (web) await web.close();
  if (client) client.close();
  if (server) await server.stop();
});

const get = (url, cookie) => request(web.base, 'GET', url, { cookie });
const post = (url, cookie) => request(web.base, 'POST', url, { cookie });

function tokenOf(setCookie) {
  assert.ok(setCookie, 'expected a Set-Cookie for the session cookie');
  const parsed = sessiontoken.parseNativeToken(setCookie.value);
  assert.ok(parsed, `session cookie is not a native token: ${setCookie.value}`);
  return parsed;
}

// Replaces the payload of a genuine token and keeps its MAC: what a user editing the cookie
// would do (the payload is readable, not encrypted).
function forgePayload(token, payload) {
  const body = Buffer.from(token.slice(4), 'base64url');
  const header = body.length - 32 - sessiontoken.parseNativeToken(token).payload.length;
  const forged = Buffer.concat([body.subarray(0, header), Buffer.from(payload), body.subarray(body.length - 32)]);
  return token.slice(0, 4) + forged.toString('base64url');
}

test('journey: login, persistence, rotation, refresh, tampering, logout, outage', async (t) => {
  let cookie;       // the browser's current session cookie
  let firstKeyId;

  await t.test('no cookie: empty session, no Set-Cookie', async () => {
    const r = await get('/whoami');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { session: {} });
    assert.equal(r.session, undefined);
  });

  await t.test('login sets a signed cookie under the primary key', async () => {
    const keys = await client.listKeys({ keyring: KEYRING });
    firstKeyId = keys.primaryKeyId;
    const before = Math.floor(Date.now() / 1000);
    const r = await post('/login?user=alice');
    assert.equal(r.status, 200);
    const tok = tokenOf(r.session);
    assert.equal(tok.keyId, firstKeyId);
    assert.equal(tok.expiresAt - tok.issuedAt, TTL);
    assert.ok(Math.abs(tok.issuedAt - before) <= 5, `issued_at ${tok.issuedAt} vs now ${before}`);
    assert.deepEqual(JSON.parse(tok.payload), { user: 'alice' });
    assert.ok(tok.audienceTag.equals(sessiontoken.nativeAudienceTag(AUDIENCE)));
    assert.equal(r.session.attrs.httponly, true);
    assert.equal(r.session.attrs.path, '/');
    assert.equal(r.session.attrs.samesite, 'Lax');
    assert.equal(r.session.attrs['max-age'], undefined);  // browser-session cookie, as express-session
    assert.equal(r.session.attrs.secure, undefined);  // 'auto' on plain HTTP
    cookie = r.session.value;
  });

  await t.test('the session persists; an unchanged session sets no cookie', async () => {
    const r = await get('/whoami', cookie);
    assert.deepEqual(r.json, { session: { user: 'alice' } });
    assert.equal(r.session, undefined);
    const same = await post('/noop', cookie);
    assert.equal(same.status, 200);
    assert.equal(same.session, undefined);
  });

  await t.test('changes (also nested ones) re-sign the cookie', async () => {
    let r = await post('/counter', cookie);
    assert.deepEqual(r.json, { n: 1 });
    cookie = r.session.value;
    r = await post('/counter', cookie);
    assert.deepEqual(r.json, { n: 2 });
    cookie = r.session.value;
    r = await post('/cart', cookie);
    cookie = r.session.value;
    r = await post('/cart?item=apple', cookie);
    assert.ok(r.session, 'a nested change must set the cookie');
    cookie = r.session.value;
    r = await get('/whoami', cookie);
    assert.deepEqual(r.json.session, { user: 'alice', n: 2, cart: { items: ['apple'] } });
  });

  let oldCookie;
  let newKeyId;
  await t.test('rotate through the admin API: the old cookie is re-issued under the new key', async () => {
    oldCookie = cookie;
    const rot = await client.rotate({ keyring: KEYRING });
    newKeyId = rot.newKey.keyId;
    assert.notEqual(newKeyId, firstKeyId);
    assert.equal(rot.previousPrimaryKeyId, firstKeyId);
    const keys = await client.listKeys({ keyring: KEYRING });
    assert.equal(keys.primaryKeyId, newKeyId);
    assert.equal(keys.keys.find((k) => k.keyId === firstKeyId).state, 'ACTIVE');

    const v = await client.verify({ keyring: KEYRING, token: oldCookie, audience: AUDIENCE });
    assert.equal(v.result, 'VALID');
    assert.equal(v.refreshRecommended, true);

    const r = await get('/whoami', oldCookie);
    assert.deepEqual(r.json.session, { user: 'alice', n: 2, cart: { items: ['apple'] } });
    const tok = tokenOf(r.session);
    assert.equal(tok.keyId, newKeyId);
    assert.deepEqual(JSON.parse(tok.payload), { user: 'alice', n: 2, cart: { items: ['apple'] } });
    cookie = r.session.value;

    const again = await get('/whoami', cookie);
    assert.deepEqual(again.json.session, { user: 'alice', n: 2, cart: { items: ['apple'] } });
    assert.equal(again.session, undefined, 'a token of the primary key is not re-issued');
  });

  await t.test('tampered, foreign and expired cookies give an empty session', async () => {
    const forged = forgePayload(cookie, JSON.stringify({ user: 'admin' }));
    assert.equal((await client.verify({ keyring: KEYRING, token: forged, audience: AUDIENCE })).result, 'BAD_SIGNATURE');
    let r = await get('/whoami', forged);
    assert.deepEqual(r.json, { session: {} });
    assert.equal(r.session, undefined, 'an invalid cookie is left alone (as in Flask)');

    const body = Buffer.from(cookie.slice(4), 'base64url');
    body.writeUInt32BE((body.readUInt32BE(0) ^ 1) >>> 0, 0);
    const otherKey = cookie.slice(0, 4) + body.toString('base64url');
    assert.equal((await client.verify({ keyring: KEYRING, token: otherKey, audience: AUDIENCE })).result, 'UNKNOWN_KEY');
    r = await get('/whoami', otherKey);
    assert.deepEqual(r.json, { session: {} });

    const foreign = await client.sign({ keyring: KEYRING, payload: '{"user":"mallory"}', ttlSeconds: 60, audience: 'api' });
    r = await get('/whoami', foreign.token);
    assert.deepEqual(r.json, { session: {} });

    const notJson = await client.sign({ keyring: KEYRING, payload: 'user=42', ttlSeconds: 60, audience: AUDIENCE });
    r = await get('/whoami', notJson.token);
    assert.deepEqual(r.json, { session: {} });
    assert.equal(logger.find('warn', /not a JSON object/).length, 1);

    r = await get('/whoami', 'garbage');
    assert.deepEqual(r.json, { session: {} });
    assert.equal(r.session, undefined);

    // 2 s: times are whole seconds, so a 1 s token signed late in a second can expire before
    // the request that uses it (docs/token-format.md); this one lives at least 1 s.
    const short = await client.sign({ keyring: KEYRING, payload: '{"user":"eve"}', ttlSeconds: 2, audience: AUDIENCE });
    assert.deepEqual((await get('/whoami', short.token)).json, { session: { user: 'eve' } });
    const wait = short.expiresAt.getTime() + 50 - Date.now();
    if (wait > 0) await new Promise((res) => setTimeout(res, wait));
    assert.equal((await client.verify({ keyring: KEYRING, token: short.token, audience: AUDIENCE })).result, 'EXPIRED');
    r = await get('/whoami', short.token);
    assert.deepEqual(r.json, { session: {} });
    assert.equal(r.session, undefined);
    assert.equal(logger.find('error', /./).length, 0, JSON.stringify(logger.entries));
  });

  await t.test('responses that start with writeHead, write or a piped file carry the cookie', async () => {
    let r = await get('/stream', cookie);
    assert.equal(r.text, 'ab');
    assert.equal(JSON.parse(tokenOf(r.session).payload).streamed, true);

    r = await get('/redirect', cookie);
    assert.equal(r.status, 302);
    assert.equal(r.headers.get('location'), '/whoami');
    assert.equal(JSON.parse(tokenOf(r.session).payload).redirected, true);

    r = await get('/file', cookie);
    assert.equal(r.status, 200);
    assert.equal(r.text, fs.readFileSync(STATIC_FILE, 'utf8'));
    assert.equal(JSON.parse(tokenOf(r.session).payload).file, true);

    logger.clear();
    r = await get('/late', cookie);
    assert.equal(r.text, 'x');
    assert.equal(r.session, undefined);
    assert.equal(logger.find('warn', /after the response started/).length, 1);
  });

  await t.test('sessions that cannot be saved are logged, the request is still answered', async () => {
    logger.clear();
    let r = await post('/bigint', cookie);
    assert.equal(r.status, 200);
    assert.equal(r.session, undefined);
    assert.equal(logger.find('error', /not JSON-serialisable/).length, 1);
    logger.clear();
  });

  await t.test('a session too large to sign deletes the cookie (documented; see express_sessions_e2e)', async () => {
    const r = await post('/huge', cookie);
    assert.equal(r.status, 200);
    assert.equal(r.session.value, '');
    assert.equal(logger.find('error', /session too large: 50\d\d bytes exceeds the limit of 2048/).length, 1);
    logger.clear();
    cookie = (await post('/login?user=alice')).session.value;
  });

  await t.test('logout (emptied or null session) deletes the cookie', async () => {
    for (const route of ['/logout', '/logout-null']) {
      const r = await post(route, cookie);
      assert.equal(r.status, 200);
      assert.ok(r.session, `${route}: expected a deleting Set-Cookie`);
      assert.equal(r.session.value, '');
      assert.equal(r.session.attrs['max-age'], '0');
      assert.equal(r.session.attrs.path, '/');
      assert.equal(new Date(r.session.attrs.expires).getTime(), 0);
    }
    const r = await post('/logout');
    assert.equal(r.session, undefined, 'no cookie to delete when the session was empty');
  });

  await t.test('service stopped: fail closed, log, never crash the request', async () => {
    const { code } = await server.stop();
    assert.equal(code, 0);
    logger.clear();
    const t0 = Date.now();
    let r = await get('/whoami', cookie);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { session: {} }, 'an unverified cookie must not be trusted');
    assert.equal(r.session, undefined, 'an outage must not delete the cookie');
    assert.equal(logger.find('error', /cannot verify the session cookie.*UNAVAILABLE/).length, 1,
      JSON.stringify(logger.entries));

    r = await post('/login?user=bob', cookie);
    assert.equal(r.status, 200);
    assert.equal(r.session, undefined, 'an unverified session is not saved: the cookie is kept');
    assert.equal(logger.find('warn', /could not be verified; the cookie is left unchanged/).length, 1);
    assert.equal(logger.find('error', /cannot sign/).length, 0, 'no Sign for an unverified session');

    r = await get('/health');
    assert.equal(r.text, 'ok');
    assert.ok(Date.now() - t0 < 10000, `fail-closed requests took ${Date.now() - t0} ms`);
  });
});

test('Flask migration: a cookie of an imported Flask key is re-issued as a native token', async (t) => {
  const srv = await startServer();
  const c = new sessiontoken.Client({ address: srv.address });
  const log = recordingLogger();
  const app = await listen(createApp({ client: c, keyring: 'default', audience: 'cookie-session', logger: log }));
  t.after(async () => { await app.close(); c.close(); await srv.stop(); });

  const imported = await c.importKey({ keyring: 'default', algorithm: 'HMAC_SHA1_FLASK', secret: 'flask-dev-secret' });
  assert.equal(imported.key.algorithm, 'HMAC_SHA1_FLASK');
  assert.equal(imported.key.state, 'ACTIVE');
  const flask = flaskCookie('flask-dev-secret', { user: 'bob', n: [1, 2] });
  const v = await c.verify({ keyring: 'default', token: flask, audience: 'cookie-session', maxAgeSeconds: 3600 });
  assert.equal(v.result, 'VALID');
  assert.equal(v.refreshRecommended, true);

  const r = await request(app.base, 'GET', '/whoami', { cookie: flask });
  assert.deepEqual(r.json, { session: { user: 'bob', n: [1, 2] } });
  const tok = tokenOf(r.session);
  assert.equal(tok.keyId, (await c.listKeys({ keyring: 'default' })).primaryKeyId);
  assert.deepEqual(JSON.parse(tok.payload), { user: 'bob', n: [1, 2] });

  const wrongSecret = flaskCookie('another-secret', { user: 'bob' });
  const r2 = await request(app.base, 'GET', '/whoami', { cookie: wrongSecret });
  assert.deepEqual(r2.json, { session: {} });
  assert.equal(log.find('error', /./).length, 0, JSON.stringify(log.entries));
});
