'use strict';
// sessiontoken.Client against the real sessiontoken-server: SessionTokens and KeyAdmin,
// typed results, gRPC errors, client-side checks, and the "server comes up later" retry.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startServer, freePort } = require('../testing/harness');
const sessiontoken = require('..');

let server;
let client;

before(async () => {
  server = await startServer();
  client = new sessiontoken.Client({ address: server.address, keyring: 'default' });
});
after(async () => {
  client?.close();
  await server?.stop();
});

test('sign and verify: typed results, Buffer and string payloads', async () => {
  const now = Date.now();
  const s = await client.sign({ payload: Buffer.from([0, 1, 2, 255]), ttlSeconds: 120, audience: 'web' });
  assert.match(s.token, /^st2\.[A-Za-z0-9_-]+$/);
  assert.match(s.tokenId, /^[A-Za-z0-9_-]{22}$/);
  assert.equal(typeof s.keyId, 'number');
  assert.ok(s.issuedAt instanceof Date && s.expiresAt instanceof Date);
  assert.equal(s.expiresAt - s.issuedAt, 120000);
  assert.ok(Math.abs(s.issuedAt - now) < 5000);
  const parsed = sessiontoken.parseNativeToken(s.token);
  assert.equal(parsed.keyId, s.keyId);
  assert.equal(parsed.issuedAt * 1000, s.issuedAt.getTime());
  assert.equal(parsed.expiresAt * 1000, s.expiresAt.getTime());

  const v = await client.verify({ token: s.token, audience: 'web' });
  assert.equal(v.result, 'VALID');
  assert.equal(v.valid, true);
  assert.ok(Buffer.isBuffer(v.payload));
  assert.deepEqual([...v.payload], [0, 1, 2, 255]);
  assert.equal(v.keyId, s.keyId);
  assert.equal(v.issuedAt.getTime(), s.issuedAt.getTime());
  assert.equal(v.expiresAt.getTime(), s.expiresAt.getTime());
  assert.equal(v.refreshRecommended, false);

  const u = await client.sign({ keyring: 'default', payload: 'héllo', ttlSeconds: 60 });
  const uv = await client.verify({ keyring: 'default', token: u.token });  // audience '' both times
  assert.equal(uv.payload.toString('utf8'), 'héllo');
});

test('subject and token id: bound at sign, returned by verify', async () => {
  const s = await client.sign({ payload: 'cart=3', ttlSeconds: 60, audience: 'web', subject: 'user-42' });
  assert.match(s.tokenId, /^[A-Za-z0-9_-]{22}$/);
  const parsed = sessiontoken.parseNativeToken(s.token);
  assert.equal(parsed.version, 'st2');
  assert.equal(parsed.subject.toString(), 'user-42');
  assert.equal(parsed.tokenId, s.tokenId);
  const v = await client.verify({ token: s.token, audience: 'web' });
  assert.equal(v.result, 'VALID');
  assert.equal(v.subject, 'user-42');
  assert.equal(v.tokenId, s.tokenId);
  const other = await client.sign({ payload: 'cart=3', ttlSeconds: 60, audience: 'web' });
  assert.notEqual(other.tokenId, s.tokenId);
  assert.equal((await client.verify({ token: other.token, audience: 'web' })).subject, '');
  const wrong = await client.verify({ token: s.token, audience: 'api' });
  assert.equal(wrong.subject, null);
  assert.equal(wrong.tokenId, null);
  await assert.rejects(client.sign({ payload: 'x', ttlSeconds: 60, subject: 's'.repeat(129) }),
    (e) => e.codeName === 'INVALID_ARGUMENT' && /subject/.test(e.details));
});

test('sealed keyring: payload encrypted in the token, plaintext from verify', async () => {
  const secret = '{"user":42,"iban":"DE89370400440532013000"}';
  const info = await client.createKeyring({ name: 'sealed-node', policy: { sealPayloads: true } });
  assert.equal(info.policy.sealPayloads, true);
  const s = await client.sign({ keyring: 'sealed-node', payload: secret, ttlSeconds: 60, subject: 'u42' });
  const parsed = sessiontoken.parseNativeToken(s.token);
  assert.equal(parsed.sealed, true);
  assert.equal(parsed.payload.indexOf('DE89'), -1);
  const v = await client.verify({ keyring: 'sealed-node', token: s.token });
  assert.equal(v.payload.toString(), secret);
  assert.equal(v.subject, 'u42');
  const off = await client.setPolicy({ keyring: 'sealed-node', policy: { sealPayloads: false } });
  assert.equal(off.policy.sealPayloads, false);
  assert.equal((await client.verify({ keyring: 'sealed-node', token: s.token })).payload.toString(), secret);
  assert.throws(() => client._signRequest({ ttlSeconds: 1, subject: 5 }), TypeError);
  await assert.rejects(client.setPolicy({ keyring: 'sealed-node', policy: { sealPayloads: 'yes' } }), TypeError);
});

