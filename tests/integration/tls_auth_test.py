#!/usr/bin/python3
"""TLS, mTLS identities, bearer tokens and authorization through the real binaries, plus
certificate reload without restart and the refusal to serve plaintext off loopback.
Certificates are made at test time with the openssl CLI (never committed)."""

import hashlib
import json
import os
import subprocess
import tempfile
import time
import unittest

import harness
from harness import cli


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-days", "2", "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out",
            f"{name}.pem", cwd=d)


def make_cert(d, ca, name, san):
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj",
            f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write(f"subjectAltName={san}\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem",
            cwd=d)


class TlsAuthTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.d = cls.tmp.name
        make_ca(d, "ca")
        make_ca(d, "rogue-ca")
        make_cert(d, "ca", "server", "DNS:localhost,IP:127.0.0.1")
        make_cert(d, "ca", "server2", "DNS:localhost,IP:127.0.0.1")
        make_cert(d, "ca", "frontend", "URI:spiffe://test/frontend")
        make_cert(d, "ca", "admin", "URI:spiffe://test/admin")
        make_cert(d, "rogue-ca", "rogue", "URI:spiffe://test/admin")
        # Issue 17 point 8: a certificate from the trusted CA whose DNS SAN equals the API
        # token identity "ci-bot" must not get that token's rights.
        make_cert(d, "ca", "dnsbot", "DNS:ci-bot")
        make_cert(d, "ca", "verifier", "DNS:verifier.internal")
        cls.bot_token = os.urandom(16).hex()
        with open(os.path.join(d, "bot.token"), "w") as f:
            f.write(cls.bot_token + "\n")
        bot_hash = hashlib.sha256(cls.bot_token.encode()).hexdigest()
        # The server reads its certificate from files it may see replaced (reload test).
        for ext in ("pem", "key"):
            with open(os.path.join(d, f"server.{ext}"), "rb") as src, \
                    open(os.path.join(d, f"live.{ext}"), "wb") as dst:
                dst.write(src.read())
        with open(os.path.join(d, "config.textproto"), "w") as f:
            f.write(f"""
tls {{ cert_file: "{d}/live.pem" key_file: "{d}/live.key" client_ca_file: "{d}/ca.pem"
       reload_interval {{ seconds: 1 }} }}
audit_log: "{d}/audit.jsonl"
auth {{
  api_tokens {{ identity: "ci-bot" sha256: "{bot_hash}" }}
  rules {{ identity: "uri:spiffe://test/frontend" keyrings: "default" roles: [SIGN, VERIFY] }}
  rules {{ identity: "spiffe://test/admin" keyrings: "*" roles: [ADMIN] }}
  rules {{ identity: "ci-bot" keyrings: "default" roles: [ADMIN, VERIFY] }}
  rules {{ identity: "dns:verifier.internal" keyrings: "default" roles: [VERIFY] }}
}}
""")
        cls.server = harness.Server(os.path.join(d, "data"),
                                    harness.write_kek(os.path.join(d, "kek")),
                                    os.path.join(d, "server.log"),
                                    [f"--config={d}/config.textproto", "--scheduler_interval=0"])

    @classmethod
    def tearDownClass(cls):
        cls.server.kill()
        cls.tmp.cleanup()

    def call(self, who, *args, stdin=None):
        d = self.d
        flags = [f"--tls_ca={d}/ca.pem", "--tls_server_name=localhost"]
        if who in ("frontend", "admin", "rogue", "dnsbot", "verifier"):
            flags += [f"--tls_cert={d}/{who}.pem", f"--tls_key={d}/{who}.key"]
        if who == "bot":
            flags += [f"--token_file={d}/bot.token", f"--tls_cert={d}/admin.pem",
                      f"--tls_key={d}/admin.key"]
        if who == "plaintext":
            flags = []
        return cli(self.server.target, "--timeout=3s", *flags, *args, stdin=stdin)

    def test_frontend_signs_and_verifies_but_cannot_rotate(self):
        rc, token, err = self.call("frontend", "sign", "--payload=u")
        self.assertEqual(rc, 0, err)
        rc, out, err = self.call("frontend", "verify", token.strip())
        self.assertEqual(rc, 0, err)
        self.assertIn("result: VALID", out)
        rc, _, err = self.call("frontend", "keys", "rotate")
        self.assertEqual(rc, 3)
        self.assertIn("PERMISSION_DENIED", err)
        rc, _, err = self.call("frontend", "--keyring=other", "sign", "--payload=u")
        self.assertEqual(rc, 3)
        self.assertIn("PERMISSION_DENIED", err)

    def test_admin_identity_from_certificate(self):
        self.assertEqual(self.call("frontend", "keys", "rotate")[0], 3)
        rc, out, err = self.call("admin", "keys", "rotate")
        self.assertEqual(rc, 0, err)
        rc, _, err = self.call("admin", "sign", "--payload=u")  # admin is not a signer
        self.assertEqual(rc, 3)
        self.assertIn("PERMISSION_DENIED", err)
        with open(os.path.join(self.d, "audit.jsonl")) as f:
            events = [json.loads(l) for l in f]
        self.assertTrue(any(e["caller"] == "uri:spiffe://test/admin"
                            and e["operation"] == "rotate" and e["outcome"] == "ok"
                            for e in events))
        self.assertTrue(any(e["caller"] == "uri:spiffe://test/frontend"
                            and e["operation"] == "denied:Rotate" for e in events))

    def test_bearer_token_identity(self):
        rc, out, err = self.call("bot", "--json", "keys", "list")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["keyring"], "default")
        rc, _, err = self.call("bot", "sign", "--payload=u")
        self.assertEqual(rc, 3)
        self.assertIn("PERMISSION_DENIED", err)

    def test_identity_kinds_are_separate(self):
        # The bearer token "ci-bot" may list keys; a certificate whose DNS SAN is "ci-bot" may
        # not (it is "dns:ci-bot", not "token:ci-bot").
        self.assertEqual(self.call("bot", "keys", "list")[0], 0)
        rc, _, err = self.call("dnsbot", "keys", "list")
        self.assertEqual(rc, 3, err)
        self.assertIn("PERMISSION_DENIED", err)
        self.assertIn("dns:ci-bot", err)
        rc, _, err = self.call("dnsbot", "verify", "garbage")
        self.assertEqual(rc, 3, err)
        self.assertIn("PERMISSION_DENIED", err)
        # A rule naming a DNS SAN works for that certificate, and only for what it grants.
        rc, out, err = self.call("verifier", "verify", "garbage")
        self.assertEqual(rc, 1, err)          # allowed: the token is just MALFORMED
        self.assertIn("MALFORMED", out)
        rc, _, err = self.call("verifier", "sign", "--payload=u")
        self.assertEqual(rc, 3)
        self.assertIn("PERMISSION_DENIED", err)
        # The rules written without a kind were read as documented, and said so at start.
        log = self.server.log()
        self.assertIn('"spiffe://test/admin" has no kind; read as "uri:spiffe://test/admin"', log)
        self.assertIn('"ci-bot" has no kind; read as "token:ci-bot"', log)

    def test_rule_without_kind_naming_no_token_refuses_to_start(self):
        with tempfile.TemporaryDirectory() as d:
            cfg = os.path.join(d, "cfg.textproto")
            with open(cfg, "w") as f:
                f.write('auth { rules { identity: "shop-host" keyrings: "*" roles: [ADMIN] } }\n')
            p = subprocess.run(
                [harness.SERVER_BIN, "--listen=127.0.0.1:0", f"--data_dir={d}/data",
                 f"--kek_file={harness.write_kek(os.path.join(d, 'kek'))}", f"--config={cfg}"],
                capture_output=True, timeout=20, env=harness.child_env())
            self.assertNotEqual(p.returncode, 0)
            self.assertIn(b'"dns:shop-host"', p.stderr)
            self.assertIn(b'"token:shop-host"', p.stderr)
            self.assertFalse(os.path.exists(os.path.join(d, "data", "keyrings")))

    def test_unauthenticated_and_untrusted_callers_are_refused(self):
        for who in ("plaintext", "none", "rogue"):
            rc, _, err = self.call(who, "sign", "--payload=u")
            self.assertEqual(rc, 3, who)
            self.assertIn("UNAVAILABLE", err, who)  # the TLS handshake itself fails
        # Health is open to any TLS client with a valid certificate.
        rc, out, err = self.call("frontend", "health")
        self.assertEqual((rc, out.strip()), (0, "SERVING"), err)

    def test_certificate_reload_without_restart(self):
        def served_cn():
            p = subprocess.run(
                ["openssl", "s_client", "-connect", self.server.target, "-servername",
                 "localhost", "-cert", f"{self.d}/frontend.pem", "-key", f"{self.d}/frontend.key",
                 "-alpn", "h2"], input=b"", capture_output=True, timeout=10)
            text = p.stdout.decode(errors="replace")
            for line in text.splitlines():
                if line.strip().startswith("subject="):
                    return line.split("CN", 1)[1].strip(" =")
            return text
        self.assertEqual(served_cn(), "server")
        for ext in ("pem", "key"):
            with open(os.path.join(self.d, f"server2.{ext}"), "rb") as src:
                data = src.read()
            tmp = os.path.join(self.d, f"live.{ext}.new")
            with open(tmp, "wb") as dst:
                dst.write(data)
            os.replace(tmp, os.path.join(self.d, f"live.{ext}"))
        deadline = time.time() + 15
        while time.time() < deadline and served_cn() != "server2":
            time.sleep(0.5)
        self.assertEqual(served_cn(), "server2")
        rc, _, err = self.call("frontend", "sign", "--payload=after-reload")
        self.assertEqual(rc, 0, err)
        self.assertIsNone(self.server.proc.poll())  # same process: no restart

    def test_plaintext_off_loopback_is_refused(self):
        with tempfile.TemporaryDirectory() as d:
            p = subprocess.run(
                [harness.SERVER_BIN, "--listen=0.0.0.0:0", f"--data_dir={d}/data",
                 f"--kek_file={harness.write_kek(os.path.join(d, 'kek'))}"],
                capture_output=True, timeout=20, env=harness.child_env())
            self.assertNotEqual(p.returncode, 0)
            self.assertIn(b"without TLS", p.stderr)
            self.assertFalse(os.path.exists(os.path.join(d, "data", "keyrings")))


    def test_unauthenticated_off_loopback_is_refused_before_binding(self):
        # Issue 17 point 1. Plaintext is explicitly allowed (--insecure) but no
        # authentication is configured: refused before anything binds or touches the disk.
        with tempfile.TemporaryDirectory() as d:
            p = subprocess.run(
                [harness.SERVER_BIN, "--listen=0.0.0.0:0", "--insecure", f"--data_dir={d}/data",
                 f"--kek_file={harness.write_kek(os.path.join(d, 'kek'))}"],
                capture_output=True, timeout=20, env=harness.child_env())
            self.assertNotEqual(p.returncode, 0)
            self.assertNotIn(b"listening", p.stdout)
            self.assertIn(b"without authentication", p.stderr)
            self.assertIn(b"--allow_unauthenticated", p.stderr)
            self.assertFalse(os.path.exists(os.path.join(d, "data", "keyrings")))

if __name__ == "__main__":
    harness.require_binaries()
    unittest.main()
