// Compile-only check of index.d.ts (npm run typecheck): typical uses must type-check, and
// the @ts-expect-error lines must fail to (so the declarations are not just `any`).
import express from 'express';
import * as sessiontoken from '..';
import { Client, session, parseNativeToken, SessionTokenError, status } from '..';

async function main(): Promise<void> {
  const client = new Client({ address: '127.0.0.1:50051', keyring: 'default', deadlineMs: 500 });
  const signed = await client.sign({ payload: 'x', ttlSeconds: 60, audience: 'web' });
  const t: string = signed.token;
  const when: Date = signed.expiresAt;
  const v = await client.verify({ token: t, audience: 'web', maxAgeSeconds: 60 }, { deadlineMs: 100 });
  if (v.result === 'VALID' && v.payload) {
    const text: string = v.payload.toString('utf8');
    void text;
  }
  const refresh: boolean = v.refreshRecommended;
  const keyId: number | null = v.keyId;
  const items = await client.batchVerify([{ token: t }]);
  for (const it of items) {
    if (it.ok) { const r: string = it.result; void r; } else { const c: number = it.code; void c; }
  }
  const rot = await client.rotate({ keyring: 'default', promoteNow: true });
  const newId: number = rot.newKey.keyId;
  const ring = await client.createKeyring({ name: 'shop', policy: { maxTokenTtlSeconds: 3600 } });
  const ttl: number = ring.policy.maxTokenTtlSeconds;
  await client.importKey({ algorithm: 'HMAC_SHA1_FLASK', secret: 'flask-secret' });
  await client.promoteKey({ keyId: newId });
  const rings = await client.listKeyrings();
  const n: number = rings[0].keyCount;
  try {
    await client.listKeys();
  } catch (e) {
    if (e instanceof SessionTokenError && e.code === status.UNAVAILABLE) { const m: string = e.codeName; void m; }
  }
  const fields = parseNativeToken(t);
  if (fields) { const iat: number = fields.issuedAt; void iat; }

  const app = express();
  app.use(session({ client, keyring: 'default', audience: 'web', cookie: { secure: 'auto', sameSite: 'lax', maxAge: null } }));
  app.get('/', (req, res) => {
    req.session.user = 'alice';
    res.json(req.session);
  });
  app.use(sessiontoken.session({ client, audience: '', refreshAfterSeconds: 600, maxPayloadBytes: null }));
  app.post('/login', (req, res, next) => {
    req.session.regenerate((err) => {
      if (err) return next(err);
      req.session.user = 'bob';
      req.session.save((e) => (e instanceof sessiontoken.SessionTooLargeError ? next(e) : res.end()));
    });
  });
  app.post('/logout', (req, res) => {
    req.session = null;
    res.end();
  });
  app.post('/destroy', (req, res) => req.session.destroy(() => res.end()));
  app.post('/reset', (req, res) => {
    req.session = { fresh: true };
    req.session.reload(() => res.end());
  });

  // @ts-expect-error ttlSeconds is required
  await client.sign({ payload: 'x' });
  // @ts-expect-error results are names, not numbers
  const bad: number = v.result;
  // @ts-expect-error unknown algorithm
  await client.rotate({ algorithm: 'HMAC_MD5' });
  // @ts-expect-error audience is required by the middleware
  session({ client, keyring: 'k' });
  // @ts-expect-error refreshAfterSeconds is a number
  session({ client, audience: '', refreshAfterSeconds: '60' });
  app.get('/x', (req) => {
    // @ts-expect-error regenerate needs a callback
    req.session.regenerate();
  });
  void [when, refresh, keyId, ttl, n, bad];
}
void main;
