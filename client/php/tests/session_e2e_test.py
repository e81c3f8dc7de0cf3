"""PHP end-to-end journey: PHP's built-in web server (php -S) runs client/php/testing/app.php,
whose session_start() goes through SessionToken\\SessionHandler to the real server's HTTP
gateway. Login, the session persists and changes, an unchanged session sets no cookie, a
rotation re-issues the cookie under the new key id, a tampered cookie is rejected and left
alone, objects are refused, logout deletes the cookie, and with the service down the request
fails closed (empty session, cookie untouched, error logged). Cookie values never reach the
log.

PhpRevocation (subjectKey 'user', SessionHandler::logout/logoutEverywhere): two devices of one
user, log out everywhere on one, the other's cookie is refused on its next request; logout
revokes the current cookie (replayed: an empty session); the service down during a logout:
the cookie is deleted anyway and the error is logged. The app reaches the real gateway through
a recording relay here, which checks the Sign and Revoke bodies the PHP client sends and, on
request, stops the real server just before forwarding a revoke. Standard library only; needs
php-cli and php-curl."""

import base64
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402

APP = os.path.normpath(os.path.join(HERE, "..", "testing", "app.php"))
PHP = shutil.which("php")


def gateway_verify(port, token, audience="php-e2e"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/v1/keyrings/default:verify",
                 body=json.dumps({"token": token, "audience": audience}),
                 headers={"Content-Type": "application/json"})
    body = json.loads(conn.getresponse().read())
    conn.close()
    return body


class PhpApp:
    """The PHP app under php -S, its log and HTTP helpers (shared by both test classes)."""

    @classmethod
    def start_service(cls):
        """The real server with its HTTP/JSON gateway, in a temporary directory."""
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

    @classmethod
    def start_php(cls, gateway):
        d = cls.tmp.name
        cls.php_log = os.path.join(d, "php-app.log")
        open(cls.php_log, "w").close()
        env = harness.child_env()
        env["SESSIONTOKEN_GATEWAY"] = gateway
        env["SESSIONTOKEN_LOG"] = cls.php_log
        cls.php_stderr = open(os.path.join(d, "php-server.log"), "wb")
        for _ in range(5):  # a free port may be taken between the probe and php's bind
            cls.php_port = harness.free_port()
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



class PhpSessionJourney(PhpApp, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.start_service()
        cls.start_php(f"http://127.0.0.1:{cls.http_port}")

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


class Relay:
    """A loopback HTTP relay to the real gateway that records each request (path, JSON body);
    with stop_before_revoke set, it stops the real server before forwarding a revoke (the
    forward then fails and the relay closes the connection unanswered)."""

    def __init__(self, gateway_port, server):
        self.requests = []
        self.stop_before_revoke = False
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                relay.requests.append((self.path, json.loads(body)))
                if relay.stop_before_revoke and self.path.endswith(":revoke") and server.proc.poll() is None:
                    server.stop()
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", gateway_port, timeout=10)
                    conn.request("POST", self.path, body=body,
                                 headers={"Content-Type": "application/json"})
                    resp = conn.getresponse()
                    out = resp.read()
                    conn.close()
                except OSError:
                    self.close_connection = True  # no answer: the client sees the service down
                    return
                self.send_response(resp.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def bodies(self, verb):
        return [b for path, b in self.requests if path == f"/v1/keyrings/default:{verb}"]


class PhpRevocation(PhpApp, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.start_service()
        cls.relay = Relay(cls.http_port, cls.server)
        cls.start_php(f"http://127.0.0.1:{cls.relay.port}")

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.relay.close()

    def test_client_revoke_arguments(self):
        # Exactly one of token and subject, checked before anything is sent.
        script = ("require $argv[1]; $c = new SessionToken\\Client($argv[2]);"
                  "foreach ([[], ['token' => 't', 'subject' => 's']] as $a) {"
                  "  try { $c->revoke('default', ...$a); echo \"sent\\n\"; }"
                  "  catch (InvalidArgumentException $e) { echo \"refused\\n\"; } }")
        n = len(self.relay.requests)
        out = subprocess.run([PHP, "-r", script, os.path.join(os.path.dirname(APP), "..", "src", "autoload.php"),
                              f"http://127.0.0.1:{self.relay.port}"], capture_output=True, text=True, timeout=30)
        self.assertEqual(out.stdout, "refused\nrefused\n", out.stderr)
        self.assertEqual(len(self.relay.requests), n)

    def login(self, user):
        body, sc = self.get(f"/login?user={user}")
        self.assertEqual(body["user"], user)
        self.assertIsNotNone(sc)
        # The PHP client sent the session's user as Sign's subject.
        self.assertEqual(self.relay.bodies("sign")[-1]["subject"], user)
        return self.value(sc)

    def test_revocation(self):
        # Log out everywhere: alice on two devices, bob on a third.
        phone, laptop, other = self.login("alice"), self.login("alice"), self.login("bob")
        v = gateway_verify(self.http_port, laptop)
        self.assertEqual((v["result"], v["subject"]), ("VALID", "alice"))
        body, sc = self.get("/logout-everywhere", phone)
        self.assertEqual(body, {"revoked": True})
        self.assertIsNotNone(sc, "the device that logged out keeps no cookie")
        self.assertIn("expires=thu, 01 jan 1970", sc.lower())
        self.assertEqual(self.relay.bodies("revoke")[-1], {"subject": "alice"})
        # The other device: refused on its next request (an empty session, cookie left alone).
        body, sc = self.get("/visit", laptop)
        self.assertEqual(body, {"user": None, "visits": None})
        self.assertIsNone(sc)
        self.assertEqual(gateway_verify(self.http_port, laptop)["result"], "REVOKED")
        self.assertIn("session cookie rejected: REVOKED", self.log())
        self.assertEqual(self.get("/", other)[0]["user"], "bob")
        time.sleep(1.1)  # whole seconds: a token of the cutoff second is revoked
        self.assertEqual(self.get("/", self.login("alice"))[0]["user"], "alice")

        # Logout revokes the current token: the cookie, replayed, gives an empty session.
        stolen = self.login("carol")
        body, sc = self.get("/logout-here", stolen)
        self.assertEqual(body, {"revoked": True})
        self.assertIsNotNone(sc)
        self.assertEqual(self.relay.bodies("revoke")[-1], {"token": stolen, "audience": "php-e2e"})
        self.assertEqual(self.get("/", stolen)[0], {"user": None, "visits": None})
        # Nothing to revoke without a valid cookie; no subject: log out everywhere fails.
        n = len(self.relay.bodies("revoke"))
        self.assertEqual(self.get("/logout-here")[0], {"revoked": False})
        body, sc = self.get("/logout-everywhere")
        self.assertFalse(body["revoked"])
        self.assertIn("the session has no user", body["error"])
        self.assertEqual(len(self.relay.bodies("revoke")), n)

        # The service goes down between Verify and Revoke: the cookie is deleted anyway, the
        # app hears the error, it is logged without the cookie's value.
        dave = self.login("dave")
        self.relay.stop_before_revoke = True
        body, sc = self.get("/logout-here", dave)
        self.assertEqual(body, {"revoked": False, "error": "UNAVAILABLE"})
        self.assertIsNotNone(sc, "the cookie is deleted even so")
        self.assertIn("expires=thu, 01 jan 1970", sc.lower())
        self.assertIn("logout: not revoked (the cookie is deleted anyway)", self.log())
        log = self.log()
        for t in (phone, laptop, stolen, dave):
            self.assertNotIn(t.split(".")[-1][:20], log)


if __name__ == "__main__":
    unittest.main()
