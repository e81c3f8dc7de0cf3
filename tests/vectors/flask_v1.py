#!/usr/bin/python3
"""Flask session cookie vectors, made by the real Flask (Debian's python3-flask 2.2 with
itsdangerous 2.1): server/token/flask.{h,cc} must reproduce every cookie byte for byte.

    /usr/bin/python3 tests/vectors/flask_v1.py            # regenerate flask_v1.json
    /usr/bin/python3 tests/vectors/flask_v1.py --check COOKIE SECRET_HEX [--salt S] [--now T]

Each cookie comes from SecureCookieSessionInterface().get_signing_serializer(app).dumps(
session), the exact call in save_session, inside a request context (so Flask's own JSON
provider makes the payload); only the signer's clock is fixed. Non-empty sessions are also
sent through a real request (test client) to check that the Set-Cookie value is the same.
"""
import argparse
import base64
import json
import os
import sys
import zlib

import flask
import itsdangerous
from flask.sessions import SecureCookieSessionInterface
from itsdangerous.serializer import Serializer


def fixed_clock_interface(timestamp: int, salt: str) -> SecureCookieSessionInterface:
    """SecureCookieSessionInterface whose serializer's TimestampSigner reads a fixed clock."""

    class FixedSigner(itsdangerous.TimestampSigner):
        def get_timestamp(self) -> int:
            return timestamp

    class Interface(SecureCookieSessionInterface):
        def get_signing_serializer(self, app):
            s = super().get_signing_serializer(app)
            if s is not None:
                s.signer = FixedSigner  # Serializer.make_signer instantiates this class
            return s

    iface = Interface()
    iface.salt = salt
    return iface


def make_app(secret, timestamp: int, salt: str, ensure_ascii: bool = True) -> flask.Flask:
    app = flask.Flask("flask_v1")
    app.json.ensure_ascii = ensure_ascii  # Flask's default is True (\u escapes)
    app.secret_key = secret
    app.session_interface = fixed_clock_interface(timestamp, salt)
    return app


CASES = [
    # name, secret (str or bytes), salt, timestamp, session dict[, ensure_ascii]
    ("small", "dev-secret", "cookie-session", 1767225600, {"user_id": 42}),
    ("empty-dict", "dev-secret", "cookie-session", 1767225600, {}),
    ("large-repetitive", "another secret key", "cookie-session", 1800000000,
     {"cart": [{"sku": "ABC-123", "qty": 1}] * 60, "user": "alice"}),
    ("unicode", "dev-secret", "cookie-session", 1700000000,
     {"name": "Zoë ☃", "city": "København", "emoji": "\U0001F36A"}),
    # An app with app.json.ensure_ascii = False: raw UTF-8 in the payload.
    ("unicode-utf8", "dev-secret", "cookie-session", 1700000000,
     {"name": "Zoë ☃", "city": "København", "emoji": "\U0001F36A"}, False),
    ("non-default-salt", "dev-secret", "my-app.session", 1767225600, {"user_id": 42}),
    ("bytes-secret-non-ascii", bytes(range(256))[::-7] + "é".encode(), "cookie-session",
     1767225601, {"csrf_token": "0f" * 20, "_fresh": True}),
    ("str-secret-non-ascii", "sécret-ключ", "cookie-session", 1767225602, {"a": [1, 2.5, None]}),
    ("tagged-types", "dev-secret", "cookie-session", 1767225603,
     {"t": (1, 2), "b": b"\x00\xff", "m": flask.Markup("<b>x</b>")}),
    ("small-timestamp", "dev-secret", "cookie-session", 255, {"x": 1}),
    ("timestamp-zero", "dev-secret", "cookie-session", 0, {"x": 1}),
    # zlib output is 18 bytes for both: 1 byte shorter is not enough, 2 bytes is.
    ("compress-saves-1-byte", "dev-secret", "cookie-session", 1767225600, {"k": "a" * 11}),
    ("compress-saves-2-bytes", "dev-secret", "cookie-session", 1767225600, {"k": "a" * 12}),
    ("compressed-high-ratio", "k" * 32, "cookie-session", 1767225600,
     {"log": ["event-%d" % (i % 20) for i in range(400)]}),
]


