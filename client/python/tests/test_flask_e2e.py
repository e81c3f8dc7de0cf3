#!/usr/bin/python3
"""A real Flask app using sessiontoken.flask.SessionTokenInterface, served over HTTP on
127.0.0.1 and driven with real requests and a cookie jar, against the real server binary:
login -> session persists -> rotate (admin API) -> old cookie accepted and re-issued under
the new primary -> tampered cookie rejected -> logout deletes the cookie -> service stopped:
requests fail closed (empty session, normal 200, error logged)."""

import base64
import datetime
import json
import time
import unittest

import harness
import sessiontoken
from sessiontoken import token as tk
from sessiontoken.flask import SessionTokenInterface

AUDIENCE = "cookie-session"
COOKIE = "sid"
LIFETIME = datetime.timedelta(hours=1)


def make_app(client, keyring="default"):
    return harness.make_app(SessionTokenInterface(client, keyring=keyring), cookie_name=COOKIE,
                            lifetime=LIFETIME)


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def tamper_payload(token, new_payload):
    """Same header and MAC, different payload: must fail the MAC (BAD_SIGNATURE)."""
    h = tk.parse_native_header(token)
    body = (h.key_id.to_bytes(4, "big") + h.issued_at.to_bytes(8, "big")
            + h.expires_at.to_bytes(8, "big") + h.aud_tag + new_payload + h.mac)
    return "st1." + b64(body)


class _ServedApp(unittest.TestCase):
    """A real sessiontoken-server and the test Flask app served over HTTP, per class."""

    @classmethod
    def setUpClass(cls):
        cls.server = harness.ServerProcess()
        cls.client = sessiontoken.Client(cls.server.target, timeout=2.0)
        cls.app = make_app(cls.client)
        cls.web = harness.FlaskServer(cls.app)

    @classmethod
    def tearDownClass(cls):
        cls.web.close()
        cls.client.close()
        cls.server.close()


class FlaskE2E(_ServedApp):
    def assert_st1_cookie(self, resp, key_id, user):
        got = resp.set_cookie(COOKIE)
        self.assertIsNotNone(got, f"no Set-Cookie {COOKIE}: {resp.set_cookies}")
        value, raw = got
        h = tk.parse_native_header(value)
        self.assertEqual(h.key_id, key_id)
        self.assertTrue(h.audience_matches(AUDIENCE))
        self.assertEqual(json.loads(h.payload)["user"], user)
        self.assertIn("HttpOnly", raw)
        self.assertIn("SameSite=Lax", raw)
        self.assertIn("Path=/", raw)
        self.assertIn("cookie", resp.vary)
        return value, h

    def test_1_journey(self):
        c, srv = self.client, self.server
        b = harness.Browser(self.web.url)
        k1 = c.list_keys().primary_key_id
        self.assertNotEqual(k1, 0)

        # No cookie: empty session, nothing set; reading the session adds Vary: Cookie.
        r = b.get("/whoami")
        self.assertEqual((r.status, r.json()), (200, {"user": None}))
        self.assertEqual(r.set_cookies, [])
        self.assertIn("cookie", r.vary)
        r = b.get("/ping")
        self.assertNotIn("cookie", r.vary)

        # Login: a native token signed by the primary, TTL = PERMANENT_SESSION_LIFETIME,
        # a browser-session cookie (no Expires) since the session is not permanent.
        r = b.get("/login?user=alice")
        self.assertEqual(r.json(), {"user": "alice"})
        cookie1, h = self.assert_st1_cookie(r, k1, "alice")
        self.assertEqual(h.expires_at - h.issued_at, int(LIFETIME.total_seconds()))
        self.assertAlmostEqual(h.issued_at, time.time(), delta=60)
        self.assertNotIn("Expires", r.set_cookie(COOKIE)[1])
        self.assertEqual(b.cookie(COOKIE), cookie1)
        # The C++ CLI agrees that it is a valid token for the Flask audience.
        cli = srv.cli("verify", cookie1, f"--audience={AUDIENCE}")
        self.assertEqual(cli.returncode, 0, cli.stdout + cli.stderr)

        # Persists; not modified and not permanent: no new Set-Cookie.
        r = b.get("/whoami")
        self.assertEqual(r.json(), {"user": "alice"})
        self.assertIsNone(r.set_cookie(COOKIE))

        # Rotate through the admin API: the old cookie is still accepted AND re-issued
        # under the new primary, with the same session.
        rot = c.rotate()
        k2 = rot.new_key.key_id
        self.assertEqual(rot.previous_primary_key_id, k1)
        self.assertNotEqual(k2, k1)
        self.assertEqual(c.list_keys().primary_key_id, k2)
        r = b.get("/whoami")
        self.assertEqual(r.json(), {"user": "alice"})
        cookie2, _ = self.assert_st1_cookie(r, k2, "alice")
        self.assertNotEqual(cookie2, cookie1)
        self.assertEqual(b.cookie(COOKIE), cookie2)
        # The re-issued cookie is current: no further Set-Cookie.
        r = b.get("/whoami")
        self.assertEqual(r.json(), {"user": "alice"})
        self.assertIsNone(r.set_cookie(COOKIE))
        # The old cookie keeps working (stateless), and is re-issued again.
        old = harness.Browser(self.web.url)
        old.set_cookie(COOKIE, cookie1)
        r = old.get("/whoami")
        self.assertEqual(r.json(), {"user": "alice"})
        self.assert_st1_cookie(r, k2, "alice")

        # Tampered cookies: a payload swapped under the genuine MAC, and a flipped MAC bit.
        forged = tamper_payload(cookie2, json.dumps({"user": "mallory"}).encode())
        self.assertEqual(c.verify(forged, audience=AUDIENCE).result,
                         sessiontoken.Result.BAD_SIGNATURE)
        flipped = cookie2[:-8] + ("A" if cookie2[-8] != "A" else "B") + cookie2[-7:]
        self.assertEqual(tk.parse_native_header(flipped).payload,
                         tk.parse_native_header(cookie2).payload)
        self.assertEqual(c.verify(flipped, audience=AUDIENCE).result,
                         sessiontoken.Result.BAD_SIGNATURE)
        for bad in (forged, flipped, cookie2 + "x", "garbage"):
            with self.subTest(bad=bad[:20]):
                t = harness.Browser(self.web.url)
                t.set_cookie(COOKIE, bad)
                r = t.get("/whoami")
                self.assertEqual((r.status, r.json()), (200, {"user": None}))
                self.assertIsNone(r.set_cookie(COOKIE))
        # A genuine token for another audience is not a session cookie.
        other = c.sign(json.dumps({"user": "alice"}).encode(), 60, audience="api").token
        t = harness.Browser(self.web.url)
        t.set_cookie(COOKIE, other)
        self.assertEqual(t.get("/whoami").json(), {"user": None})

        # Logout deletes the cookie.
        r = b.get("/logout")
        value, raw = r.set_cookie(COOKIE)
        self.assertEqual(value, "")
        self.assertTrue("Max-Age=0" in raw or "1970" in raw, raw)
        self.assertIsNone(b.cookie(COOKIE))
        self.assertEqual(b.get("/whoami").json(), {"user": None})

        # Service stopped: fail closed. The valid cookie is not trusted without Verify;
        # the request still succeeds with an empty session, quickly, and an error is logged.
        r = b.get("/login?user=bob")
        cookie3, _ = self.assert_st1_cookie(r, k2, "bob")
        self.assertEqual(b.get("/whoami").json(), {"user": "bob"})
        self.assertEqual(srv.stop(), 0, srv.log())
        start = time.monotonic()
        with self.assertLogs("sessiontoken.flask", "ERROR") as logs:
            r = b.get("/whoami")
        elapsed = time.monotonic() - start
        self.assertEqual((r.status, r.json()), (200, {"user": None}))
        self.assertLess(elapsed, 5.0)
        self.assertTrue(any("UNAVAILABLE" in m for m in logs.output), logs.output)
        self.assertFalse(any(cookie3 in m for m in logs.output), "cookie value logged")
        self.assertIsNone(r.set_cookie(COOKIE))   # nothing changed: the cookie is kept
        self.assertEqual(b.cookie(COOKIE), cookie3)
        # A login while the service is down: the session could not be verified, so it is
        # not saved; the browser's (valid) cookie is neither replaced nor deleted.
        with self.assertLogs("sessiontoken.flask", "WARNING") as logs:
            r = b.get("/login?user=carol")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.set_cookies, [])
        self.assertEqual(b.cookie(COOKIE), cookie3)
        self.assertTrue(any("could not be verified" in m for m in logs.output), logs.output)