test('getKeyUsage counts the verifications of each key on this replica', async () => {
  const s = await client.sign({ payload: 'u', ttlSeconds: 60, audience: 'web' });
  const before = (await client.getKeyUsage()).keys.find((k) => k.keyId === s.keyId);
  await client.verify({ token: s.token, audience: 'web' });
  await client.verify({ token: s.token, audience: 'web' });
  const u = await client.getKeyUsage();
  assert.equal(u.keyring, 'default');
  assert.ok(u.countingSince instanceof Date);
  const k = u.keys.find((x) => x.keyId === s.keyId);
  assert.equal(k.state, 'PRIMARY');
  assert.equal(k.verifiedLastHour, before.verifiedLastHour + 2);
  assert.ok(k.lastVerifiedAt instanceof Date);
});

test('waitForReady resolves on a live server; a closed client refuses calls', async () => {
  const c = new sessiontoken.Client({ address: server.address, keyring: 'default' });
  await c.waitForReady(5000);
  assert.equal((await c.listKeys()).keyring, 'default');
  c.close();
  await assert.rejects(c.verify({ token: 'x' }), /client is closed/);
  const dead = new sessiontoken.Client({ address: `127.0.0.1:${await freePort()}` });
  try {
    await assert.rejects(dead.waitForReady(300));
  } finally {
    dead.close();
  }
});

test('verify results that are not VALID carry no payload', async () => {
  const s = await client.sign({ payload: 'secret-ish', ttlSeconds: 60, audience: 'web' });
  const wrong = await client.verify({ token: s.token, audience: 'api' });
  assert.equal(wrong.result, 'WRONG_AUDIENCE');
  assert.equal(wrong.valid, false);
  assert.equal(wrong.payload, null);
  assert.equal(wrong.keyId, s.keyId);
  assert.equal(wrong.refreshRecommended, false);

  const body = Buffer.from(s.token.slice(4), 'base64url');
  body[body.length - 1] ^= 1;  // last MAC byte
  const bad = await client.verify({ token: s.token.slice(0, 4) + body.toString('base64url'), audience: 'web' });
  assert.equal(bad.result, 'BAD_SIGNATURE');
  assert.equal(bad.payload, null);
  assert.equal(bad.keyId, s.keyId);

  const mal = await client.verify({ token: 'not-a-token', audience: 'web' });
  assert.equal(mal.result, 'MALFORMED');
  assert.equal(mal.keyId, null);
  assert.equal(mal.issuedAt, null);
  assert.equal(mal.payload, null);
});

test('gRPC errors reject with SessionTokenError naming code and field', async () => {
  await assert.rejects(client.sign({ keyring: 'no-such-ring', payload: 'x', ttlSeconds: 60 }), (err) => {
    assert.ok(err instanceof sessiontoken.SessionTokenError);
    assert.equal(err.code, sessiontoken.status.NOT_FOUND);
    assert.equal(err.codeName, 'NOT_FOUND');
    assert.equal(err.method, 'SessionTokens.Sign');
    return true;
  });
  await assert.rejects(client.sign({ payload: 'x'.repeat(3000), ttlSeconds: 60 }),
    (err) => err.codeName === 'INVALID_ARGUMENT' && /payload/.test(err.details));
  await assert.rejects(client.sign({ payload: 'x', ttlSeconds: 0 }),
    (err) => err.codeName === 'INVALID_ARGUMENT' && /ttl/.test(err.details));
});

test('client-side argument checks reject before any call', async () => {
  const noDefault = new sessiontoken.Client({ address: server.address });
  try {
    await assert.rejects(noDefault.sign({ payload: 'x', ttlSeconds: 60 }), TypeError);
  } finally {
    noDefault.close();
  }
  await assert.rejects(client.sign({ payload: 'x', ttlSeconds: 1.5 }), TypeError);
  await assert.rejects(client.sign({ payload: 'x' }), TypeError);
  await assert.rejects(client.sign({ payload: 42, ttlSeconds: 60 }), TypeError);
  await assert.rejects(client.verify({ token: 'x', maxAgeSeconds: 'soon' }), TypeError);
  await assert.rejects(client.rotate({ algorithm: 'HMAC_MD5' }), TypeError);
  await assert.rejects(client.promoteKey({ keyId: 0 }), TypeError);
  await assert.rejects(client.createKeyring({ name: 'x', policy: { rotationPeriod: 5 } }), TypeError);
});

