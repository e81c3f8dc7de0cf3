#!/usr/bin/python3
"""Issue 13 against the real server binary and a real Flask app over HTTP:

* the service stalls (SIGSTOP) or is down while the view writes to the session: the
  browser's valid cookie is neither replaced nor deleted, and it works again afterwards;
* rolling expiry (`refresh_after`): a token past the threshold is re-issued, a younger one
  is not; Sign calls are counted (a read-only request costs one Verify and no Sign);
* a session too large for the service: the documented outcome (cookie deleted, ERROR
  "session too large"), from the client-side limit and from the service's own refusal;
* SESSION_COOKIE_PARTITIONED;
* a forking server (werkzeug's ForkingWSGIServer forks per request) after the interface
  and its Client were created and used in the parent process.
"""

import datetime
import functools
import os
import signal
import threading
import time
import unittest

import harness
import sessiontoken
from sessiontoken import token as tk
from sessiontoken.flask import SessionTokenInterface

COOKIE = "sid"
AUDIENCE = "cookie-session"
LIFETIME = datetime.timedelta(hours=1)


class Counting:
    """A Client wrapper that counts Sign and Verify calls (the RPCs per request)."""

    def __init__(self, client):
        self.inner = client
        self.signs = 0
        self.verifies = 0
        self.lock = threading.Lock()

    def sign(self, *a, **kw):
        with self.lock:
            self.signs += 1
        return self.inner.sign(*a, **kw)

    def verify(self, *a, **kw):
        with self.lock:
            self.verifies += 1
        return self.inner.verify(*a, **kw)

    def counts(self):
        with self.lock:
            return self.signs, self.verifies


def make_app(interface, **config):
    app = harness.make_app(interface, cookie_name=COOKIE, lifetime=LIFETIME)
    app.config.update(config)
    import flask

    @app.route("/csrf")
    def csrf():   # a view that writes to every session (e.g. a CSRF token)
        flask.session["csrf"] = "token-%d" % time.time_ns()
        return {"user": flask.session.get("user")}

    @app.route("/huge")
    def huge():
        flask.session["blob"] = "x" * int(flask.request.args.get("n", "5000"))
        return {"user": flask.session.get("user")}

    @app.route("/pid")
    def pid():
        return {"pid": os.getpid(), "user": flask.session.get("user")}

    return app


class _Served(unittest.TestCase):
    interface_args = {}
    config = {}

    @classmethod
    def setUpClass(cls):
        cls.server = harness.ServerProcess()
        cls.client = sessiontoken.Client(cls.server.target, timeout=1.0)
        cls.counting = Counting(cls.client)
        cls.interface = SessionTokenInterface(cls.counting, **cls.interface_args)
        cls.app = make_app(cls.interface, **cls.config)
        cls.web = harness.FlaskServer(cls.app)

    @classmethod
    def tearDownClass(cls):
        cls.web.close()
        cls.client.close()
        cls.server.close()

    def login(self, user="alice"):
        b = harness.Browser(self.web.url)
        r = b.get(f"/login?user={user}")
        self.assertEqual(r.json(), {"user": user})
        self.assertIsNotNone(r.set_cookie(COOKIE))
        return b, b.cookie(COOKIE)


