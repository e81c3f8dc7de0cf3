"""The HTTP/JSON gateway over HTTPS and mTLS, through the real server binary: with the gRPC
port's certificate files the gateway serves HTTPS; bearer tokens work over it; with a client
CA, a client certificate is required and verified at the handshake (none, or one from
another CA, gets no HTTP answer at all), its SAN URI / DNS name is the caller's identity for
the per-keyring rules (200 on its keyring, 403 on another); the certificate is re-read when
its files change, without a restart; tokens cross between the HTTPS gateway and gRPC.
Certificates are made at test time with the openssl CLI (never committed). Standard library
only (ssl, http.client)."""

import base64
import hashlib
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from tls_auth_test import make_ca, make_cert  # noqa: E402

# What a client sees when the server refuses its TLS handshake (with TLS 1.3 the client's
# own handshake may complete before the server's alert arrives: then the first read fails).
REFUSED = (ssl.SSLError, ConnectionError, http.client.RemoteDisconnected, socket.timeout)


def b64(data):
    return base64.b64encode(data).decode()


PHP = shutil.which("php")
PHP_AUTOLOAD = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                             "..", "client", "php", "src", "autoload.php"))
# client/php's Client over https: sign then verify; prints JSON (or the error's code).
PHP_SCRIPT = r"""
require $argv[1];
try {
    $c = new SessionToken\Client($argv[2], json_decode($argv[3], true));
    $s = $c->sign('default', 'from-php', 60, 'web');
    $v = $c->verify('default', $s['token'], 'web');
    echo json_encode(['valid' => $v['valid'], 'payload' => $v['payload']]);
} catch (SessionToken\ServiceError $e) {
    echo json_encode(['error' => $e->grpcCode, 'status' => $e->httpStatus]);
}
"""


def write_config(d, client_ca, tokens):
    api = "\n".join(
        f'  api_tokens {{ identity: "{n}" sha256: "{hashlib.sha256(t.encode()).hexdigest()}" }}'
        for n, t in tokens.items())
    ca = f'client_ca_file: "{d}/ca.pem"' if client_ca else ""
    with open(os.path.join(d, "config.textproto"), "w") as f:
        f.write(f"""
tls {{ cert_file: "{d}/live.pem" key_file: "{d}/live.key" {ca}
       reload_interval {{ seconds: 1 }} }}
audit_log: "{d}/audit.jsonl"
keyrings {{ name: "default" }}
keyrings {{ name: "other" }}
auth {{
{api}
  rules {{ identity: "token:web" keyrings: "default" roles: [SIGN, VERIFY] }}
  rules {{ identity: "token:ops" keyrings: "*" roles: [ADMIN] }}
  rules {{ identity: "uri:spiffe://test/frontend" keyrings: "default" roles: [SIGN, VERIFY] }}
  rules {{ identity: "dns:verifier.internal" keyrings: "default" roles: [VERIFY] }}
}}
""")


class GatewayTlsBase(unittest.TestCase):
    CLIENT_CA = False

    @classmethod
    def setUpClass(cls):
        harness.require_binaries()
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.d = cls.tmp.name
        make_ca(d, "ca")
        make_ca(d, "rogue-ca")
        make_cert(d, "ca", "server", "DNS:localhost,IP:127.0.0.1")
        make_cert(d, "ca", "server2", "DNS:localhost,IP:127.0.0.1")
        make_cert(d, "ca", "frontend", "URI:spiffe://test/frontend,DNS:frontend.internal")
        make_cert(d, "ca", "verifier", "DNS:verifier.internal")
        make_cert(d, "rogue-ca", "rogue", "URI:spiffe://test/frontend")
        for ext in ("pem", "key"):
            shutil.copyfile(os.path.join(d, f"server.{ext}"), os.path.join(d, f"live.{ext}"))
        cls.tokens = {name: os.urandom(16).hex() for name in ("web", "ops")}
        for n, t in cls.tokens.items():
            with open(os.path.join(d, f"{n}.token"), "w") as f:
                f.write(t + "\n")
        write_config(d, cls.CLIENT_CA, cls.tokens)
        cls.server = harness.Server(
            os.path.join(d, "data"), harness.write_kek(os.path.join(d, "kek")),
            os.path.join(d, "server.log"),
            [f"--config={d}/config.textproto", "--http_listen=127.0.0.1:0",
             "--scheduler_interval=0"])
        cls.http_port = cls.server.http_port()

    @classmethod
    def tearDownClass(cls):
        rc = cls.server.stop()
        log = cls.server.log()
        cls.tmp.cleanup()
        assert rc == 0, f"server exited {rc}; log:\n{log}"

    def context(self, cert=None, ca="ca"):
        ctx = ssl.create_default_context(cafile=os.path.join(self.d, f"{ca}.pem"))
        if cert is not None:
            ctx.load_cert_chain(os.path.join(self.d, f"{cert}.pem"),
                                os.path.join(self.d, f"{cert}.key"))
        return ctx

    def request(self, method, path, body=None, token=None, cert=None):
        """Returns (status, parsed JSON body) over HTTPS; raises what the TLS layer raises."""
        conn = http.client.HTTPSConnection("127.0.0.1", self.http_port, timeout=10,
                                           context=self.context(cert))
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {self.tokens.get(token, token)}"
        try:
            conn.request(method, path, body=None if body is None else json.dumps(body).encode(),
                         headers=headers)
            resp = conn.getresponse()
            text = resp.read()
        finally:
            conn.close()
        self.assertEqual(resp.getheader("Content-Type"), "application/json", text)
        return resp.status, json.loads(text)

    def sign(self, keyring="default", payload=b"user=42", **who):
        return self.request("POST", f"/v1/keyrings/{keyring}:sign",
                            {"payload": b64(payload), "ttl": "3600s", "audience": "web"}, **who)

    def verify(self, token_value, keyring="default", **who):
        return self.request("POST", f"/v1/keyrings/{keyring}:verify",
                            {"token": token_value, "audience": "web"}, **who)

    def php(self, **options):
        """client/php's Client against the gateway over https (skipped without php)."""
        if PHP is None:
            self.skipTest("php not installed (Debian: php-cli php-curl)")
        options = {k: (os.path.join(self.d, v) if k.endswith("File") else v)
                   for k, v in options.items()}
        r = subprocess.run([PHP, "-r", PHP_SCRIPT, PHP_AUTOLOAD,
                            f"https://localhost:{self.http_port}", json.dumps(options)],
                           capture_output=True, text=True, timeout=30,
                           env=harness.child_env())
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def cli(self, *args, cert=None, token=None):
        flags = [f"--tls_ca={self.d}/ca.pem", "--tls_server_name=localhost", "--audience=web"]
        if cert is not None:
            flags += [f"--tls_cert={self.d}/{cert}.pem", f"--tls_key={self.d}/{cert}.key"]
        if token is not None:
            flags += [f"--token_file={self.d}/{token}.token"]
        return harness.cli(self.server.target, "--timeout=5s", *flags, *args)