test('batchVerify and batchSign: one result per item, in order', async () => {
  const a = await client.sign({ payload: 'a', ttlSeconds: 60, audience: 'web' });
  const items = await client.batchVerify([
    { token: a.token, audience: 'web' },
    { token: 'st1.garbage', audience: 'web' },
    { keyring: 'no-such-ring', token: a.token, audience: 'web' },
    { token: a.token, audience: 'api' },
  ]);
  assert.equal(items.length, 4);
  assert.equal(items[0].ok, true);
  assert.equal(items[0].result, 'VALID');
  assert.equal(items[0].payload.toString(), 'a');
  assert.equal(items[1].result, 'MALFORMED');
  assert.equal(items[2].ok, false);
  assert.equal(items[2].codeName, 'NOT_FOUND');
  assert.match(items[2].message, /no-such-ring/);
  assert.equal(items[3].result, 'WRONG_AUDIENCE');

  const signed = await client.batchSign([
    { payload: 'one', ttlSeconds: 60, audience: 'web' },
    { payload: 'two', ttlSeconds: 0, audience: 'web' },
  ]);
  assert.equal(signed.length, 2);
  assert.equal(signed[0].ok, true);
  assert.equal((await client.verify({ token: signed[0].token, audience: 'web' })).payload.toString(), 'one');
  assert.equal(signed[1].ok, false);
  assert.equal(signed[1].codeName, 'INVALID_ARGUMENT');
});

test('admin: keyrings, policy, rotation, key lifecycle', async () => {
  const name = `shop-${process.pid}`;
  const created = await client.createKeyring({ name, policy: { maxTokenTtlSeconds: 600, verifyWindowSeconds: 3600 } });
  assert.equal(created.name, name);
  assert.equal(created.policy.maxTokenTtlSeconds, 600);
  assert.equal(created.policy.verifyWindowSeconds, 3600);
  assert.equal(created.keys.length, 1);
  assert.equal(created.keys[0].state, 'PRIMARY');
  assert.equal(created.keys[0].algorithm, 'HMAC_SHA256');
  assert.equal(created.primaryKeyId, created.keys[0].keyId);
  assert.ok(created.createdAt instanceof Date);
  await assert.rejects(client.createKeyring({ name }), (e) => e.codeName === 'ALREADY_EXISTS');

  const rings = await client.listKeyrings();
  assert.deepEqual(rings.map((r) => r.name), [...rings.map((r) => r.name)].sort());
  const entry = rings.find((r) => r.name === name);
  assert.equal(entry.primaryKeyId, created.primaryKeyId);
  assert.equal(entry.keyCount, 1);

  await assert.rejects(client.sign({ keyring: name, payload: 'x', ttlSeconds: 601 }), (e) => e.codeName === 'INVALID_ARGUMENT');
  const k1Token = await client.sign({ keyring: name, payload: 'x', ttlSeconds: 600 });
  assert.equal(k1Token.keyId, created.primaryKeyId);

  const k1 = created.primaryKeyId;
  const rot = await client.rotate({ keyring: name });
  const k2 = rot.newKey.keyId;
  assert.equal(rot.previousPrimaryKeyId, k1);
  assert.equal(rot.newKey.state, 'PRIMARY');
  assert.ok(rot.revision > created.revision);
  let v = await client.verify({ keyring: name, token: k1Token.token });
  assert.equal(v.result, 'VALID');
  assert.equal(v.refreshRecommended, true);

  const listed = await client.listKeys({ keyring: name });
  assert.equal(listed.keyring, name);
  assert.equal(listed.primaryKeyId, k2);
  assert.deepEqual(listed.keys.map((k) => k.keyId), [k2, k1], 'newest first');
  assert.equal(listed.revision, rot.revision);

  let info = await client.disableKey({ keyring: name, keyId: k1 });
  assert.equal(info.keys.find((k) => k.keyId === k1).state, 'DISABLED');
  assert.equal((await client.verify({ keyring: name, token: k1Token.token })).result, 'KEY_DISABLED');
  info = await client.enableKey({ keyring: name, keyId: k1 });
  assert.equal(info.keys.find((k) => k.keyId === k1).state, 'ACTIVE');
  info = await client.promoteKey({ keyring: name, keyId: k1 });
  assert.equal(info.primaryKeyId, k1);
  v = await client.verify({ keyring: name, token: k1Token.token });
  assert.equal(v.refreshRecommended, false);
  await assert.rejects(client.disableKey({ keyring: name, keyId: k1 }), (e) => e.codeName === 'FAILED_PRECONDITION');
  await client.disableKey({ keyring: name, keyId: k2 });
  info = await client.destroyKey({ keyring: name, keyId: k2 });
  assert.equal(info.keys.find((k) => k.keyId === k2).state, 'DESTROYED');

  info = await client.setPolicy({ keyring: name, policy: { maxTokenTtlSeconds: 60, tombstoneRetentionSeconds: 86400 } });
  assert.equal(info.policy.maxTokenTtlSeconds, 60);
  assert.equal(info.policy.tombstoneRetentionSeconds, 86400);
  assert.equal(info.keys.find((k) => k.keyId === k2).state, 'DESTROYED', 'kept until the retention passes');
  assert.equal((await client.getKeyring({ keyring: name })).policy.maxTokenTtlSeconds, 60);
  await assert.rejects(client.sign({ keyring: name, payload: 'x', ttlSeconds: 61 }), (e) => e.codeName === 'INVALID_ARGUMENT');
});

