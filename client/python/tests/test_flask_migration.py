#!/usr/bin/python3
"""Migrating a Flask app that has a SECRET_KEY, against the real server binary and real
Flask apps served over HTTP:

A. cookies issued by real Flask with secret S verify in the service once S is imported
   (ImportKey, HMAC_SHA1_FLASK, verify-only): VALID with refresh_recommended, max_age
   honoured, BatchVerify per item; an app switched to SessionTokenInterface keeps those
   users logged in and re-issues their cookies under the native primary key.
B. a fresh keyring (CreateKeyring) whose PRIMARY is an imported Flask secret S2 issues
   cookies that a real Flask app with app.secret_key = S2 accepts (mixed fleets during the
   switch); PromoteKey switches signing back and forth.

Needs ImportKey/CreateKeyring/PromoteKey/BatchVerify: each test is skipped (never failed)
only when the server answers UNIMPLEMENTED for an RPC it needs (capability probe)."""

import datetime
import json
import os
import secrets
import subprocess
import sys
import time
import unittest
import warnings

import grpc
import itsdangerous
from flask.sessions import SecureCookieSessionInterface, session_json_serializer

import harness
import sessiontoken
from sessiontoken import Algorithm, KeyState, Result
from sessiontoken import token as tk
from sessiontoken.flask import SessionTokenInterface

AUDIENCE = "cookie-session"   # Flask's salt
LIFETIME = datetime.timedelta(hours=1)
MAX_AGE = int(LIFETIME.total_seconds())


def flask_cookie(secret, session, timestamp=None):
    """A cookie exactly as Flask's SecureCookieSessionInterface makes it, optionally
    with a fixed signing time (to make old cookies)."""
    app = harness.make_app(secret_key=secret)
    iface = SecureCookieSessionInterface()
    with app.test_request_context():
        s = iface.get_signing_serializer(app)
        if timestamp is not None:
            class FixedSigner(itsdangerous.TimestampSigner):
                def get_timestamp(self):
                    return timestamp
            s.signer = FixedSigner
        return s.dumps(dict(session))


def flask_payload(session):
    app = harness.make_app()
    with app.app_context():
        return session_json_serializer.dumps(dict(session)).encode()