class HttpsGatewayTest(GatewayTlsBase):
    """TLS without client certificates: HTTPS with the gRPC port's certificate, bearer
    tokens for identity."""

    def test_sign_and_verify_over_https_with_a_bearer_token(self):
        status, signed = self.sign(token="web")
        self.assertEqual(status, 200, signed)
        status, v = self.verify(signed["token"], token="web")
        self.assertEqual(status, 200, v)
        self.assertEqual(v["result"], "VALID", v)
        self.assertEqual(base64.b64decode(v["payload"]), b"user=42")
        self.assertEqual(self.sign(token="nope")[0], 401)
        self.assertEqual(self.sign(keyring="other", token="web")[0], 403)
        self.assertEqual(self.request("GET", "/healthz"), (200, {"status": "SERVING"}))

    def test_the_certificate_is_the_grpc_ports_and_plaintext_gets_no_answer(self):
        with socket.create_connection(("127.0.0.1", self.http_port), timeout=10) as raw:
            with self.context().wrap_socket(raw, server_hostname="localhost") as tls:
                served = tls.getpeercert(binary_form=True)
        with open(os.path.join(self.d, "server.pem")) as f:
            self.assertEqual(served, ssl.PEM_cert_to_DER_cert(f.read()))
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=10)
        with self.assertRaises((http.client.HTTPException, ConnectionError, socket.timeout)):
            conn.request("GET", "/healthz")
            resp = conn.getresponse()
            resp.read()
            self.fail(f"plaintext HTTP got an answer: {resp.status}")
        conn.close()

    def test_tokens_cross_between_https_gateway_and_grpc(self):
        _, signed = self.sign(payload=b"from-https", token="web")
        rc, out, err = self.cli("verify", signed["token"], token="web")
        self.assertEqual(rc, 0, err)
        self.assertIn("result: VALID", out)
        self.assertIn("payload: from-https", out)
        rc, out, err = self.cli("sign", "--payload=from-grpc", token="web")
        self.assertEqual(rc, 0, err)
        status, v = self.verify(out.strip(), token="web")
        self.assertEqual((status, v["result"]), (200, "VALID"), v)
        self.assertEqual(base64.b64decode(v["payload"]), b"from-grpc")


    def test_php_client_over_https_with_a_ca_file(self):
        self.assertEqual(self.php(caFile="ca.pem", token=self.tokens["web"]),
                         {"valid": True, "payload": "from-php"})
        # Another CA's bundle: the server is not trusted, no call is made.
        self.assertEqual(self.php(caFile="rogue-ca.pem", token=self.tokens["web"]),
                         {"error": "UNAVAILABLE", "status": 0})


