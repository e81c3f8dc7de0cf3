'use strict';
// Issue 11 (revocation) against the real sessiontoken-server binary and a real Express app:
//   * log in as the same user on two "devices" and as another user on a third; "log out
//     everywhere" on one device: the other device's cookie is refused on its next request,
//     the other user stays logged in, a new login works;
//   * logout revokes the current token: the old cookie, replayed, is refused;
//   * the service down during a logout: the cookie is deleted anyway, the app hears the error.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const express = require('express');
const { startServer, recordingLogger } = require('../testing/harness');
const { listen } = require('../testing/app');
const { send } = require('../testing/passport');
const sessiontoken = require('..');

const AUDIENCE = 'shop:session';

function createApp(options) {
  const app = express();
  app.use(sessiontoken.session(options));
  app.get('/whoami', (req, res) => res.json({ user: req.session.user_id ?? null }));
  app.post('/login', (req, res) => {
    req.session.user_id = String(req.query.user);
    res.json({ ok: true });
  });
  app.post('/logout', async (req, res) => {
    try {
      await req.session.logout();
      res.json({ revoked: true });
    } catch (err) {
      res.json({ revoked: false, code: err.code });
    }
  });
  app.post('/logout-everywhere', async (req, res) => {
    const r = await req.session.logoutEverywhere();
    res.json({ revokedAt: r.revokedAt.toISOString() });
  });
  return app;
}

async function setup(t) {
  const server = await startServer();
  const client = new sessiontoken.Client({ address: server.address, deadlineMs: 3000 });
  const logger = recordingLogger();
  const web = await listen(createApp({ client, keyring: 'default', audience: AUDIENCE, logger, subjectKey: 'user_id' }));
  t.after(async () => {
    await web.close();
    client.close();
    await server.stop();
  });
  const ctx = { server, client, logger, web };
  ctx.login = async (user) => {
    const r = await send(web.base, 'POST', `/login?user=${user}`);
    assert.equal(r.status, 200);
    assert.ok(r.session && r.session.value, 'a session cookie');
    return r.session.value;
  };
  ctx.whoami = async (cookie) => (await send(web.base, 'GET', '/whoami', { cookie })).json.user;
  ctx.post = (url, cookie) => send(web.base, 'POST', url, { cookie });
  return ctx;
}

test('log out everywhere: the other device is refused on its next request', async (t) => {
  const ctx = await setup(t);
  const phone = await ctx.login('alice');
  const laptop = await ctx.login('alice');
  const bob = await ctx.login('bob');
  assert.equal(await ctx.whoami(laptop), 'alice');
  const v = await ctx.client.verify({ keyring: 'default', token: laptop, audience: AUDIENCE });
  assert.equal(v.result, 'VALID');

  const out = await ctx.post('/logout-everywhere', phone);
  assert.equal(out.status, 200, out.text);
  assert.equal(out.session.value, '', 'the cookie of the device that logged out is deleted');
  assert.equal(await ctx.whoami(laptop), null);
  assert.equal((await ctx.client.verify({ keyring: 'default', token: laptop, audience: AUDIENCE })).result, 'REVOKED');
  assert.equal(await ctx.whoami(bob), 'bob');
  // Issued after the cutoff (whole seconds): a new login works.
  await new Promise((r) => setTimeout(r, 1100));
  assert.equal(await ctx.whoami(await ctx.login('alice')), 'alice');
});

test('logout revokes the current token: the old cookie, replayed, is refused', async (t) => {
  const ctx = await setup(t);
  const cookie = await ctx.login('carol');
  const out = await ctx.post('/logout', cookie);
  assert.deepEqual(out.json, { revoked: true });
  assert.equal(out.session.value, '');
  assert.equal(await ctx.whoami(cookie), null);
});

test('logout with the service down still deletes the cookie and reports the error', async (t) => {
  const ctx = await setup(t);
  const cookie = await ctx.login('dave');
  const revoke = ctx.client.revoke.bind(ctx.client);
  ctx.client.revoke = async (...a) => {
    await ctx.server.stop();
    return revoke(...a);
  };
  const out = await ctx.post('/logout', cookie);
  assert.equal(out.json.revoked, false);
  assert.ok([14, 4].includes(out.json.code), `UNAVAILABLE or DEADLINE_EXCEEDED, got ${out.json.code}`);
  assert.equal(out.session.value, '', 'the cookie is deleted even so');
  assert.equal(ctx.logger.find('error', /revocation failed/).length, 1, JSON.stringify(ctx.logger.entries));
});