class PermanentSessions(_ServedApp):
    """Permanent sessions: Expires and TTL from PERMANENT_SESSION_LIFETIME, refreshed on
    every request unless SESSION_REFRESH_EACH_REQUEST is off; max_age is what Flask uses."""

    def test_permanent(self):
        b = harness.Browser(self.web.url)
        r = b.get("/login?user=dora&permanent=1")
        value, raw = r.set_cookie(COOKIE)
        h = tk.parse_native_header(value)
        self.assertEqual(h.expires_at - h.issued_at, int(LIFETIME.total_seconds()))
        self.assertIn("Expires=", raw)
        cookie = b.cookie(COOKIE)
        self.assertEqual(cookie, value)
        payload = self.app.session_interface.serializer.loads(h.payload.decode())
        self.assertEqual(payload, {"user": "dora", "_permanent": True})

        self.app.config["SESSION_REFRESH_EACH_REQUEST"] = True
        r = b.get("/whoami")
        self.assertEqual(r.json(), {"user": "dora"})
        self.assertIsNotNone(r.set_cookie(COOKIE), "permanent session not refreshed")
        self.app.config["SESSION_REFRESH_EACH_REQUEST"] = False
        try:
            r = b.get("/whoami")
            self.assertEqual(r.json(), {"user": "dora"})
            self.assertIsNone(r.set_cookie(COOKIE))
        finally:
            self.app.config["SESSION_REFRESH_EACH_REQUEST"] = True

    def test_unreachable_service_at_startup_is_fail_closed(self):
        # A client pointed at a port nobody listens on (bind, then close, a free port).
        import socket
        s = socket.socket()
        s.bind((harness.LOOPBACK, 0))
        port = s.getsockname()[1]
        s.close()
        dead = sessiontoken.Client(f"{harness.LOOPBACK}:{port}", timeout=1.0)
        try:
            app = make_app(dead)
            web = harness.FlaskServer(app)
            try:
                b = harness.Browser(web.url)
                # A cookie that is genuine (signed by the live service) is still refused.
                good = self.client.sign(json.dumps({"user": "eve"}).encode(), 60,
                                        audience=AUDIENCE).token
                self.assertTrue(self.client.verify(good, audience=AUDIENCE).valid)
                b.set_cookie(COOKIE, good)
                with self.assertLogs("sessiontoken.flask", "ERROR"):
                    r = b.get("/whoami")
                self.assertEqual((r.status, r.json()), (200, {"user": None}))
            finally:
                web.close()
        finally:
            dead.close()


if __name__ == "__main__":
    harness.run(__name__)