class Migration(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.ServerProcess()
        cls.client = sessiontoken.Client(cls.server.target, timeout=3.0)
        cls.unimplemented = cls.probe(cls.client)
        cls.webs = []

    @classmethod
    def tearDownClass(cls):
        for w in cls.webs:
            w.close()
        cls.client.close()
        cls.server.close()

    @staticmethod
    def probe(c):
        """RPC name -> True when the server answers UNIMPLEMENTED. The probes are calls
        that change nothing (missing keyring / empty name / empty batch)."""
        probes = {
            "ImportKey": lambda: c.import_key(b"probe", "no-such-keyring-probe"),
            "CreateKeyring": lambda: c.create_keyring(""),
            "PromoteKey": lambda: c.promote_key(1, "no-such-keyring-probe"),
            "BatchVerify": lambda: c.batch_verify([]),
        }
        out = {}
        for name, call in probes.items():
            try:
                call()
                out[name] = False
            except sessiontoken.ServiceError as e:
                out[name] = e.code == grpc.StatusCode.UNIMPLEMENTED
        return out

    def need(self, *rpcs):
        missing = [r for r in rpcs if self.unimplemented.get(r)]
        if missing:
            self.skipTest("server answers UNIMPLEMENTED for " + ", ".join(missing))

    def serve(self, app):
        w = harness.FlaskServer(app)
        self.webs.append(w)
        return w

    def assert_secret_not_logged(self, secret: bytes):
        log = self.server.log()
        for form in (secret.decode("utf-8", "replace"), secret.hex()):
            self.assertNotIn(form, log, "imported secret appears in the server log")

    # --- A ---------------------------------------------------------------------------

    def test_a_flask_cookie_verifies_after_import(self):
        self.need("ImportKey", "BatchVerify")
        c = self.client
        secret = "legacy-" + secrets.token_hex(16)     # a str SECRET_KEY, as usual in Flask
        legacy = self.serve(harness.make_app(secret_key=secret))

        # A real Flask login over HTTP issues a Flask cookie.
        b = harness.Browser(legacy.url)
        self.assertEqual(b.get("/login?user=legacy").json(), {"user": "legacy"})
        cookie = b.cookie("session")
        self.assertIsNotNone(cookie)
        self.assertFalse(tk.is_native(cookie))
        hdr = tk.parse_flask_header(cookie)
        self.assertEqual(json.loads(hdr.payload), {"user": "legacy", "_permanent": False})
        self.assertAlmostEqual(hdr.timestamp, time.time(), delta=60)

        # Not yet imported: rejected.
        before = c.verify(cookie, audience=AUDIENCE, max_age=MAX_AGE)
        self.assertNotEqual(before.result, Result.VALID)

        # Step 1 of the migration, as documented: the admin CLI of the package reads the
        # secret from the environment (verify-only import).
        before_keys = c.list_keys()
        primary = before_keys.primary_key_id
        env = dict(os.environ, LEGACY_SECRET=secret, PYTHONPATH=harness.PKG_ROOT)
        out = subprocess.run(
            [sys.executable, "-m", "sessiontoken", f"--server={self.server.target}",
             "import-flask-secret", "--secret-env=LEGACY_SECRET"],
            env=env, capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertNotIn(secret, out.stdout + out.stderr)
        keys = c.list_keys()
        new_ids = {k.key_id for k in keys.keys} - {k.key_id for k in before_keys.keys}
        self.assertEqual(len(new_ids), 1, keys)
        imp_key = keys.key(new_ids.pop())
        self.assertIn(f"imported key {imp_key.key_id} ", out.stdout)
        self.assertEqual(imp_key.algorithm, Algorithm.HMAC_SHA1_FLASK)
        self.assertEqual(imp_key.state, KeyState.ACTIVE)    # verify-only by default
        self.assertEqual(keys.primary_key_id, primary)      # import does not take over
        self.assert_secret_not_logged(secret.encode())

        r = c.verify(cookie, audience=AUDIENCE, max_age=MAX_AGE)
        self.assertEqual(r.result, Result.VALID)
        self.assertTrue(r.refresh_recommended)              # S is not the primary
        self.assertEqual(r.payload, hdr.payload)
        self.assertEqual(r.key_id, imp_key.key_id)
        self.assertEqual(int(r.issued_at.timestamp()), hdr.timestamp)

        # The audience (Flask's salt) is bound; a cookie from another secret is refused.
        self.assertNotEqual(c.verify(cookie, audience="other-salt", max_age=MAX_AGE).result,
                            Result.VALID)
        stranger = flask_cookie("another-secret", {"user": "legacy"})
        self.assertNotEqual(c.verify(stranger, audience=AUDIENCE, max_age=MAX_AGE).result,
                            Result.VALID)

        # max_age: Flask cookies carry only their signing time.
        old = flask_cookie(secret, {"user": "old"}, timestamp=int(time.time()) - 2 * MAX_AGE)
        self.assertEqual(c.verify(old, audience=AUDIENCE, max_age=MAX_AGE).result,
                         Result.EXPIRED)
        self.assertEqual(c.verify(old, audience=AUDIENCE, max_age=3 * MAX_AGE).result,
                         Result.VALID)

        # BatchVerify: one result per item, in order.
        body, ts, sig = cookie.rsplit(".", 2)
        tampered = f"{body}.{ts}.{'A' if sig[0] != 'A' else 'B'}{sig[1:]}"
        native = c.sign(b"n", 60, audience=AUDIENCE).token
        items = c.batch_verify([cookie, tampered, native, old], audience=AUDIENCE,
                               max_age=MAX_AGE)
        self.assertEqual([i.code for i in items], [grpc.StatusCode.OK] * 4)
        self.assertEqual([i.response.result for i in items],
                         [Result.VALID, Result.BAD_SIGNATURE, Result.VALID, Result.EXPIRED])
        self.assertEqual(items[0].response.payload, hdr.payload)
        self.assertEqual([i.response.refresh_recommended for i in items[::2]], [True, False])

        # Step 2 of the migration: the app switches to SessionTokenInterface. The legacy
        # user stays logged in and gets a native cookie from the primary key, once.
        new = self.serve(harness.make_app(SessionTokenInterface(c), lifetime=LIFETIME))
        nb = harness.Browser(new.url)
        nb.set_cookie("session", cookie)
        r = nb.get("/whoami")
        self.assertEqual(r.json(), {"user": "legacy"})
        value, _ = r.set_cookie("session")
        self.assertEqual(tk.parse_native_header(value).key_id, primary)
        r = nb.get("/whoami")
        self.assertEqual(r.json(), {"user": "legacy"})
        self.assertIsNone(r.set_cookie("session"))
        # The interface passes PERMANENT_SESSION_LIFETIME as max_age: too old, logged out.
        ob = harness.Browser(new.url)
        ob.set_cookie("session", old)
        self.assertEqual(ob.get("/whoami").json(), {"user": None})

    # --- B ---------------------------------------------------------------------------

    def test_b_service_signed_cookie_accepted_by_flask(self):
        self.need("CreateKeyring", "ImportKey", "PromoteKey")
        c = self.client
        secret = secrets.token_bytes(24)                    # a bytes SECRET_KEY
        kr = c.create_keyring("flask-compat")
        self.assertEqual(kr.name, "flask-compat")
        native_id = kr.primary_key_id
        self.assertNotEqual(native_id, 0)

        imp = c.import_key(secret, "flask-compat", state=KeyState.PRIMARY)
        self.assertEqual(imp.key.state, KeyState.PRIMARY)
        info = c.get_keyring("flask-compat")
        self.assertEqual(info.primary_key_id, imp.key.key_id)
        self.assertEqual(info.key(native_id).state, KeyState.ACTIVE)
        self.assert_secret_not_logged(secret)

        # The service signs a Flask cookie; real Flask with app.secret_key = S accepts it.
        session = {"user": "from-service", "n": 3}
        signed = c.sign(flask_payload(session), MAX_AGE, audience=AUDIENCE,
                        keyring="flask-compat")
        self.assertFalse(tk.is_native(signed.token), signed.token)
        hdr = tk.parse_flask_header(signed.token)
        self.assertEqual(json.loads(hdr.payload), session)
        self.assertAlmostEqual(hdr.timestamp, time.time(), delta=60)
        self.assertEqual(signed.key_id, imp.key.key_id)

        flask_s = self.serve(harness.make_app(secret_key=secret))
        b = harness.Browser(flask_s.url)
        b.set_cookie("session", signed.token)
        self.assertEqual(b.get("/whoami").json(), {"user": "from-service"})
        other = self.serve(harness.make_app(secret_key=secret + b"x"))
        ob = harness.Browser(other.url)
        ob.set_cookie("session", signed.token)
        self.assertEqual(ob.get("/whoami").json(), {"user": None})

        # Mixed fleet: a frontend on SessionTokenInterface(keyring="flask-compat") and one
        # still on app.secret_key = S accept each other's cookies, without re-issuing.
        new = self.serve(harness.make_app(SessionTokenInterface(c, "flask-compat"),
                                          lifetime=LIFETIME))
        nb = harness.Browser(new.url)
        r = nb.get("/login?user=mixed")
        from_new = r.set_cookie("session")[0]
        self.assertFalse(tk.is_native(from_new))
        b2 = harness.Browser(flask_s.url)
        b2.set_cookie("session", from_new)
        self.assertEqual(b2.get("/whoami").json(), {"user": "mixed"})
        lb = harness.Browser(flask_s.url)
        lb.get("/login?user=legacy-side")
        nb2 = harness.Browser(new.url)
        nb2.set_cookie("session", lb.cookie("session"))
        r = nb2.get("/whoami")
        self.assertEqual(r.json(), {"user": "legacy-side"})
        self.assertIsNone(r.set_cookie("session"))         # S is primary: no refresh

        # Rotate to a native key: new cookies are native, Flask cookies get refreshed;
        # PromoteKey of S makes the service sign Flask cookies again.
        rot = c.rotate("flask-compat", algorithm=Algorithm.HMAC_SHA256)
        self.assertEqual(rot.previous_primary_key_id, imp.key.key_id)
        self.assertEqual(rot.new_key.algorithm, Algorithm.HMAC_SHA256)
        self.assertTrue(tk.is_native(c.sign(b"x", 60, audience=AUDIENCE,
                                            keyring="flask-compat").token))
        v = c.verify(signed.token, audience=AUDIENCE, max_age=MAX_AGE, keyring="flask-compat")
        self.assertEqual((v.result, v.refresh_recommended), (Result.VALID, True))
        promoted = c.promote_key(imp.key.key_id, "flask-compat")
        self.assertEqual(promoted.primary_key_id, imp.key.key_id)
        self.assertEqual(promoted.key(rot.new_key.key_id).state, KeyState.ACTIVE)
        again = c.sign(flask_payload({"user": "again"}), 60, audience=AUDIENCE,
                       keyring="flask-compat")
        b3 = harness.Browser(flask_s.url)
        b3.set_cookie("session", again.token)
        self.assertEqual(b3.get("/whoami").json(), {"user": "again"})

    def test_weak_secret_import_warns_and_random_one_does_not(self):
        """Issue 17 point 9: the tutorial's 'mysecret123' is imported with a warning (returned,
        issued as WeakSecretWarning, printed by the package CLI); 32 random bytes are not."""
        self.need("ImportKey", "CreateKeyring")
        c = self.client
        c.create_keyring("weak-import")
        with self.assertWarns(sessiontoken.WeakSecretWarning) as w:
            weak = c.import_key(b"mysecret123", "weak-import")
        self.assertRegex(weak.warning, r"^weak secret: .*well-known")
        self.assertIn("rotate right after importing", weak.warning)
        self.assertIn("verify window", weak.warning)
        self.assertNotIn("mysecret123", weak.warning)
        self.assertEqual(str(w.warning), weak.warning)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            strong = c.import_key(secrets.token_bytes(32), "weak-import")
        self.assertEqual(strong.warning, "")
        self.assertEqual([x for x in caught if x.category is sessiontoken.WeakSecretWarning], [])
        # The package's admin CLI prints it on stderr (once), never the secret.
        env = dict(os.environ, LEGACY_SECRET="change-me-please", PYTHONPATH=harness.PKG_ROOT)
        out = subprocess.run(
            [sys.executable, "-m", "sessiontoken", f"--server={self.server.target}",
             "--keyring=weak-import", "import-flask-secret", "--secret-env=LEGACY_SECRET"],
            env=env, capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stderr.count("weak secret: "), 1, out.stderr)
        self.assertTrue(out.stderr.startswith("WARNING: weak secret: "), out.stderr)
        self.assertNotIn("change-me-please", out.stdout + out.stderr)

    def test_import_key_requires_bytes(self):
        with self.assertRaises(TypeError):
            self.client.import_key("a str secret")


if __name__ == "__main__":
    harness.run(__name__)