class VerifyFailure(_Served):
    """Fix 1: an unverified (empty) session is never saved."""

    def assert_untouched(self, b, cookie, path):
        with self.assertLogs("sessiontoken.flask", "WARNING") as logs:
            r = b.get(path)
        self.assertEqual(r.status, 200)
        if not path.startswith("/login"):   # (a login view answers with the user it set)
            self.assertEqual(r.json()["user"], None, "an unverified cookie must not be trusted")
        self.assertEqual(r.set_cookies, [], f"{path}: the valid cookie must not be replaced")
        self.assertEqual(b.cookie(COOKIE), cookie)
        self.assertTrue(any("session cookie not checked" in m for m in logs.output), logs.output)
        warnings = [m for m in logs.output if m.startswith("WARNING")
                    and "could not be verified" in m]
        self.assertEqual(len(warnings), 1, logs.output)
        self.assertFalse(any(cookie in m for m in logs.output), "cookie value logged")

    def wait_for_state(self, pid, stopped, timeout=10):
        """Waits until the kernel reports the process stopped (T) or running again."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            if (state in ("T", "t")) == stopped:
                return
            time.sleep(0.01)
        self.fail(f"process {pid} did not become {'stopped' if stopped else 'running'}")

    def wait_serving(self):
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if self.client.health(timeout=2) == "SERVING":
                    return
            except sessiontoken.ServiceError:
                pass
            time.sleep(0.1)
        self.fail("the service did not come back")

    def test_service_stalls_during_verify(self):
        b, cookie = self.login("alice")
        self.server.proc.send_signal(signal.SIGSTOP)
        try:
            self.wait_for_state(self.server.proc.pid, stopped=True)
            for path in ("/csrf", "/login?user=mallory", "/huge", "/logout"):
                with self.subTest(path=path):
                    self.assert_untouched(b, cookie, path)
        finally:
            self.server.proc.send_signal(signal.SIGCONT)
        self.wait_for_state(self.server.proc.pid, stopped=False)
        self.wait_serving()  # the channel may be backing off after the stall
        # Back: the same cookie still holds the login.
        r = b.get("/whoami")
        self.assertEqual(r.json(), {"user": "alice"})
        self.assertEqual(b.cookie(COOKIE), cookie)

    def test_service_down_during_verify(self):
        b, cookie = self.login("bob")
        port = self.server.port
        self.server.stop()
        try:
            for path in ("/csrf", "/logout"):
                with self.subTest(path=path):
                    self.assert_untouched(b, cookie, path)
        finally:
            # Same data dir (same keys) and port: the old cookie must still be good.
            old = self.server
            type(self).server = harness.ServerProcess(port=port, reuse=old)
            old.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if self.client.health(timeout=2) == "SERVING":
                    break
            except sessiontoken.ServiceError:
                pass
            time.sleep(0.1)
        r = b.get("/whoami")
        self.assertEqual(r.json(), {"user": "bob"})
        self.assertEqual(b.cookie(COOKIE), cookie)


class RollingRefresh(_Served):
    """Fix 3: refresh_after re-signs an unchanged session only when its token is old."""
    interface_args = {"refresh_after": 2}
    config = {"SESSION_REFRESH_EACH_REQUEST": True}

    def test_rolling(self):
        r = harness.Browser(self.web.url).get("/login?user=carol&permanent=1")
        b = harness.Browser(self.web.url)
        b.set_cookie(COOKIE, r.set_cookie(COOKIE)[0])
        cookie = b.cookie(COOKIE)
        issued = tk.parse_native_header(cookie).issued_at
        # Young token: permanent + SESSION_REFRESH_EACH_REQUEST would sign on every
        # response; with refresh_after it costs one Verify and no Sign.
        signs0, verifies0 = self.counting.counts()
        r = b.get("/whoami")
        after = time.time()
        if after - issued < 2:   # (skip the check on a machine stalled for seconds)
            self.assertEqual(r.json(), {"user": "carol"})
            self.assertIsNone(r.set_cookie(COOKIE))
            self.assertEqual(self.counting.counts(), (signs0, verifies0 + 1))
        # Past the threshold: re-issued (same data, a newer token), one Sign.
        time.sleep(max(0.0, issued + 2.2 - time.time()))
        signs0, verifies0 = self.counting.counts()
        r = b.get("/whoami")
        self.assertEqual(r.json(), {"user": "carol"})
        got = r.set_cookie(COOKIE)
        self.assertIsNotNone(got, "a token older than refresh_after must be re-issued")
        self.assertIn("Expires=", got[1])
        h = tk.parse_native_header(got[0])
        self.assertGreater(h.issued_at, issued)
        self.assertEqual(h.expires_at - h.issued_at, int(LIFETIME.total_seconds()))
        self.assertEqual(self.counting.counts(), (signs0 + 1, verifies0 + 1))
        # The new token is young again: no further Sign.
        b.set_cookie(COOKIE, got[0])
        signs0, verifies0 = self.counting.counts()
        r = b.get("/whoami")
        if time.time() - h.issued_at < 2:
            self.assertIsNone(r.set_cookie(COOKIE))
            self.assertEqual(self.counting.counts(), (signs0, verifies0 + 1))

    def test_rpcs_per_request(self):
        b, cookie = self.login("dave")   # not permanent
        signs0, verifies0 = self.counting.counts()
        self.assertIsNone(b.get("/whoami").set_cookie(COOKIE))            # read-only
        self.assertEqual(self.counting.counts(), (signs0, verifies0 + 1))
        self.assertIsNotNone(b.get("/csrf").set_cookie(COOKIE))           # modified
        self.assertEqual(self.counting.counts(), (signs0 + 1, verifies0 + 2))
        self.assertEqual(harness.Browser(self.web.url).get("/ping").status, 200)  # no cookie
        self.assertEqual(self.counting.counts(), (signs0 + 1, verifies0 + 2))


class TooLarge(_Served):
    """Fix 4: a session over the limit: cookie deleted, ERROR 'session too large'."""

    def check(self, n, expect_sign_calls):
        b, cookie = self.login("erin")
        signs0, _ = self.counting.counts()
        with self.assertLogs("sessiontoken.flask", "ERROR") as logs:
            r = b.get(f"/huge?n={n}")
        self.assertEqual(r.status, 200)
        value, raw = r.set_cookie(COOKIE)
        self.assertEqual(value, "", "the previous session must not be left behind")
        self.assertIsNone(b.cookie(COOKIE))
        self.assertTrue(any("session not saved: session too large" in m for m in logs.output),
                        logs.output)
        self.assertEqual(self.counting.counts()[0] - signs0, expect_sign_calls)
        return logs.output

    def test_client_side_limit(self):
        out = self.check(5000, 0)   # refused before any RPC
        self.assertTrue(any("exceeds the limit of 2048" in m for m in out), out)

    def test_service_refusal_is_the_same_error(self):
        self.interface.max_payload_bytes = None
        try:
            out = self.check(5000, 1)
        finally:
            self.interface.max_payload_bytes = sessiontoken.flask.DEFAULT_MAX_PAYLOAD_BYTES
        self.assertTrue(any("payload:" in m for m in out), out)

    def test_at_the_limit_is_signed(self):
        b, _ = self.login("erin")
        # The session {"_permanent": false, "blob": "x...x", "user": "erin"}: 2048 bytes.
        with self.app.app_context():
            n = 2048 - len(self.interface.serializer.dumps(
                {"_permanent": False, "blob": "", "user": "erin"}).encode())
        r = b.get(f"/huge?n={n}")
        value, _ = r.set_cookie(COOKIE)
        self.assertEqual(len(tk.parse_native_header(value).payload), 2048)


class Partitioned(_Served):
    config = {"SESSION_COOKIE_PARTITIONED": True, "SESSION_COOKIE_SECURE": True}

    def test_partitioned(self):
        b = harness.Browser(self.web.url)
        r = b.get("/login?user=faye")
        _, raw = r.set_cookie(COOKIE)
        self.assertIn("; Partitioned", raw)
        self.assertIn("Secure", raw)


class ForkingServer(unittest.TestCase):
    """Fix 6: the interface built (and used) before fork works in forked workers."""

    def test_forking_server(self):
        import logging
        from werkzeug.serving import make_server
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        server = harness.ServerProcess()
        try:
            interface = SessionTokenInterface(functools.partial(
                sessiontoken.Client, server.target, timeout=2.0))
            app = make_app(interface)
            # The parent creates and uses its Client (its channel) before forking.
            with app.test_client() as tc:
                r = tc.get("/login?user=gina")
                self.assertEqual(r.json, {"user": "gina"})
            parent_client = interface.client
            self.assertEqual(interface.client.health(), "SERVING")
            httpd = make_server(harness.LOOPBACK, 0, app, processes=4)  # forks per request
            t = threading.Thread(target=httpd.serve_forever, args=(0.1,), daemon=True)
            t.start()
            try:
                b = harness.Browser(f"http://{harness.LOOPBACK}:{httpd.server_port}")
                r = b.get("/login?user=hank")
                self.assertEqual(r.json(), {"user": "hank"})
                self.assertIsNotNone(b.cookie(COOKIE))
                pids = set()
                for _ in range(3):
                    r = b.get("/pid", timeout=20)
                    self.assertEqual(r.json()["user"], "hank")
                    pids.add(r.json()["pid"])
                self.assertNotIn(os.getpid(), pids)
                self.assertEqual(len(pids), 3, "each request was served by a forked child")
            finally:
                httpd.shutdown()
                httpd.server_close()
                t.join(10)
            # The parent's Client is still its own and still works.
            self.assertIs(interface.client, parent_client)
            self.assertEqual(interface.client.health(), "SERVING")
            parent_client.close()
        finally:
            server.close()


if __name__ == "__main__":
    harness.run(__name__)
