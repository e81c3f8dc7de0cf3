"""PHP end-to-end journey: PHP's built-in web server (php -S) runs client/php/testing/app.php,
whose session_start() goes through SessionToken\\SessionHandler to the real server's HTTP
gateway. Login, the session persists and changes, an unchanged session sets no cookie, a
rotation re-issues the cookie under the new key id, a tampered cookie is rejected and left
alone, objects are refused, logout deletes the cookie, and with the service down the request
fails closed (empty session, cookie untouched, error logged). Cookie values never reach the
log. Standard library only; needs php-cli and php-curl."""

import base64
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402

APP = os.path.normpath(os.path.join(HERE, "..", "testing", "app.php"))
PHP = shutil.which("php")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gateway_verify(port, token, audience="php-e2e"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/v1/keyrings/default:verify",
                 body=json.dumps({"token": token, "audience": audience}),
                 headers={"Content-Type": "application/json"})
    body = json.loads(conn.getresponse().read())
    conn.close()
    return body


class PhpSessionJourney(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.require_binaries()
        if PHP is None:
            raise unittest.SkipTest("php not installed (Debian: php-cli php-curl)")
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        cls.server = harness.Server(os.path.join(d, "data"),
                                    harness.write_kek(os.path.join(d, "kek")),
                                    os.path.join(d, "server.log"),
                                    ["--http_listen=127.0.0.1:0", "--scheduler_interval=0"])
        cls.http_port = cls.server.http_port()
        cls.php_log = os.path.join(d, "php-app.log")
        open(cls.php_log, "w").close()
        env = harness.child_env()
        env["SESSIONTOKEN_GATEWAY"] = f"http://127.0.0.1:{cls.http_port}"
        env["SESSIONTOKEN_LOG"] = cls.php_log
        cls.php_stderr = open(os.path.join(d, "php-server.log"), "wb")
        for _ in range(5):  # a free port may be taken between the probe and php's bind
            cls.php_port = free_port()
            cls.php = subprocess.Popen(
                [PHP, "-d", "display_errors=stderr", "-S", f"127.0.0.1:{cls.php_port}", APP],
                cwd=os.path.dirname(APP), env=env, stdin=subprocess.DEVNULL,
                stdout=cls.php_stderr, stderr=cls.php_stderr)
            if cls._wait_for_php():
                break
            cls.php.kill()
            cls.php.wait()
        else:
            raise RuntimeError("php -S did not start")

    @classmethod
    def _wait_for_php(cls):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if cls.php.poll() is not None:
                return False
            try:
                socket.create_connection(("127.0.0.1", cls.php_port), timeout=1).close()
                return True
            except OSError:
                time.sleep(0.05)
        return False

    @classmethod
    def tearDownClass(cls):
        if cls.php.poll() is None:
            cls.php.terminate()
        cls.php.wait()
        cls.php_stderr.close()
        if cls.server.proc.poll() is None:
            cls.server.stop()
        cls.tmp.cleanup()

    def get(self, path, cookie=None):
        """GET from the PHP app: (JSON body, the session Set-Cookie header or None)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.php_port, timeout=15)
        conn.request("GET", path, headers={"Cookie": f"session={cookie}"} if cookie else {})
        resp = conn.getresponse()
        raw = resp.read()
        cookies = [v for k, v in resp.getheaders()
                   if k.lower() == "set-cookie" and v.startswith("session=")]
        conn.close()
        self.assertEqual(resp.status, 200, raw)
        self.assertLessEqual(len(cookies), 1, cookies)
        return json.loads(raw), (cookies[0] if cookies else None)

    @staticmethod
    def value(set_cookie):
        return set_cookie.split(";", 1)[0].split("=", 1)[1]

    def log(self):
        with open(self.php_log) as f:
            return f.read()

    def test_journey(self):
        seen_tokens = []
        # No cookie, nothing changed: no cookie set.
        body, sc = self.get("/visit")
        self.assertEqual(body, {"user": None, "visits": None})
        self.assertIsNone(sc)

        # Login (session_regenerate_id + $_SESSION): a signed cookie with the attributes.
        body, sc = self.get("/login?user=alice")
        self.assertEqual(body["user"], "alice")
        self.assertIsNotNone(sc, "login must set the session cookie")
        attrs = [a.strip().lower() for a in sc.split(";")[1:]]
        self.assertIn("httponly", attrs)
        self.assertIn("samesite=strict", attrs)
        self.assertIn("path=/", attrs)
        self.assertTrue(any(a.startswith("max-age=") for a in attrs), sc)
        self.assertNotIn("secure", attrs)  # 'auto' over plain HTTP
        cookie = self.value(sc)
        seen_tokens.append(cookie)
        # The cookie is a service token holding the session as JSON (as Flask/Express do).
        v = gateway_verify(self.http_port, cookie)
        self.assertEqual(v["result"], "VALID", v)
        self.assertEqual(json.loads(base64.b64decode(v["payload"])), {"user": "alice", "visits": 0})
        first_key = v["keyId"]

        # The session persists and changes: each change re-signs.
        for n in (1, 2):
            body, sc = self.get("/visit", cookie)
            self.assertEqual(body, {"user": "alice", "visits": n})
            self.assertIsNotNone(sc)
            cookie = self.value(sc)
            seen_tokens.append(cookie)
        # Unchanged: no new cookie, the session is still there.
        body, sc = self.get("/", cookie)
        self.assertEqual(body, {"user": "alice", "visits": 2})
        self.assertIsNone(sc)

        # Rotate: the next response re-issues the cookie under the new primary key.
        rc, _, err = harness.cli(self.server.target, "keys", "rotate")
        self.assertEqual(rc, 0, err)
        body, sc = self.get("/", cookie)
        self.assertEqual(body, {"user": "alice", "visits": 2})
        self.assertIsNotNone(sc, "refresh_recommended must re-issue the cookie")
        rotated = self.value(sc)
        seen_tokens.append(rotated)
        v = gateway_verify(self.http_port, rotated)
        self.assertEqual(v["result"], "VALID")
        self.assertNotEqual(v["keyId"], first_key)
        self.assertIs(v["refreshRecommended"], False)
        body, sc = self.get("/", rotated)
        self.assertEqual(body["user"], "alice")
        self.assertIsNone(sc)
        cookie = rotated

        # Tampered: an empty session, and the cookie is left alone.
        tampered = cookie[:-3] + ("AAA" if not cookie.endswith("AAA") else "BBB")
        body, sc = self.get("/visit", tampered)
        self.assertEqual(body, {"user": None, "visits": None})
        self.assertIsNone(sc)
        self.assertIn("session cookie rejected: BAD_SIGNATURE", self.log())

        # An object in $_SESSION is not JSON data: not saved, logged; the cookie is kept.
        body, sc = self.get("/object", cookie)
        self.assertIsNone(sc)
        self.assertIn("only arrays and scalars", self.log())

        # Logout: the cookie is deleted.
        body, sc = self.get("/logout", cookie)
        self.assertIsNotNone(sc)
        self.assertTrue(sc.startswith("session=deleted;") or sc.startswith("session=;"), sc)
        self.assertIn("expires=thu, 01 jan 1970", sc.lower())

        # Service down: fail closed. The (valid) cookie gives an empty session, is neither
        # replaced nor deleted, and the error is logged.
        self.assertEqual(self.server.stop(), 0)
        body, sc = self.get("/visit", cookie)
        self.assertEqual(body, {"user": None, "visits": None})
        self.assertIsNone(sc)
        self.assertIn("cannot verify the session cookie, using an empty session", self.log())
        # A login while the service is down cannot sign: nothing is set, logged.
        body, sc = self.get("/login?user=mallory", cookie)
        self.assertIsNone(sc)
        self.assertIn("cannot sign the session", self.log())

        # No cookie value ever reached the log.
        log = self.log()
        for t in seen_tokens + [tampered]:
            self.assertNotIn(t, log)
            self.assertNotIn(t.split(".")[-1], log)


if __name__ == "__main__":
    unittest.main()
