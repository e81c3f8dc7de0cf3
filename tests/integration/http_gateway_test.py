"""The HTTP/JSON gateway (--http_listen) of the real server binary, over real HTTP:
every route, authentication and per-keyring authorization, bad JSON, wrong types,
oversize bodies, unknown keyrings and routes (each the right status and a JSON error),
tokens crossing between the gateway and gRPC (the CLI), refresh after a rotation, and the
start-up refusals off loopback. Standard library only."""

import base64
import hashlib
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

MAX_MESSAGE_BYTES = 65536


def b64(data):
    return base64.b64encode(data).decode()


class HttpGatewayTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.require_binaries()
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.d = cls.tmp.name
        cls.tokens = {name: os.urandom(16).hex() for name in ("web", "reader", "all", "ops")}
        api = "\n".join(
            f'  api_tokens {{ identity: "{n}" sha256: "{hashlib.sha256(t.encode()).hexdigest()}" }}'
            for n, t in cls.tokens.items())
        for n, t in cls.tokens.items():
            with open(os.path.join(d, f"{n}.token"), "w") as f:
                f.write(t + "\n")
        with open(os.path.join(d, "config.textproto"), "w") as f:
            f.write(f"""
audit_log: "{d}/audit.jsonl"
keyrings {{ name: "default" }}
keyrings {{ name: "other" }}
auth {{
{api}
  rules {{ identity: "token:web" keyrings: "default" roles: [SIGN, VERIFY] }}
  rules {{ identity: "token:reader" keyrings: "default" roles: [VERIFY] }}
  rules {{ identity: "token:all" keyrings: "*" roles: [SIGN, VERIFY] }}
  rules {{ identity: "token:ops" keyrings: "*" roles: [ADMIN] }}
}}
""")
        cls.server = harness.Server(
            os.path.join(d, "data"), harness.write_kek(os.path.join(d, "kek")),
            os.path.join(d, "server.log"),
            [f"--config={d}/config.textproto", "--http_listen=127.0.0.1:0",
             f"--max_message_bytes={MAX_MESSAGE_BYTES}", "--scheduler_interval=0"])
        cls.http_port = cls.server.http_port()

    @classmethod
    def tearDownClass(cls):
        rc = cls.server.stop()
        log = cls.server.log()
        cls.tmp.cleanup()
        # A clean drain (under ASan also: no sanitizer report at exit).
        assert rc == 0, f"server exited {rc}; log:\n{log}"


    def test_plaintext_gateway_starts_without_libmicrohttpd_warnings(self):
        # `make run`'s gateway is plaintext: libmicrohttpd must not be handed HTTPS options
        # (it used to warn "HTTPS option 22 passed to MHD but MHD_USE_TLS not set" at start).
        mhd = [line for line in self.server.log().splitlines()
               if "http gateway:" in line and "MHD" in line]
        self.assertEqual(mhd, [])

    # --- helpers -------------------------------------------------------------------------

    def request(self, method, path, body=None, who="web", content_type="application/json",
                raw=None, conn=None):
        """Returns (status, parsed JSON body, headers)."""
        own = conn is None
        conn = conn or http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=10)
        headers = {}
        if who is not None:
            headers["Authorization"] = f"Bearer {self.tokens.get(who, who)}"
        if content_type is not None:
            headers["Content-Type"] = content_type
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        text = resp.read()
        hdrs = dict(resp.getheaders())
        if own:
            conn.close()
        self.assertEqual(hdrs.get("Content-Type"), "application/json", (resp.status, text))
        try:
            parsed = json.loads(text)
        except ValueError:
            self.fail(f"{method} {path}: body is not JSON: {text!r}")
        return resp.status, parsed, hdrs

    def assert_error(self, status, body, want_status, want_code, contains=""):
        self.assertEqual(status, want_status, body)
        self.assertEqual(set(body), {"code", "message"}, body)
        self.assertEqual(body["code"], want_code, body)
        self.assertIn(contains, body["message"])

    def sign(self, payload=b"user=42", keyring="default", who="web", audience="web", ttl="3600s"):
        status, body, _ = self.request("POST", f"/v1/keyrings/{keyring}:sign",
                                       {"payload": b64(payload), "ttl": ttl, "audience": audience},
                                       who=who)
        self.assertEqual(status, 200, body)
        return body

    def verify(self, token, keyring="default", who="web", audience="web"):
        status, body, _ = self.request("POST", f"/v1/keyrings/{keyring}:verify",
                                       {"token": token, "audience": audience}, who=who)
        self.assertEqual(status, 200, body)
        return body

    def cli(self, who, *args):
        return harness.cli(self.server.target, f"--token_file={self.d}/{who}.token", *args)

    # --- routes --------------------------------------------------------------------------

    def test_healthz(self):
        status, body, _ = self.request("GET", "/healthz", who=None, content_type=None)
        self.assertEqual((status, body), (200, {"status": "SERVING"}))
        status, body, _ = self.request("POST", "/healthz", {}, who=None)
        self.assert_error(status, body, 405, "UNIMPLEMENTED", "GET")

    def test_sign_then_verify(self):
        signed = self.sign(b"\x00binary\xffpayload")
        self.assertEqual(set(signed), {"token", "keyId", "issuedAt", "expiresAt", "tokenId"}, signed)
        self.assertTrue(signed["token"].startswith("st2."), signed)
        self.assertGreater(signed["keyId"], 0)
        self.assertRegex(signed["issuedAt"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        v = self.verify(signed["token"])
        self.assertEqual(v["result"], "VALID", v)
        self.assertEqual(base64.b64decode(v["payload"]), b"\x00binary\xffpayload")
        self.assertEqual(v["keyId"], signed["keyId"])
        self.assertIs(v["refreshRecommended"], False)
        self.assertEqual(v["expiresAt"], signed["expiresAt"])
        # The body may repeat the URL's keyring; proto field names are accepted too.
        status, body, _ = self.request("POST", "/v1/keyrings/default:verify",
                                       {"keyring": "default", "token": signed["token"],
                                        "audience": "web", "max_age": "60s"})
        self.assertEqual((status, body["result"]), (200, "VALID"), body)

    def test_revoke_by_token_and_by_subject(self):
        def signed_for(subject):
            status, body, _ = self.request(
                "POST", "/v1/keyrings/default:sign",
                {"payload": b64(b"user=42"), "ttl": "3600s", "audience": "web",
                 "subject": subject})
            self.assertEqual(status, 200, body)
            return body["token"]
        phone, laptop, other = signed_for("u-1"), signed_for("u-1"), signed_for("u-2")
        status, body, _ = self.request("POST", "/v1/keyrings/default:revoke",
                                       {"token": phone, "audience": "web"})
        self.assertEqual(status, 200, body)
        self.assertEqual(set(body), {"revokedAt", "dropAfter"}, body)
        self.assertEqual(self.verify(phone)["result"], "REVOKED")
        self.assertEqual(self.verify(laptop)["result"], "VALID")
        # Log out everywhere, through the CLI (gRPC) this time.
        rc, out, err = self.cli("web", "revoke", "--subject=u-1")
        self.assertEqual(rc, 0, err)
        self.assertIn("drop_after:", out)
        self.assertEqual(self.verify(laptop)["result"], "REVOKED")
        self.assertEqual(self.verify(other)["result"], "VALID")
        # Admins may revoke too; VERIFY alone may not.
        status, body, _ = self.request("POST", "/v1/keyrings/default:revoke", {"subject": "u-3"},
                                       who="ops")
        self.assertEqual(status, 200, body)
        status, body, _ = self.request("POST", "/v1/keyrings/default:revoke", {"subject": "u-2"},
                                       who="reader")
        self.assert_error(status, body, 403, "PERMISSION_DENIED", "SIGN or ADMIN")
        self.assertEqual(self.verify(other)["result"], "VALID")
        # A token that does not verify, or no target at all: 400, nothing revoked.
        status, body, _ = self.request("POST", "/v1/keyrings/default:revoke",
                                       {"token": other, "audience": "not-web"})
        self.assert_error(status, body, 400, "INVALID_ARGUMENT", "WRONG_AUDIENCE")
        status, body, _ = self.request("POST", "/v1/keyrings/default:revoke", {})
        self.assert_error(status, body, 400, "INVALID_ARGUMENT", "token or subject")
        self.assertEqual(self.verify(other)["result"], "VALID")
        with open(os.path.join(self.d, "audit.jsonl")) as f:
            audit = f.read()
        self.assertIn('"revoke_token"', audit)
        self.assertIn('"revoke_subject"', audit)
        self.assertNotIn(phone, audit)

    def test_invalid_tokens_are_results_not_errors(self):
        signed = self.sign()
        tok = signed["token"]
        tampered = tok[:-2] + ("AA" if not tok.endswith("AA") else "BB")
        self.assertEqual(self.verify(tampered)["result"], "BAD_SIGNATURE")
        self.assertEqual(self.verify(tok, audience="admin")["result"], "WRONG_AUDIENCE")
        v = self.verify("not-a-token")
        self.assertEqual(v["result"], "MALFORMED")
        self.assertEqual(v["payload"], "", v)

    def test_batch_sign_and_verify(self):
        status, body, _ = self.request("POST", "/v1/keyrings/default:batchSign", {"items": [
            {"payload": b64(b"a"), "ttl": "60s", "audience": "web"},
            {"payload": b64(b"b"), "audience": "web"},  # no ttl: this item fails alone
        ]})
        self.assertEqual(status, 200, body)
        items = body["items"]
        self.assertEqual(len(items), 2)
        self.assertEqual(items[0]["code"], 0, items[0])
        self.assertEqual(items[1]["code"], 3, items[1])  # INVALID_ARGUMENT
        self.assertIn("ttl", items[1]["message"])
        good = items[0]["response"]["token"]
        status, body, _ = self.request("POST", "/v1/keyrings/default:batchVerify", {"items": [
            {"token": good, "audience": "web"}, {"token": good[:-1] + "x", "audience": "web"},
        ]})
        self.assertEqual(status, 200, body)
        results = [i["response"]["result"] for i in body["items"]]
        self.assertEqual(results[0], "VALID")
        self.assertIn(results[1], ("BAD_SIGNATURE", "MALFORMED"))
        self.assertEqual(base64.b64decode(body["items"][0]["response"]["payload"]), b"a")

    def test_keep_alive_serves_many_requests_on_one_connection(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=10)
        try:
            for i in range(20):
                status, body, _ = self.request(
                    "POST", "/v1/keyrings/default:sign",
                    {"payload": b64(str(i).encode()), "ttl": "60s"}, conn=conn)
                self.assertEqual(status, 200, body)
        finally:
            conn.close()

    # --- errors --------------------------------------------------------------------------

    def test_unknown_keyring_and_route(self):
        status, body, _ = self.request("POST", "/v1/keyrings/nope:sign",
                                       {"payload": "", "ttl": "60s"}, who="all")
        self.assert_error(status, body, 404, "NOT_FOUND", "nope")
        status, body, _ = self.request("POST", "/v1/keyrings/nope:verify", {"token": "x"},
                                       who="all")
        self.assert_error(status, body, 404, "NOT_FOUND")
        for path in ("/v1/keyrings/default:rotate", "/v1/keyrings/default", "/", "/v2/x:sign",
                     "/v1/keyrings/:sign"):
            status, body, _ = self.request("POST", path, {})
            self.assertIn(status, (400, 404), (path, body))
            self.assertIn(body["code"], ("NOT_FOUND", "INVALID_ARGUMENT"), (path, body))
        status, body, _ = self.request("POST", "/v1/keyrings/bad%20name!:sign",
                                       {"payload": "", "ttl": "60s"}, who="all")
        self.assert_error(status, body, 400, "INVALID_ARGUMENT")
        status, body, _ = self.request("GET", "/v1/keyrings/default:sign")
        self.assert_error(status, body, 405, "UNIMPLEMENTED", "POST")

    def test_authentication(self):
        req = {"payload": b64(b"x"), "ttl": "60s"}
        status, body, _ = self.request("POST", "/v1/keyrings/default:sign", req, who=None)
        self.assert_error(status, body, 401, "UNAUTHENTICATED", "authentication required")
        status, body, _ = self.request("POST", "/v1/keyrings/default:sign", req, who="wrong")
        self.assert_error(status, body, 401, "UNAUTHENTICATED", "not recognised")
        # Unauthenticated callers learn nothing about the body: 401 before 400.
        status, body, _ = self.request("POST", "/v1/keyrings/default:sign", raw=b"{", who=None)
        self.assert_error(status, body, 401, "UNAUTHENTICATED")
        # GET /healthz stays open.
        self.assertEqual(self.request("GET", "/healthz", who=None)[0], 200)

    def test_authorization_per_keyring(self):
        req = {"payload": b64(b"x"), "ttl": "60s"}
        status, body, _ = self.request("POST", "/v1/keyrings/default:sign", req, who="reader")
        self.assert_error(status, body, 403, "PERMISSION_DENIED", "token:reader may not SIGN")
        status, body, _ = self.request("POST", "/v1/keyrings/other:sign", req, who="web")
        self.assert_error(status, body, 403, "PERMISSION_DENIED", "other")
        token = self.sign()["token"]
        self.assertEqual(self.verify(token, who="reader")["result"], "VALID")
        status, body, _ = self.request("POST", "/v1/keyrings/other:verify", {"token": token},
                                       who="web")
        self.assert_error(status, body, 403, "PERMISSION_DENIED")
        # Batch items are authorized one by one, like gRPC's.
        status, body, _ = self.request("POST", "/v1/keyrings/default:batchSign",
                                       {"items": [req]}, who="reader")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["items"][0]["code"], 7, body)  # PERMISSION_DENIED
        # Denials are audited, naming the HTTP caller.
        with open(os.path.join(self.d, "audit.jsonl")) as f:
            audit = f.read()
        self.assertIn('"denied:Sign"', audit)
        self.assertIn("token:reader", audit)

    def test_bad_json_and_wrong_types(self):
        path = "/v1/keyrings/default:sign"
        cases = [
            (b"{not json", "body"),
            (b"", "body"),
            (b"[]", "body"),
            (json.dumps({"payload": b64(b"x"), "ttl": 3600}).encode(), "body"),     # number
            (json.dumps({"payload": 12, "ttl": "60s"}).encode(), "body"),           # not base64
            (json.dumps({"payload": "!!", "ttl": "60s"}).encode(), "body"),
            (json.dumps({"payload": "", "ttl": "60s", "colour": 1}).encode(), "body"),  # unknown
            (json.dumps({"payload": "", "ttl": "soon"}).encode(), "body"),
            (json.dumps({"payload": ""}).encode(), "ttl"),                           # missing
            (json.dumps({"payload": "", "ttl": "0s"}).encode(), "ttl"),
            (json.dumps({"keyring": "other", "payload": "", "ttl": "60s"}).encode(), "keyring"),
        ]
        for raw, field in cases:
            with self.subTest(raw=raw):
                status, body, _ = self.request("POST", path, raw=raw)
                self.assert_error(status, body, 400, "INVALID_ARGUMENT", field)
        status, body, _ = self.request("POST", "/v1/keyrings/default:verify",
                                       raw=b'{"token": "x", "result": "VALID", "maxAge": 5}')
        self.assert_error(status, body, 400, "INVALID_ARGUMENT")
        status, body, _ = self.request("POST", "/v1/keyrings/default:batchVerify",
                                       raw=b'{"items": "x"}')
        self.assert_error(status, body, 400, "INVALID_ARGUMENT")
        status, body, _ = self.request("POST", path, raw=b'{"payload": "", "ttl": "60s"}',
                                       content_type="text/plain")
        self.assert_error(status, body, 415, "INVALID_ARGUMENT", "application/json")

    def test_limits(self):
        # A body over the message limit: 413, not read.
        big = {"payload": b64(os.urandom(MAX_MESSAGE_BYTES)), "ttl": "60s"}
        status, body, _ = self.request("POST", "/v1/keyrings/default:sign", big)
        self.assert_error(status, body, 413, "RESOURCE_EXHAUSTED", str(MAX_MESSAGE_BYTES))
        # Chunked (no Content-Length) is bounded the same way. The unread rest of the body
        # is discarded, never taken as the connection's next request (no smuggling).
        smuggled = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        chunk = b"{" + b" " * MAX_MESSAGE_BYTES + smuggled
        with socket.create_connection(("127.0.0.1", self.http_port), timeout=10) as sock:
            sock.sendall(
                b"POST /v1/keyrings/default:sign HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                + f"Authorization: Bearer {self.tokens['web']}\r\n\r\n".encode()
                + f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n0\r\n\r\n")
            resp = http.client.HTTPResponse(sock)
            resp.begin()
            self.assertEqual(resp.status, 413)
            self.assertEqual(json.loads(resp.read())["code"], "RESOURCE_EXHAUSTED")
            # The connection then serves exactly the next real request.
            sock.sendall(b"POST /v1/keyrings/default:verify HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Content-Type: application/json\r\nContent-Length: 15\r\n"
                         + f"Authorization: Bearer {self.tokens['web']}\r\n\r\n".encode()
                         + b'{"token": "x"}\n')
            resp = http.client.HTTPResponse(sock)
            resp.begin()
            self.assertEqual(resp.status, 200)
            self.assertEqual(json.loads(resp.read())["result"], "MALFORMED")
        # The payload limit is the engine's, as over gRPC.
        status, body, _ = self.request("POST", "/v1/keyrings/default:sign",
                                       {"payload": b64(b"x" * 5000), "ttl": "60s"})
        self.assert_error(status, body, 400, "INVALID_ARGUMENT", "payload")
        rc, _, err = self.cli("web", "sign", "--payload=" + "x" * 5000)
        self.assertNotEqual(rc, 0)
        self.assertIn("INVALID_ARGUMENT", err)
        # The batch limit too.
        status, body, _ = self.request("POST", "/v1/keyrings/default:batchVerify",
                                       {"items": [{"token": "x"}] * 1001})
        self.assert_error(status, body, 400, "INVALID_ARGUMENT", "batch limit")

    def test_garbage_never_crashes_the_server(self):
        """Mutated JSON bodies, odd paths and raw bytes: every answer is a JSON reply with
        a status, and the server keeps serving."""
        rng = random.Random(1234)
        seeds = [b'{"payload": "aGk=", "ttl": "60s", "audience": "web"}',
                 b'{"items": [{"token": "st1.AAAA", "maxAge": "5s"}]}',
                 b'{"token": "\\u0000\\ud800", "audience": 1e999}']
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=10)
        try:
            for i in range(300):
                body = bytearray(rng.choice(seeds))
                for _ in range(rng.randint(1, 8)):
                    body[rng.randrange(len(body))] = rng.randrange(256)
                verb = rng.choice(["sign", "verify", "batchSign", "batchVerify", "x", ""])
                keyring = rng.choice(["default", "other", "", "a%00b", "%ff", "d/../default"])
                status, parsed, _ = self.request("POST", f"/v1/keyrings/{keyring}:{verb}",
                                                 raw=bytes(body), who="all", conn=conn)
                self.assertIn(status, (200, 400, 403, 404), parsed)
        finally:
            conn.close()
        self.assertEqual(self.request("GET", "/healthz", who=None)[0], 200)
        self.assertIsNone(self.server.proc.poll(), "the server exited")

    # --- one core, two doors ---------------------------------------------------------------

    def test_tokens_cross_between_gateway_and_grpc(self):
        signed = self.sign(b"from-http", audience="web")
        rc, out, err = self.cli("web", "--audience=web", "verify", signed["token"])
        self.assertEqual(rc, 0, err)
        self.assertIn("result: VALID", out)
        self.assertIn("payload: from-http", out)
        rc, out, err = self.cli("web", "--audience=web", "sign", "--payload=from-grpc")
        self.assertEqual(rc, 0, err)
        v = self.verify(out.strip(), audience="web")
        self.assertEqual(v["result"], "VALID", v)
        self.assertEqual(base64.b64decode(v["payload"]), b"from-grpc")

    def test_rotation_recommends_refresh(self):
        old = self.sign(b"before", keyring="other", who="all")
        rc, _, err = self.cli("ops", "--keyring=other", "keys", "rotate")
        self.assertEqual(rc, 0, err)
        v = self.verify(old["token"], keyring="other", who="all")
        self.assertEqual(v["result"], "VALID", v)
        self.assertIs(v["refreshRecommended"], True)
        new = self.sign(b"after", keyring="other", who="all")
        self.assertNotEqual(new["keyId"], old["keyId"])
        self.assertIs(self.verify(new["token"], keyring="other", who="all")["refreshRecommended"],
                      False)


class StartupRefusalTest(unittest.TestCase):
    """Off loopback the gateway (plaintext HTTP) is refused unless TLS is terminated in front
    (--insecure), and without authentication unless --allow_unauthenticated."""

    def start(self, d, *args):
        return subprocess.run(
            [harness.SERVER_BIN, "--listen=127.0.0.1:0", f"--data_dir={d}/data",
             f"--kek_file={harness.write_kek(os.path.join(d, 'kek'))}", *args],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30,
            env=harness.child_env())

    def test_refusals(self):
        with tempfile.TemporaryDirectory() as d:
            r = self.start(d, "--http_listen=0.0.0.0:0")
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("plaintext HTTP", r.stderr)
            self.assertNotIn("listening", r.stdout)
            r = self.start(d, "--http_listen=0.0.0.0:0", "--insecure")
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("without authentication", r.stderr)
            r = self.start(d, "--http_listen=nonsense")
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("http_listen", r.stderr)
            self.assertFalse(os.path.exists(os.path.join(d, "data")),
                             "a refused start must not touch the disk")


if __name__ == "__main__":
    unittest.main()