class MtlsGatewayTest(GatewayTlsBase):
    """TLS with a client CA: client certificates required and verified; their SANs are the
    identities of the rules, as on the gRPC port."""
    CLIENT_CA = True

    def test_certificate_uri_identity_signs_on_its_keyring_only(self):
        status, signed = self.sign(cert="frontend")
        self.assertEqual(status, 200, signed)
        status, v = self.verify(signed["token"], cert="frontend")
        self.assertEqual((status, v["result"]), (200, "VALID"), v)
        status, err = self.sign(keyring="other", cert="frontend")
        self.assertEqual(status, 403, err)
        self.assertEqual(err["code"], "PERMISSION_DENIED")
        self.assertIn("uri:spiffe://test/frontend", err["message"])
        with open(os.path.join(self.d, "audit.jsonl")) as f:
            events = [json.loads(line) for line in f]
        self.assertTrue(any(e["caller"] == "uri:spiffe://test/frontend"
                            and e["operation"] == "denied:Sign" and e["keyring"] == "other"
                            for e in events), events)

    def test_certificate_dns_identity(self):
        _, signed = self.sign(cert="frontend")
        status, v = self.verify(signed["token"], cert="verifier")
        self.assertEqual((status, v["result"]), (200, "VALID"), v)
        status, err = self.sign(cert="verifier")  # VERIFY only
        self.assertEqual(status, 403, err)
        self.assertIn("dns:verifier.internal", err["message"])

    def test_bearer_token_over_mtls_takes_precedence(self):
        # As on the gRPC port: a presented token is the identity, not the certificate's SAN.
        status, _ = self.sign(keyring="other", cert="frontend", token="web")
        self.assertEqual(status, 403)
        status, err = self.sign(cert="frontend", token="ops")
        self.assertEqual(status, 403, err)
        self.assertIn("token:ops", err["message"])
        self.assertEqual(self.sign(cert="verifier", token="web")[0], 200)
        self.assertEqual(self.sign(cert="frontend", token="wrong")[0], 401)

    def test_no_certificate_or_another_cas_is_refused_at_the_handshake(self):
        for cert in (None, "rogue"):
            with self.subTest(cert=cert):
                with self.assertRaises(REFUSED):
                    self.sign(cert=cert, token="web")
        with self.assertRaises(REFUSED):
            self.request("GET", "/healthz")
        self.assertIn("http gateway: TLS handshake failed", self.server.log())
        # ...and the server keeps serving.
        self.assertEqual(self.sign(cert="frontend")[0], 200)

    def test_tokens_cross_between_https_gateway_and_grpc(self):
        _, signed = self.sign(payload=b"from-https", cert="frontend")
        rc, out, err = self.cli("verify", signed["token"], cert="frontend")
        self.assertEqual(rc, 0, err)
        self.assertIn("result: VALID", out)
        rc, out, err = self.cli("sign", "--payload=from-grpc", cert="frontend")
        self.assertEqual(rc, 0, err)
        status, v = self.verify(out.strip(), cert="frontend")
        self.assertEqual((status, v["result"]), (200, "VALID"), v)
        self.assertEqual(base64.b64decode(v["payload"]), b"from-grpc")

    def test_php_client_with_a_client_certificate(self):
        self.assertEqual(self.php(caFile="ca.pem", certFile="frontend.pem",
                                  keyFile="frontend.key"),
                         {"valid": True, "payload": "from-php"})
        self.assertEqual(self.php(caFile="ca.pem", certFile="verifier.pem",
                                  keyFile="verifier.key"),
                         {"error": "PERMISSION_DENIED", "status": 403})
        self.assertEqual(self.php(caFile="ca.pem", token=self.tokens["web"])["error"],
                         "UNAVAILABLE")  # no client certificate: refused at the handshake

    def served_certificate(self):
        with socket.create_connection(("127.0.0.1", self.http_port), timeout=10) as raw:
            with self.context("frontend").wrap_socket(raw, server_hostname="localhost") as tls:
                return tls.getpeercert(binary_form=True)

    def test_certificate_reload_without_restart(self):
        pem = {}
        for name in ("server", "server2"):
            with open(os.path.join(self.d, f"{name}.pem")) as f:
                pem[name] = ssl.PEM_cert_to_DER_cert(f.read())
        self.assertEqual(self.served_certificate(), pem["server"])
        try:
            for ext in ("pem", "key"):  # replaced as a secret mount would: rename into place
                shutil.copyfile(os.path.join(self.d, f"server2.{ext}"),
                                os.path.join(self.d, f"next.{ext}"))
                os.replace(os.path.join(self.d, f"next.{ext}"),
                           os.path.join(self.d, f"live.{ext}"))
            deadline = time.monotonic() + 15
            while self.served_certificate() != pem["server2"]:
                self.assertLess(time.monotonic(), deadline, "the new certificate is not served")
                time.sleep(0.3)
            self.assertEqual(self.sign(cert="frontend")[0], 200)
            self.assertIsNone(self.server.proc.poll(), "the server restarted")
            self.assertIn("TLS certificate reloaded", self.server.log())
        finally:
            for ext in ("pem", "key"):
                shutil.copyfile(os.path.join(self.d, f"server.{ext}"),
                                os.path.join(self.d, f"live.{ext}"))


if __name__ == "__main__":
    unittest.main()
