'use strict';
// sessiontoken.Client against a scripted in-process gRPC server (grpc-js, same .proto files,
// 127.0.0.1): exact request mapping, per-call deadlines, which calls are retried, and how
// batch items and unknown enum values are mapped. Things the real server cannot be made to
// do on demand (hang, answer UNAVAILABLE twice then OK). Retries and default deadlines come
// from proto/sessiontoken/v1/service_config.json, the file all clients share: the tests read
// it and check the client does what it says.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
require('../testing/harness');  // clears proxy variables
const { load, SERVICE_CONFIG } = require('../lib/proto');
const sessiontoken = require('..');

const calls = [];          // {rpc, request}
const behaviour = {};      // rpc -> (request, n) => {error} | {response} | {hang: true}
let server;
let address;

function handler(rpc) {
  return (call, callback) => {
    calls.push({ rpc, request: call.request });
    const n = calls.filter((c) => c.rpc === rpc).length;
    const b = behaviour[rpc] ? behaviour[rpc](call.request, n) : { response: {} };
    if (b.hang) return;  // never answers: the client's deadline must end the call
    if (b.error) callback({ code: b.error, details: `scripted ${rpc} failure ${n}` });
    else callback(null, b.response);
  };
}

before(async () => {
  const proto = load();
  server = new grpc.Server();
  const impl = (svc) => Object.fromEntries(Object.values(svc.service).map((m) => [m.originalName, handler(m.path.split('/').pop())]));
  server.addService(proto.SessionTokens.service, impl(proto.SessionTokens));
  server.addService(proto.KeyAdmin.service, impl(proto.KeyAdmin));
  const port = await new Promise((resolve, reject) => server.bindAsync('127.0.0.1:0',
    grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  address = `127.0.0.1:${port}`;
});
after(() => server.forceShutdown());

function reset() {
  calls.length = 0;
  for (const k of Object.keys(behaviour)) delete behaviour[k];
}

function newClient(extra = {}) {
  return new sessiontoken.Client({ address, keyring: 'ring', ...extra });
}

const SHARED_CONFIG = JSON.parse(fs.readFileSync(path.join(load().protoDir, SERVICE_CONFIG), 'utf8'));

/** The methodConfig entry of service/method in a service config (exact name, then service). */
function methodConfig(config, service, method) {
  const matches = (n) => n.service === `sessiontoken.v1.${service}` && (n.method || '') === method;
  return config.methodConfig.find((c) => c.name.some((n) => matches(n)))
    || config.methodConfig.find((c) => c.name.some((n) => n.service === `sessiontoken.v1.${service}` && !n.method));
}

test('requests carry exactly the proto fields', async () => {
  reset();
  const c = newClient();
  try {
    await c.sign({ payload: 'p', ttlSeconds: 90, audience: 'aud' });
    await c.verify({ keyring: 'other', token: 't', audience: 'aud', maxAgeSeconds: 30 });
    await c.verify({ token: 't' });
    await c.rotate({ promoteNow: true, algorithm: 'HMAC_SHA1_FLASK' });
    await c.importKey({ algorithm: 'HMAC_SHA1_FLASK', secret: 'sekrit', state: 'PRIMARY' });
    await c.createKeyring({ name: 'n', algorithm: 'HMAC_SHA256', policy: { rotationPeriodSeconds: 86400, stageLeadTimeSeconds: 60, destroyAfterSeconds: 7, tombstoneRetentionSeconds: 3600 } });
    await c.promoteKey({ keyId: 4294967295 });
    await c.setPolicy({ policy: {} });
  } finally {
    c.close();
  }
  const req = (i) => calls[i].request;
  assert.deepEqual(calls.map((x) => x.rpc), ['Sign', 'Verify', 'Verify', 'Rotate', 'ImportKey', 'CreateKeyring', 'PromoteKey', 'SetPolicy']);
  assert.equal(req(0).keyring, 'ring');
  assert.equal(req(0).payload.toString(), 'p');
  assert.deepEqual(req(0).ttl, { seconds: '90', nanos: 0 });
  assert.equal(req(0).audience, 'aud');
  assert.equal(req(1).keyring, 'other');
  assert.deepEqual(req(1).max_age, { seconds: '30', nanos: 0 });
  assert.equal(req(2).max_age, null, 'max_age unset when not given');
  assert.equal(req(2).audience, '');
  assert.equal(req(3).promote_now, true);
  assert.equal(req(3).algorithm, 'HMAC_SHA1_FLASK');
  assert.equal(req(4).secret.toString(), 'sekrit');
  assert.equal(req(4).state, 'PRIMARY');
  assert.equal(req(5).name, 'n');
  assert.deepEqual(req(5).policy.rotation_period, { seconds: '86400', nanos: 0 });
  assert.deepEqual(req(5).policy.stage_lead_time, { seconds: '60', nanos: 0 });
  assert.deepEqual(req(5).policy.destroy_after, { seconds: '7', nanos: 0 });
  assert.deepEqual(req(5).policy.tombstone_retention, { seconds: '3600', nanos: 0 });
  assert.equal(req(5).policy.verify_window, null);
  assert.equal(req(6).key_id, 4294967295);
  assert.ok(req(7).policy, 'SetPolicy sends a policy message');
});

test('per-call deadline: a hanging server gives DEADLINE_EXCEEDED on time', async () => {
  reset();
  behaviour.Verify = () => ({ hang: true });
  const c = newClient({ deadlineMs: 5000 });
  try {
    const t0 = Date.now();
    await assert.rejects(c.verify({ token: 't' }, { deadlineMs: 200 }),
      (e) => e.codeName === 'DEADLINE_EXCEEDED');
    assert.equal(calls.length, 1);
    const took = Date.now() - t0;
    assert.ok(took >= 180 && took < 2000, `took ${took} ms`);
  } finally {
    c.close();
  }
});

test('UNAVAILABLE answers are retried; other codes are not', async () => {
  reset();
  behaviour.Verify = (r, n) => (n <= 2 ? { error: grpc.status.UNAVAILABLE } : { response: { result: 'VALID', payload: Buffer.from('ok'), key_id: 9 } });
  behaviour.Sign = () => ({ error: grpc.status.INTERNAL });
  const c = newClient();
  try {
    const v = await c.verify({ token: 't' });
    assert.equal(v.result, 'VALID');
    assert.equal(v.payload.toString(), 'ok');
    assert.equal(v.keyId, 9);
    assert.equal(calls.filter((x) => x.rpc === 'Verify').length, 3);
    await assert.rejects(c.sign({ payload: 'x', ttlSeconds: 5 }), (e) => e.codeName === 'INTERNAL');
    assert.equal(calls.filter((x) => x.rpc === 'Sign').length, 1);
  } finally {
    c.close();
  }
});

test('attempts are bounded by the shared config, and by the deadline', async () => {
  reset();
  behaviour.Verify = () => ({ error: grpc.status.UNAVAILABLE });
  const c = newClient();
  try {
    // A deadline long enough for every backoff (at most 1.5 s in all), whatever the load.
    await assert.rejects(c.verify({ token: 't' }, { deadlineMs: 20000 }), (e) => e.codeName === 'UNAVAILABLE');
    assert.equal(calls.length, methodConfig(SHARED_CONFIG, 'SessionTokens', 'Verify').retryPolicy.maxAttempts);
    reset();
    // The second attempt hangs: only the deadline can end the call (the first backoff is at
    // most 0.1 s, so the retry starts well within it).
    behaviour.Verify = (r, n) => (n === 1 ? { error: grpc.status.UNAVAILABLE } : { hang: true });
    await assert.rejects(c.verify({ token: 't' }, { deadlineMs: 2000 }), (e) => e.codeName === 'DEADLINE_EXCEEDED');
    assert.equal(calls.length, 2, 'retried once, then the deadline ended the second attempt');
  } finally {
    c.close();
  }
});

const MUTATIONS = ['Rotate', 'ImportKey', 'CreateKeyring', 'PromoteKey', 'DisableKey', 'EnableKey', 'DestroyKey', 'SetPolicy'];
const ADMIN_READS = ['ListKeys', 'ListKeyrings', 'GetKeyring'];

test('admin mutations are never retried; admin reads are', async () => {
  reset();
  for (const rpc of [...MUTATIONS, ...ADMIN_READS]) behaviour[rpc] = () => ({ error: grpc.status.UNAVAILABLE });
  const c = newClient();
  try {
    const unavailable = (e) => e.codeName === 'UNAVAILABLE';
    await assert.rejects(c.rotate(), unavailable);
    await assert.rejects(c.importKey({ algorithm: 'HMAC_SHA256', secret: Buffer.alloc(32) }), unavailable);
    await assert.rejects(c.createKeyring({ name: 'x' }), unavailable);
    await assert.rejects(c.promoteKey({ keyId: 1 }), unavailable);
    await assert.rejects(c.disableKey({ keyId: 1 }), unavailable);
    await assert.rejects(c.enableKey({ keyId: 1 }), unavailable);
    await assert.rejects(c.destroyKey({ keyId: 1 }), unavailable);
    await assert.rejects(c.setPolicy({ policy: {} }), unavailable);
    assert.deepEqual(calls.map((x) => x.rpc), MUTATIONS);
    for (const rpc of MUTATIONS) assert.equal(methodConfig(SHARED_CONFIG, 'KeyAdmin', rpc).retryPolicy, undefined, rpc);
    reset();
    for (const rpc of ADMIN_READS) behaviour[rpc] = () => ({ error: grpc.status.UNAVAILABLE });
    await assert.rejects(c.listKeys(), unavailable);
    await assert.rejects(c.listKeyrings(), unavailable);
    await assert.rejects(c.getKeyring(), unavailable);
    for (const rpc of ADMIN_READS) {
      assert.equal(calls.filter((x) => x.rpc === rpc).length,
        methodConfig(SHARED_CONFIG, 'KeyAdmin', rpc).retryPolicy.maxAttempts, rpc);
    }
  } finally {
    c.close();
  }
});

test('the client takes its deadlines and retries from proto/sessiontoken/v1/service_config.json', async () => {
  // A copy of the proto directory whose service config differs: 2 attempts, 0.5 s timeout.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sessiontoken-proto-'));
  try {
    fs.cpSync(load().protoDir, dir, { recursive: true });
    const config = JSON.parse(JSON.stringify(SHARED_CONFIG));
    const verify = methodConfig(config, 'SessionTokens', 'Verify');
    verify.retryPolicy.maxAttempts = 2;
    verify.timeout = '0.5s';
    fs.writeFileSync(path.join(dir, SERVICE_CONFIG), JSON.stringify(config));
    reset();
    behaviour.Verify = (r, n) => (n <= 2 ? { error: grpc.status.UNAVAILABLE } : { hang: true });
    const c = newClient({ protoDir: dir });
    try {
      await assert.rejects(c.verify({ token: 't' }), (e) => e.codeName === 'UNAVAILABLE');
      assert.equal(calls.length, 2, 'maxAttempts from the file');
      const t0 = Date.now();
      await assert.rejects(c.verify({ token: 't' }), (e) => e.codeName === 'DEADLINE_EXCEEDED');
      assert.ok(Date.now() - t0 < 5000, 'the timeout from the file ends a call that names no deadline');
    } finally {
      c.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('batch responses: per-item errors, count mismatch, unknown result values', async () => {
  reset();
  behaviour.BatchVerify = (r) => ({
    response: {
      items: r.items.length === 2
        ? [{ code: 0, response: { result: 'EXPIRED', key_id: 5 } }, { code: grpc.status.NOT_FOUND, message: 'keyring "x" not found' }]
        : [],
    },
  });
  behaviour.Verify = () => ({ response: { result: 42 } });
  const c = newClient();
  try {
    const items = await c.batchVerify([{ token: 'a' }, { token: 'b', keyring: 'x' }]);
    assert.deepEqual(items.map((i) => i.ok), [true, false]);
    assert.equal(items[0].result, 'EXPIRED');
    assert.equal(items[0].payload, null);
    assert.equal(items[0].keyId, 5);
    assert.equal(items[1].code, grpc.status.NOT_FOUND);
    assert.equal(items[1].codeName, 'NOT_FOUND');
    assert.match(items[1].message, /not found/);
    await assert.rejects(c.batchVerify([{ token: 'a' }]), (e) => e.codeName === 'INTERNAL' && /expected 1 items/.test(e.details));
    const odd = await c.verify({ token: 't' });
    assert.equal(odd.valid, false);
    assert.equal(odd.result, 'RESULT_42');
  } finally {
    c.close();
  }
});

test('an AbortSignal cancels a call', async () => {
  reset();
  behaviour.Verify = () => ({ hang: true });
  const c = newClient();
  try {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    await assert.rejects(c.verify({ token: 't' }, { signal: ac.signal, deadlineMs: 5000 }), (e) => e.codeName === 'CANCELLED');
  } finally {
    c.close();
  }
});