test('importKey: a weak secret is imported with a warning (returned and emitted), a random one without', async () => {
  const emitted = [];
  const onWarning = (w) => emitted.push(w);
  process.on('warning', onWarning);
  try {
    await client.createKeyring({ name: 'weak-import' });
    const weak = await client.importKey({ keyring: 'weak-import', algorithm: 'HMAC_SHA1_FLASK', secret: 'mysecret123' });
    assert.equal(weak.key.state, 'ACTIVE');
    assert.match(weak.warning, /^weak secret: .*well-known/);
    assert.match(weak.warning, /rotate right after importing/);
    assert.ok(!weak.warning.includes('mysecret123'));
    const strong = await client.importKey({ keyring: 'weak-import', algorithm: 'HMAC_SHA1_FLASK', secret: require('node:crypto').randomBytes(32) });
    assert.equal(strong.warning, '');
    await new Promise((resolve) => setImmediate(resolve));  // process warnings are emitted async
    assert.deepEqual(emitted.filter((w) => w.name === 'WeakSecretWarning').map((w) => w.message), [weak.warning]);
  } finally {
    process.off('warning', onWarning);
  }
});

// Retries themselves are checked against a scripted server (client_fake.test.js).
test('the same client reaches a restarted server again', async () => {
  const port = await freePort();
  const late = new sessiontoken.Client({ address: `127.0.0.1:${port}`, keyring: 'default' });
  let srv;
  try {
    srv = await startServer({ port });
    await late.sign({ payload: 'first', ttlSeconds: 60 });
    await srv.stop();
    await assert.rejects(late.sign({ payload: 'down', ttlSeconds: 60 }),
      (e) => ['UNAVAILABLE', 'DEADLINE_EXCEEDED'].includes(e.codeName));
    srv = await startServer({ port, dir: srv.dir });
    await late.waitForReady(10000);
    const s = await late.sign({ payload: 'late', ttlSeconds: 60 });
    assert.match(s.token, /^st2\./);
  } finally {
    late.close();
    await srv?.stop();
  }
});

test('interoperates with the C++ CLI: tokens and rotations cross over', async (t) => {
  const cli = process.env.SESSIONTOKEN_CLI;
  if (!cli) {
    t.skip('SESSIONTOKEN_CLI not set');
    return;
  }
  const { execFileSync, spawnSync } = require('node:child_process');
  const run = (...args) => execFileSync(cli, [`--server=${server.address}`, '--keyring=default', ...args],
    { encoding: 'utf8', timeout: 15000 });

  const fromCli = run('sign', '--payload=from-cli', '--ttl=60s', '--audience=web', '--json');
  const cliToken = JSON.parse(fromCli).token;
  const v = await client.verify({ token: cliToken, audience: 'web' });
  assert.equal(v.result, 'VALID');
  assert.equal(v.payload.toString(), 'from-cli');

  const mine = await client.sign({ payload: 'from-node', ttlSeconds: 60, audience: 'web' });
  const ok = JSON.parse(run('verify', mine.token, '--audience=web', '--json'));
  assert.equal(ok.result, 'VALID');
  assert.equal(Buffer.from(ok.payload, 'base64').toString(), 'from-node');
  const wrong = spawnSync(cli, [`--server=${server.address}`, '--keyring=default', 'verify', mine.token, '--audience=api'],
    { encoding: 'utf8', timeout: 15000 });
  assert.equal(wrong.status, 1, `CLI exit code for WRONG_AUDIENCE: ${wrong.stderr}`);

  run('keys', 'rotate');
  const after = await client.verify({ token: mine.token, audience: 'web' });
  assert.equal(after.result, 'VALID');
  assert.equal(after.refreshRecommended, true);
  assert.notEqual((await client.listKeys()).primaryKeyId, mine.keyId);
});
