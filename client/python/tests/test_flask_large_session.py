"""Large Flask sessions behave as with Flask's own cookies.

Plain Flask compresses a session's JSON into its cookie, so a 3,000-byte session fits far
under the browser's 4 KB cookie limit. On a keyring whose primary key is Flask-format the
service applies the same limit (the compressed cookie, at most 4095 bytes), not the native
raw-payload limit: the cookie it issues is one real Flask loads with the same SECRET_KEY.
"""

import functools
import secrets
import unittest

import flask
from flask.sessions import SecureCookieSessionInterface, session_json_serializer

import harness
import sessiontoken
from sessiontoken import KeyState
from sessiontoken.flask import SessionTokenInterface

KEYRING = "legacy"


def big_session():
    """A cart of ~3,000 bytes of JSON, compressible like real session data."""
    cart = []
    s = {"user": "alice", "cart": cart}
    while len(session_json_serializer.dumps(s)) < 3000:
        cart.append({"sku": "item-%04d" % len(cart), "qty": 1})
    return s


class LargeSession(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.ServerProcess()
        cls.client = sessiontoken.Client(cls.server.target, timeout=5.0)
        cls.secret = secrets.token_urlsafe(32).encode()
        cls.client.create_keyring(KEYRING)
        cls.client.import_key(cls.secret, KEYRING, state=KeyState.PRIMARY)
        cls.webs = []

    @classmethod
    def tearDownClass(cls):
        for w in cls.webs:
            w.close()
        cls.client.close()
        cls.server.close()

    def real_flask_loads(self, cookie):
        app = harness.make_app(secret_key=self.secret.decode())
        serializer = SecureCookieSessionInterface().get_signing_serializer(app)
        return serializer.loads(cookie, max_age=3600)

    def test_signed_by_the_service_and_loaded_by_real_flask(self):
        session = big_session()
        payload = session_json_serializer.dumps(session)
        self.assertGreaterEqual(len(payload), 3000)
        r = self.client.sign(payload, 3600, audience="cookie-session", keyring=KEYRING)
        self.assertLess(len(r.token), 4096)
        self.assertTrue(r.token.startswith("."), "expected a compressed Flask cookie")
        self.assertEqual(self.real_flask_loads(r.token), session)

    def test_through_the_session_interface_over_http(self):
        app = harness.make_app(SessionTokenInterface(
            functools.partial(sessiontoken.Client, self.server.target), KEYRING,
            max_payload_bytes=None))

        @app.route("/fill")
        def fill():
            flask.session.update(big_session())
            return {"ok": True}

        @app.route("/cart")
        def cart():
            return {"items": len(flask.session.get("cart", []))}

        web = harness.FlaskServer(app)
        self.webs.append(web)
        browser = harness.Browser(web.url)
        self.assertEqual(browser.get("/fill").status, 200)
        cookie = browser.cookie("session")
        self.assertIsNotNone(cookie, "no session cookie was issued")
        self.assertLess(len(cookie), 4096)
        want = len(big_session()["cart"])
        self.assertEqual(browser.get("/cart").json(), {"items": want})
        self.assertEqual(self.real_flask_loads(cookie)["cart"], big_session()["cart"])

    def test_an_incompressible_session_is_refused_naming_the_payload(self):
        payload = session_json_serializer.dumps({"blob": secrets.token_urlsafe(3200)})
        with self.assertRaises(sessiontoken.ServiceError) as e:
            self.client.sign(payload, 3600, audience="cookie-session", keyring=KEYRING)
        self.assertEqual(e.exception.code.name, "INVALID_ARGUMENT")
        self.assertIn("payload:", e.exception.details)


if __name__ == "__main__":
    harness.run(__name__)