def b64decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def make_vector(name, secret, salt, timestamp, session, ensure_ascii=True):
    app = make_app(secret, timestamp, salt, ensure_ascii)
    with app.test_request_context():
        s = app.session_interface.get_signing_serializer(app)
        cookie = s.dumps(dict(session))
        # URLSafeSerializerMixin.dump_payload = compress(Serializer.dump_payload(obj)).
        payload = Serializer.dump_payload(s, dict(session))
        assert s.loads(cookie) == session or name == "tagged-types", name

    # Cross-checks: the payload really is what the cookie carries...
    body = cookie.rsplit(".", 2)[0]
    carried = zlib.decompress(b64decode(body[1:])) if body.startswith(".") else b64decode(body)
    assert carried == payload, name
    # ...and a real request sets the same cookie (save_session skips empty sessions).
    if session:
        @app.route("/set")
        def set_session():
            flask.session.update(session)
            return ""

        resp = app.test_client().get("/set")
        set_cookie = resp.headers["Set-Cookie"]
        assert set_cookie.startswith("session=" + cookie + ";"), (name, set_cookie, cookie)

    secret_bytes = secret.encode("utf-8") if isinstance(secret, str) else secret
    return {
        "name": name,
        "secret_hex": secret_bytes.hex(),
        "salt": salt,
        "timestamp": timestamp,
        "payload_hex": payload.hex(),
        "compressed": cookie.startswith("."),
        "cookie": cookie,
    }


def generate() -> None:
    out = [make_vector(*case) for case in CASES]
    assert any(v["compressed"] for v in out) and not all(v["compressed"] for v in out)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "flask_v1.json")
    with open(path, "w") as f:
        json.dump({
            "format": "flask-securecookie",
            "generator": "flask %s, itsdangerous %s, zlib %s" % (
                flask.__version__, itsdangerous.__version__, zlib.ZLIB_RUNTIME_VERSION),
            "vectors": out,
        }, f, indent=1, ensure_ascii=True)
        f.write("\n")
    print(f"wrote {len(out)} vectors to {path}", file=sys.stderr)


def check(cookie: str, secret_hex: str, salt: str, now: int) -> int:
    """Does the real Flask open_session accept COOKIE? Prints the session; exit 0 iff so."""
    app = make_app(bytes.fromhex(secret_hex), now, salt)
    iface = app.session_interface
    with app.test_request_context(headers={"Cookie": "session=" + cookie}):
        # open_session turns BadSignature into a new empty session: call loads() as well
        # for the reason.
        try:
            data = iface.get_signing_serializer(app).loads(
                cookie, max_age=int(app.permanent_session_lifetime.total_seconds()))
        except itsdangerous.BadData as e:
            print(f"REJECTED: {type(e).__name__}: {e}")
            return 1
        sess = iface.open_session(app, flask.request)
        ok = dict(sess) == data and (bool(data) or cookie.split(".")[0] != "")
        print(("ACCEPTED: " if ok else "MISMATCH: ") + json.dumps(dict(sess), default=repr))
        return 0 if ok else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--check", nargs=2, metavar=("COOKIE", "SECRET_HEX"))
    p.add_argument("--salt", default="cookie-session")
    p.add_argument("--now", type=int, default=None,
                   help="clock for the max_age check (default: the cookie's own timestamp)")
    args = p.parse_args()
    if args.check:
        cookie, secret_hex = args.check
        ts_part = cookie.rsplit(".", 2)[1]
        now = args.now if args.now is not None else int.from_bytes(b64decode(ts_part), "big")
        return check(cookie, secret_hex, args.salt, now)
    generate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
