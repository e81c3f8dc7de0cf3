'use strict';
// Test support: a small Express 5 application using the session middleware, served on
// 127.0.0.1 with a port the OS picks, and a node:http browser stand-in that keeps the
// session cookie by hand (Set-Cookie is parsed explicitly so that the tests see each one).

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const express = require('express');
const sessiontoken = require('..');

const STATIC_FILE = path.join(__dirname, 'static.txt');

function createApp(sessionOptions) {
  const app = express();
  app.use(sessiontoken.session(sessionOptions));
  app.get('/whoami', (req, res) => res.json({ session: req.session }));
  app.post('/login', (req, res) => {
    req.session.user = String(req.query.user);
    res.json({ ok: true });
  });
  app.post('/counter', (req, res) => {
    req.session.n = (req.session.n || 0) + 1;
    res.json({ n: req.session.n });
  });
  app.post('/cart', (req, res) => {  // nested change: must be detected without any flag
    if (!req.session.cart) req.session.cart = { items: [] };
    else req.session.cart.items.push(String(req.query.item));
    res.json({ cart: req.session.cart });
  });
  app.post('/logout', (req, res) => {
    for (const k of Object.keys(req.session)) delete req.session[k];
    res.json({ ok: true });
  });
  app.post('/logout-null', (req, res) => {
    req.session = null;
    res.json({ ok: true });
  });
  app.post('/noop', (req, res) => {  // assigns the same content: not a change
    req.session = JSON.parse(JSON.stringify(req.session));
    res.json({ ok: true });
  });
  app.get('/stream', (req, res) => {  // headers go out with the first write
    req.session.streamed = true;
    res.write('a');
    setTimeout(() => res.end('b'), 20);
  });
  app.get('/redirect', (req, res) => {  // explicit writeHead, then end
    req.session.redirected = true;
    res.writeHead(302, { Location: '/whoami' });
    res.end();
  });
  app.get('/file', (req, res) => {  // piped file stream (send)
    req.session.file = true;
    // With `root`, send checks only the file's own name for dot-segments, not the folders
    // the checkout sits in (e.g. ~/.cache/src/...).
    res.sendFile(path.basename(STATIC_FILE), { root: path.dirname(STATIC_FILE) });
  });
  app.get('/late', (req, res) => {  // change after the response started: not saved
    res.write('x');
    req.session.late = true;
    res.end();
  });
  app.post('/bigint', (req, res) => {
    req.session.big = 1n;  // not JSON-serialisable
    res.json({ ok: true });
  });
  app.post('/huge', (req, res) => {
    req.session.blob = 'x'.repeat(5000);  // over the server's payload limit
    res.json({ ok: true });
  });
  app.get('/health', (req, res) => res.send('ok'));
  return app;
}

function listen(app) {
  return new Promise((resolve, reject) => {
    const server = app.listen(0, '127.0.0.1', (err) => {
      if (err) return reject(err);
      const { port } = server.address();
      resolve({ server, base: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(r)) });
    });
  });
}

/** Parses one Set-Cookie header value: {name, value, attrs: {lowercased name: value|true}}. */
function parseSetCookie(line) {
  const [pair, ...rest] = line.split(';');
  const eq = pair.indexOf('=');
  const attrs = {};
  for (const a of rest) {
    const i = a.indexOf('=');
    if (i < 0) attrs[a.trim().toLowerCase()] = true;
    else attrs[a.slice(0, i).trim().toLowerCase()] = a.slice(i + 1).trim();
  }
  return { name: pair.slice(0, eq).trim(), value: pair.slice(eq + 1).trim(), attrs };
}

/**
 * One HTTP exchange with node:http: {status, headers (a Headers without Set-Cookie), text,
 * setCookieLines (each Set-Cookie header, as sent)}. Not fetch: Headers.getSetCookie() is
 * missing from Debian 12's Node.js 18 (its undici 5.15).
 */
function exchange(url, method, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const plain = Object.entries(res.headers).filter(([k]) => k !== 'set-cookie');
        resolve({
          status: res.statusCode,
          headers: new Headers(plain.map(([k, v]) => [k, [].concat(v).join(', ')])),
          text: Buffer.concat(chunks).toString('utf8'),
          setCookieLines: res.headers['set-cookie'] || [],
        });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * One HTTP request. cookie: the session cookie value to send (or undefined).
 * Resolves {status, text, json, setCookies: [parsed], session: parsed cookie named `name` or undefined}.
 */
async function request(base, method, url, { cookie, cookieName = 'session' } = {}) {
  const headers = {};
  if (cookie !== undefined) headers.cookie = `other=1; ${cookieName}=${cookie}`;
  const res = await exchange(base + url, method, headers);
  const { text } = res;
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  const setCookies = res.setCookieLines.map(parseSetCookie);
  const mine = setCookies.filter((c) => c.name === cookieName);
  if (mine.length > 1) throw new Error(`more than one Set-Cookie for ${cookieName}: ${JSON.stringify(mine)}`);
  return { status: res.status, headers: res.headers, text, json, setCookies, session: mine[0] };
}

module.exports = { createApp, listen, request, parseSetCookie, STATIC_FILE };
