'use strict';
// Issue 13 against the real sessiontoken-server binary and a real Express app over HTTP:
//   * the service stalls (SIGSTOP) or is down while the app writes to the session: the
//     browser's valid cookie is neither replaced nor deleted, and works again afterwards;
//   * Passport (0.6+: regenerate/save at login and logout) logs in and out;
//   * rolling expiry (refreshAfterSeconds): a token past the threshold is re-issued, a
//     younger one is not; Sign calls are counted (read-only request: one Verify, no Sign);
//   * a session too large for the service: cookie deleted, error "session too large", from
//     the middleware's limit and from the service's own refusal.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { startServer, recordingLogger } = require('../testing/harness');
const { createApp, listen } = require('../testing/app');
const { createPassportApp, send } = require('../testing/passport');
const sessiontoken = require('..');

const AUDIENCE = 'shop:session';

/** A Client stand-in that counts the RPCs the middleware makes. */
function counting(client) {
  const c = {
    signs: 0,
    verifies: 0,
    defaultKeyring: 'default',
    sign: (...a) => { c.signs++; return client.sign(...a); },
    verify: (...a) => { c.verifies++; return client.verify(...a); },
  };
  return c;
}

async function setup(t, sessionOptions = {}, makeApp = createApp) {
  const server = await startServer();
  const client = new sessiontoken.Client({ address: server.address, deadlineMs: 3000 });
  const rpc = counting(client);
  const logger = recordingLogger();
  const web = await listen(makeApp({ client: rpc, audience: AUDIENCE, logger, ...sessionOptions }));
  const ctx = { server, client, rpc, logger, web };
  t.after(async () => {
    await web.close();
    client.close();
    try { ctx.server.proc.kill('SIGCONT'); } catch { /* exited */ }
    await ctx.server.stop();
  });
  ctx.get = (url, cookie) => send(web.base, 'GET', url, { cookie });
  ctx.post = (url, cookie, form) => send(web.base, 'POST', url, { cookie, form });
  return ctx;
}

// Waits until /proc says the process is stopped (state T) or running again.
async function waitForState(pid, stopped) {
  const deadline = Date.now() + 10000;
  while (Date.now() < deadline) {
    const stat = require('node:fs').readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    if ((state === 'T' || state === 't') === stopped) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`process ${pid} did not become ${stopped ? 'stopped' : 'running'}`);
}

test('Verify stalls or fails while the app writes: the valid cookie is neither replaced nor deleted', async (t) => {
  const ctx = await setup(t, { deadlineMs: 400 });
  const login = await ctx.post('/login?user=alice');
  const cookie = login.session.value;
  assert.ok(sessiontoken.parseNativeToken(cookie));

  async function untouched(what, code) {
    for (const [method, url, writes] of [['POST', '/counter', true], ['POST', '/login?user=mallory', true],
      ['POST', '/huge', true], ['POST', '/logout', false], ['POST', '/logout-null', false]]) {
      ctx.logger.clear();
      const signs = ctx.rpc.signs;
      const r = await send(ctx.web.base, method, url, { cookie });
      assert.equal(r.status, 200, `${what} ${url}`);
      assert.equal(r.session, undefined, `${what} ${url}: the cookie must not be replaced or deleted`);
      assert.equal(ctx.logger.find('error', new RegExp(`cannot verify the session cookie.*${code}`)).length, 1,
        JSON.stringify(ctx.logger.entries));
      assert.equal(ctx.logger.find('warn', /could not be verified; the cookie is left unchanged/).length, writes ? 1 : 0,
        `${what} ${url}: ${JSON.stringify(ctx.logger.entries)}`);
      assert.equal(ctx.rpc.signs, signs, 'an unverified session is never signed');
      assert.ok(!ctx.logger.entries.some((e) => e.message.includes(cookie)), 'cookie value logged');
    }
  }

  // Stalled: the process is frozen (as the kernel reports it), Verify hits the deadline.
  ctx.server.proc.kill('SIGSTOP');
  try {
    await waitForState(ctx.server.proc.pid, true);
    await untouched('stalled', 'DEADLINE_EXCEEDED');
  } finally {
    ctx.server.proc.kill('SIGCONT');
  }
  await waitForState(ctx.server.proc.pid, false);
  await ctx.client.waitForReady(10000);
  let r = await ctx.get('/whoami', cookie);
  assert.deepEqual(r.json, { session: { user: 'alice' } });

  // Down: UNAVAILABLE. Restarted on the same port with the same keys: the cookie still works.
  const { port, dir } = ctx.server;
  await ctx.server.stop();
  // The shared service config retries UNAVAILABLE with backoff, so whether the last attempt
  // or the 400 ms deadline ends the call depends on timing: either is a failed Verify.
  await untouched('down', '(UNAVAILABLE|DEADLINE_EXCEEDED)');
  ctx.server = await startServer({ port, dir });
  await ctx.client.waitForReady(10000);
  r = await ctx.get('/whoami', cookie);
  assert.deepEqual(r.json, { session: { user: 'alice' } });
});

