'use strict';
// Test support: an Express app that logs users in and out with Passport (passport-local)
// on top of the sessiontoken session middleware, as express-session users do, and an
// http.request-based client that returns every Set-Cookie (no fetch: works on Node 18).

const http = require('node:http');
const express = require('express');
const passport = require('passport');
const { Strategy: LocalStrategy } = require('passport-local');
const sessiontoken = require('..');
const { parseSetCookie } = require('./app');

const USERS = { alice: 'wonderland', bob: 'builder' };

function createPassportApp(sessionOptions) {
  const pp = new passport.Passport();
  pp.use(new LocalStrategy((username, password, done) => {
    done(null, USERS[username] !== undefined && USERS[username] === password ? { id: username } : false);
  }));
  pp.serializeUser((user, done) => done(null, user.id));
  pp.deserializeUser((id, done) => done(null, USERS[id] !== undefined ? { id } : false));

  const app = express();
  app.use(express.urlencoded({ extended: false }));
  app.use(sessiontoken.session(sessionOptions));
  app.use(pp.initialize());
  app.use(pp.session());
  app.post('/login', pp.authenticate('local'), (req, res) => res.json({ user: req.user.id }));
  app.get('/me', (req, res) => res.json({ user: req.user ? req.user.id : null, session: req.session }));
  app.post('/visit', (req, res) => {  // session data next to Passport's
    req.session.visits = (req.session.visits || 0) + 1;
    res.json({ visits: req.session.visits });
  });
  app.post('/logout', (req, res, next) => req.logout((err) => (err ? next(err) : res.json({ ok: true }))));
  return app;
}

/**
 * One HTTP request with node:http. Resolves {status, text, json, setCookies, session}
 * (session: the parsed Set-Cookie named cookieName, or undefined).
 */
function send(base, method, path, { cookie, cookieName = 'session', form, headers = {} } = {}) {
  const url = new URL(path, base);
  const body = form ? new URLSearchParams(form).toString() : undefined;
  const h = { ...headers };
  if (cookie !== undefined) h.cookie = `${cookieName}=${cookie}`;
  if (body !== undefined) {
    h['content-type'] = 'application/x-www-form-urlencoded';
    h['content-length'] = Buffer.byteLength(body);
  }
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: h, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        const setCookies = (res.headers['set-cookie'] || []).map(parseSetCookie);
        const mine = setCookies.filter((c) => c.name === cookieName);
        if (mine.length > 1) reject(new Error(`more than one Set-Cookie for ${cookieName}`));
        resolve({ status: res.statusCode, headers: res.headers, text, json, setCookies, session: mine[0] });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

module.exports = { createPassportApp, send, USERS };
