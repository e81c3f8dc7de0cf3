#!/usr/bin/python3
"""Issue 11 (revocation) against the real server binary and a real Flask app over HTTP:

* log in as the same user on two "devices" (two cookie jars) and as another user on a third;
  "log out everywhere" on one device: the other device's cookie is refused on its next
  request, the other user's session is untouched, and a new login works;
* logout revokes the current session token: its cookie value, replayed (stolen), is refused;
* the service down during a logout: the cookie is deleted anyway and the view hears the error.
"""

import time
import unittest

import flask
import harness
import sessiontoken
import sessiontoken.flask as stflask
from sessiontoken.flask import SessionTokenInterface

COOKIE = "sid"


def make_app(interface):
    app = harness.make_app(interface, cookie_name=COOKIE)

    @app.route("/logout-here")
    def logout_here():
        try:
            stflask.logout()
        except sessiontoken.ServiceError as e:
            return {"revoked": False, "error": e.code.name}
        return {"revoked": True}

    @app.route("/logout-everywhere")
    def logout_everywhere():
        r = stflask.logout_everywhere()
        return {"revoked_at": r.revoked_at.isoformat()}

    return app


class RevocationJourney(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.ServerProcess()
        cls.client = sessiontoken.Client(cls.server.target, timeout=2.0)
        cls.interface = SessionTokenInterface(cls.client, subject_key="user")
        cls.web = harness.FlaskServer(make_app(cls.interface))

    @classmethod
    def tearDownClass(cls):
        cls.web.close()
        cls.client.close()
        cls.server.close()

    def login(self, user):
        b = harness.Browser(self.web.url)
        self.assertEqual(b.get(f"/login?user={user}").json(), {"user": user})
        self.assertIsNotNone(b.cookie(COOKIE))
        return b

    def whoami(self, b):
        return b.get("/whoami").json()["user"]

    def test_log_out_everywhere(self):
        phone, laptop, other = self.login("alice"), self.login("alice"), self.login("bob")
        laptop_cookie = laptop.cookie(COOKIE)
        self.assertEqual(self.whoami(laptop), "alice")
        # The cookie carries the subject: Verify says whose session it is.
        v = self.client.verify(laptop_cookie, audience="cookie-session")
        self.assertEqual(v.result, sessiontoken.Result.VALID)

        r = phone.get("/logout-everywhere")
        self.assertEqual(r.status, 200, r.body)
        self.assertIsNone(phone.cookie(COOKIE), "the device that logged out keeps no cookie")
        # The other device: refused on its next request (an empty session).
        self.assertIsNone(self.whoami(laptop))
        self.assertEqual(self.client.verify(laptop_cookie, audience="cookie-session").result,
                         sessiontoken.Result.REVOKED)
        self.assertEqual(self.whoami(other), "bob")
        # Tokens issued after the cutoff (whole seconds) are valid: a new login works.
        time.sleep(1.1)
        again = self.login("alice")
        self.assertEqual(self.whoami(again), "alice")

    def test_logout_revokes_the_current_token(self):
        b = self.login("carol")
        stolen = b.cookie(COOKIE)
        r = b.get("/logout-here")
        self.assertEqual(r.json(), {"revoked": True})
        self.assertIsNone(b.cookie(COOKIE))
        thief = harness.Browser(self.web.url)
        thief.set_cookie(COOKIE, stolen)
        self.assertIsNone(self.whoami(thief), "a logged-out cookie must not be accepted")

    def test_logout_with_the_service_down_still_deletes_the_cookie(self):
        server = harness.ServerProcess()
        client = sessiontoken.Client(server.target, timeout=1.0)
        web = harness.FlaskServer(make_app(SessionTokenInterface(client, subject_key="user")))
        try:
            b = harness.Browser(web.url)
            b.get("/login?user=dave")
            self.assertIsNotNone(b.cookie(COOKIE))
            # Verify succeeds, then the service goes away before Revoke.
            orig = client.revoke

            def down(*a, **kw):
                server.stop()
                return orig(*a, **kw)
            client.revoke = down
            with self.assertLogs("sessiontoken.flask", "ERROR"):
                r = b.get("/logout-here")
            self.assertFalse(r.json()["revoked"])
            self.assertIn(r.json()["error"], ("UNAVAILABLE", "DEADLINE_EXCEEDED"))
            self.assertIsNone(b.cookie(COOKIE), "the cookie is deleted even so")
        finally:
            web.close()
            client.close()
            server.close()


if __name__ == "__main__":
    harness.run(__name__)