test('Passport: login and logout through the middleware (regenerate, save)', async (t) => {
  const ctx = await setup(t, {}, createPassportApp);
  let r = await ctx.get('/me');
  assert.deepEqual(r.json, { user: null, session: {} });
  assert.equal(r.session, undefined);

  r = await ctx.post('/login', undefined, { username: 'alice', password: 'wrong' });
  assert.equal(r.status, 401);
  assert.equal(r.session, undefined);

  // Some data before the login: Passport regenerates the session (it is not carried over).
  r = await ctx.post('/visit');
  const anon = r.session.value;
  r = await ctx.post('/login', anon, { username: 'alice', password: 'wonderland' });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, { user: 'alice' });
  const tok = sessiontoken.parseNativeToken(r.session.value);
  assert.deepEqual(JSON.parse(tok.payload), { passport: { user: 'alice' } });
  const cookie = r.session.value;

  r = await ctx.get('/me', cookie);
  assert.deepEqual(r.json, { user: 'alice', session: { passport: { user: 'alice' } } });
  assert.equal(r.session, undefined, 'reading the session sets no cookie');
  r = await ctx.post('/visit', cookie);
  const withVisit = r.session.value;
  assert.deepEqual(JSON.parse(sessiontoken.parseNativeToken(withVisit).payload), { passport: { user: 'alice' }, visits: 1 });

  r = await ctx.post('/logout', withVisit);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.session.value, '', 'logout deletes the cookie');
  assert.equal(r.session.attrs['max-age'], '0');
  r = await ctx.get('/me');
  assert.deepEqual(r.json, { user: null, session: {} });
  assert.equal(ctx.logger.find('error', /./).length, 0, JSON.stringify(ctx.logger.entries));
});

test('refreshAfterSeconds: rolling expiry, Sign only past the threshold', async (t) => {
  const ctx = await setup(t, { ttlSeconds: 3600, refreshAfterSeconds: 2 });
  let r = await ctx.post('/login?user=carol');
  const cookie = r.session.value;
  const issued = sessiontoken.parseNativeToken(cookie).issuedAt;
  assert.equal(ctx.rpc.signs, 1);

  let signs = ctx.rpc.signs;
  let verifies = ctx.rpc.verifies;
  r = await ctx.get('/whoami', cookie);
  if (Date.now() / 1000 - issued < 2) {  // (not checked on a machine stalled for seconds)
    assert.equal(r.session, undefined, 'a young token is not re-signed');
    assert.deepEqual([ctx.rpc.signs - signs, ctx.rpc.verifies - verifies], [0, 1]);
  }

  await new Promise((res) => setTimeout(res, Math.max(0, (issued + 2.2) * 1000 - Date.now())));
  signs = ctx.rpc.signs;
  verifies = ctx.rpc.verifies;
  r = await ctx.get('/whoami', cookie);
  assert.deepEqual(r.json, { session: { user: 'carol' } });
  assert.ok(r.session, 'a token older than refreshAfterSeconds is re-issued');
  const tok = sessiontoken.parseNativeToken(r.session.value);
  assert.ok(tok.issuedAt > issued);
  assert.equal(tok.expiresAt - tok.issuedAt, 3600);
  assert.deepEqual(JSON.parse(tok.payload), { user: 'carol' });
  assert.deepEqual([ctx.rpc.signs - signs, ctx.rpc.verifies - verifies], [1, 1]);

  signs = ctx.rpc.signs;
  r = await ctx.get('/whoami', r.session.value);
  if (Date.now() / 1000 - tok.issuedAt < 2) {
    assert.equal(r.session, undefined);
    assert.equal(ctx.rpc.signs, signs);
  }
  // A modified session: Verify + Sign; no cookie at all: nothing.
  signs = ctx.rpc.signs;
  verifies = ctx.rpc.verifies;
  r = await ctx.post('/counter', cookie);
  assert.deepEqual([ctx.rpc.signs - signs, ctx.rpc.verifies - verifies], [1, 1]);
  await ctx.get('/health');
  assert.deepEqual([ctx.rpc.signs - signs, ctx.rpc.verifies - verifies], [1, 1]);
});

for (const [name, maxPayloadBytes, signCalls, detail] of [
  ['the middleware\'s limit', undefined, 0, /exceeds the limit of 2048/],
  ['the service\'s refusal', null, 1, /payload:/],
]) {
  test(`session too large (${name}): cookie deleted, error "session too large"`, async (t) => {
    const ctx = await setup(t, maxPayloadBytes === undefined ? {} : { maxPayloadBytes });
    let r = await ctx.post('/login?user=erin');
    const cookie = r.session.value;
    const signs = ctx.rpc.signs;
    ctx.logger.clear();
    r = await ctx.post('/huge', cookie);
    assert.equal(r.status, 200);
    assert.equal(r.session.value, '', 'the previous session must not be left behind');
    assert.equal(r.session.attrs['max-age'], '0');
    const errors = ctx.logger.find('error', /session not saved, cookie deleted: session too large/);
    assert.equal(errors.length, 1, JSON.stringify(ctx.logger.entries));
    assert.match(errors[0].message, detail);
    assert.equal(ctx.rpc.signs - signs, signCalls);
  });
}
