#!/usr/bin/python3
"""Secret hygiene: no key material ever reaches an output of the real binaries.

Drives a whole session through the real sessiontoken-server and the real CLI (sign, verify,
rotations, stage/promote/disable/enable/destroy, native and Flask imports, keyrings, policies,
the scheduler, batch RPCs, bad inputs of every kind, refused starts with a bad KEK file and a
wrong KEK, a restart with the KEK from the environment, a --dev_kek start; --json and
without) and captures everything those processes print: every server's stdout and stderr,
every CLI stdout and stderr, the audit log (to a file and to stdout), and the files the
server writes in its data directory.

Then it collects every secret: the KEKs (written by this test), the imported secrets (chosen
by this test), every generated key (the keyring files are decrypted with the KEK: AES-256-GCM
as in server/store/sealer.cc, the StoredKeyring protobuf decoded by hand) and the derived
Flask signing keys HMAC-SHA1(secret, salt). It checks that it really found them (the
decrypted keys reproduce the MACs of the tokens the server issued, the KEK fingerprint in
the logs is the one computed here, >= 6 generated keys), and that none of them appears in
any capture: raw (also behind JSON/C/percent escapes), hex in any case, standard and
URL-safe base64 with or without padding, whole or any 16-byte window at each of the 3 base64
alignments.

Needs /usr/bin/python3 with Debian's python3-cryptography (AESGCM); nothing else beyond the
standard library.
"""

import base64
import hashlib
import hmac
import json
import os
import re
import signal
import struct
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

import harness

try:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError:  # reported as a failure in __main__, never a silent skip
    AESGCM = None

WINDOW = 16          # bytes: any run of this many secret bytes counts as a leak
START_TIMEOUT_S = 10.0
FP_LABEL = b"sessiontoken kek fingerprint v1"
FLASK_SALTS = (b"cookie-session", b"", b"web")   # every audience used with Flask keys here


# --------------------------------------------------------------------------------------
# The leak detector.

def _b64_cores(piece, altchars):
    """The base64 characters that encode only bytes of `piece`, for each of the 3 positions
    (mod 3) at which `piece` can start inside a longer base64-encoded string."""
    cores = []
    for k in range(3):
        enc = base64.b64encode(b"\0" * k + piece, altchars).rstrip(b"=")
        start = -(-8 * k // 6)                 # first character without bits of the prefix
        end = 8 * (k + len(piece)) // 6        # last character without bits of a suffix
        cores.append((k, enc[start:end]))
    return cores


_ESCAPE = re.compile(rb"\\(u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|[0-7]{1,3}|[nrtbf\"'\\/])")
_SIMPLE = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f", b'"': b'"',
           b"'": b"'", b"\\": b"\\", b"/": b"/"}


def _unescape(m):
    s = m.group(1)
    if s[:1] == b"u":
        cp = int(s[1:], 16)
        return bytes([cp]) if cp < 256 else chr(cp).encode("utf-8", "surrogatepass")
    if s[:1] == b"x":
        return bytes([int(s[1:], 16)])
    if s[:1] in b"01234567":
        return bytes([int(s, 8) & 0xFF])
    return _SIMPLE[s]


class Scanner:
    """Searches a set of named captures for a set of named secrets in every encoding."""

    SEP = b"\n\0\0<capture boundary>\0\0\n"

    def __init__(self, captures):
        self.captures = captures  # [(label, bytes)]
        hay = self.SEP.join(data for _, data in captures)
        low = hay.lower()
        self.views = {
            # raw bytes, and raw bytes behind JSON (\u00XX), C (\ooo, \xXX) or URL escaping,
            # or re-encoded from Latin-1 to UTF-8
            "raw": [hay, _ESCAPE.sub(_unescape, hay), urllib.parse.unquote_to_bytes(hay),
                    hay.decode("utf-8", "replace").encode("latin-1", "replace")],
            # hex, any case, also with separators (de:ad, de ad, 0xde,0xad, \xde\xad)
            "hex": [low, re.sub(rb"0x|\\x|[\s:,\-]", b"", low)],
            # base64 as printed, and wrapped over several lines
            "b64": [hay, re.sub(rb"\s+|\\n", b"", hay)],
        }

    @staticmethod
    def needles(secret):
        """(encoding name, view kind, needle) for one secret."""
        out = [("raw", "raw", secret), ("hex", "hex", secret.hex().encode())]
        for alt, name in ((None, "base64"), (b"-_", "base64url")):
            enc = base64.b64encode(secret, alt)
            out.append((name + " padded", "b64", enc))
            out.append((name + " unpadded", "b64", enc.rstrip(b"=")))
        pieces = [("whole", secret)]
        if len(secret) > WINDOW:
            pieces += [(f"bytes[{i}:{i + WINDOW}]", secret[i:i + WINDOW])
                       for i in range(len(secret) - WINDOW + 1)]
        for where, piece in pieces:
            if where != "whole":
                out.append((f"raw {where}", "raw", piece))
                out.append((f"hex {where}", "hex", piece.hex().encode()))
            for alt, name in ((None, "base64"), (b"-_", "base64url")):
                for k, core in _b64_cores(piece, alt):
                    if len(core) >= 8:
                        out.append((f"{name} {where} alignment {k}", "b64", core))
        return out

    def find(self, secrets):
        """[(secret name, encoding, capture label, context)] of every secret found."""
        found = []
        for sname, secret in secrets.items():
            for enc, kind, needle in self.needles(secret):
                if any(needle in view for view in self.views[kind]):
                    found.append((sname, enc, self._locate(kind, needle)))
                    break  # one finding per secret is enough to fail
        return found

    def _locate(self, kind, needle):
        labels = []
        for label, data in self.captures:
            single = Scanner([(label, data)])
            for view in single.views[kind]:
                i = view.find(needle)
                if i >= 0:
                    labels.append(f"{label} (at offset {i} of the {kind} view: "
                                  f"...{view[max(0, i - 40):i + len(needle) + 40]!r}...)")
                    break
        return labels or ["(spans captures?)"]


# --------------------------------------------------------------------------------------
# Reading the keyring files: "STFS1\n" | version (8) | "STK2" | fingerprint (8) | revision (8)
# | nonce (12) | AES-256-GCM(StoredKeyring) + tag, AAD = "STK2" + fingerprint + revision +
# "keyring:" + name ("STK1": no revision, neither in the header nor in the AAD).
# High-water marks ("_mark.<keyring>"): "STM1" | fingerprint | nonce | AES-256-GCM(revision),
# AAD = "STM1" + fingerprint + "mark:" + keyring.

def kek_fingerprint(kek):
    return hmac.new(kek, FP_LABEL, hashlib.sha256).digest()[:8]


def _varint(buf, i):
    shift = value = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def proto_fields(buf):
    """Protobuf wire format -> [(field number, wire type, value)]."""
    out, i = [], 0
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 2:
            n, i = _varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wt}")
        if i > len(buf):
            raise ValueError("truncated field")
        out.append((field, wt, v))
    return out


def _expect(wt, want, what):
    if wt != want:
        raise ValueError(f"{what}: wire type {wt}, expected {want}")


def parse_stored_keyring(buf):
    """StoredKeyring{1 name, 2 revision, 3 created_unix, 4 repeated StoredKey, 5 policy};
    StoredKey{1 id, 2 algorithm, 3 state, 4 created_unix, 5 state_changed_unix, 6 material}.
    Unknown fields are skipped; known ones must have their wire type."""
    kr = {"name": "", "revision": 0, "keys": []}
    for f, wt, v in proto_fields(buf):
        if f == 1:
            _expect(wt, 2, "StoredKeyring.name")
            kr["name"] = v.decode()
        elif f == 2:
            _expect(wt, 0, "StoredKeyring.revision")
            kr["revision"] = v
        elif f == 4:
            _expect(wt, 2, "StoredKeyring.keys")
            key = {"id": 0, "algorithm": 0, "state": 0, "material": b""}
            for kf, kwt, kv in proto_fields(v):
                if kf in (1, 2, 3):
                    _expect(kwt, 0, f"StoredKey field {kf}")
                    key[{1: "id", 2: "algorithm", 3: "state"}[kf]] = kv
                elif kf == 6:
                    _expect(kwt, 2, "StoredKey.material")
                    key["material"] = bytes(kv)
            kr["keys"].append(key)
    return kr


def open_keyring_file(kek, name, content):
    magic = content[14:18]
    if content[:6] != b"STFS1\n" or magic not in (b"STK1", b"STK2"):
        raise ValueError(f"{name}: bad header")
    fp = content[18:26]
    if fp != kek_fingerprint(kek):
        raise ValueError(f"{name}: sealed with fingerprint {fp.hex()}, not this KEK's")
    rest, revision = content[26:], b""
    if magic == b"STK2":
        revision, rest = rest[:8], rest[8:]
    nonce, ct = rest[:12], rest[12:]
    plain = AESGCM(kek).decrypt(nonce, ct, magic + fp + revision + b"keyring:" + name.encode())
    kr = parse_stored_keyring(plain)
    if kr["name"] != name:
        raise ValueError(f"{name}: stored name {kr['name']!r}")
    if revision and int.from_bytes(revision, "big") != kr["revision"]:
        raise ValueError(f"{name}: header revision differs from the sealed one")
    return kr


def open_mark_file(kek, keyring, content):
    """The revision in a high-water mark record (it holds nothing else)."""
    if content[:6] != b"STFS1\n" or content[14:18] != b"STM1":
        raise ValueError(f"_mark.{keyring}: bad header")
    fp = content[18:26]
    nonce, ct = content[26:38], content[38:]
    plain = AESGCM(kek).decrypt(nonce, ct, b"STM1" + fp + b"mark:" + keyring.encode())
    if len(plain) != 8:
        raise ValueError(f"_mark.{keyring}: {len(plain)} bytes")
    return int.from_bytes(plain, "big")


ALG_NATIVE, ALG_FLASK = 1, 2
STATE_NAMES = {1: "STAGED", 2: "PRIMARY", 3: "ACTIVE", 4: "DISABLED", 5: "DESTROYED"}


# --------------------------------------------------------------------------------------
# Token checks with recovered keys (prove that the material is the real key).

def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def native_mac_ok(material, token, audience):
    """Either native version: the prefix ("st1." or "st2.") is part of the MAC input."""
    body = b64url_decode(token[4:])
    aud = audience.encode()
    msg = token[:4].encode() + struct.pack(">I", len(aud)) + aud + body[:-32]
    return hmac.compare_digest(hmac.new(material, msg, hashlib.sha256).digest(), body[-32:])


def flask_derive(secret, salt):
    return hmac.new(secret, salt, hashlib.sha1).digest()


def flask_mac_ok(secret, token, salt):
    signed, sig = token.rsplit(".", 1)
    want = hmac.new(flask_derive(secret, salt), signed.encode(), hashlib.sha1).digest()
    return hmac.compare_digest(want, b64url_decode(sig))


def flask_sign(secret, salt, payload, ts):
    """itsdangerous URLSafeTimedSerializer.dumps (uncompressed body)."""
    enc = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=")
    signed = enc(payload) + b"." + enc(ts.to_bytes(8, "big").lstrip(b"\0"))
    sig = hmac.new(flask_derive(secret, salt), signed, hashlib.sha1).digest()
    return (signed + b"." + enc(sig)).decode()


# --------------------------------------------------------------------------------------
# Processes.

class ServerProc:
    """A sessiontoken-server whose stdout and stderr are both captured in full."""

    def __init__(self, args, env_extra=None):
        env = harness.child_env()
        env.update(env_extra or {})
        self.args = args
        self.proc = subprocess.Popen([harness.SERVER_BIN, *args], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.out, self.err = bytearray(), bytearray()
        self._first = threading.Event()
        self._threads = [threading.Thread(target=self._drain, args=(self.proc.stdout, self.out,
                                                                    True), daemon=True),
                         threading.Thread(target=self._drain, args=(self.proc.stderr, self.err,
                                                                    False), daemon=True)]
        for t in self._threads:
            t.start()
        self.target = None

    def _drain(self, pipe, buf, is_stdout):
        for line in iter(pipe.readline, b""):
            buf.extend(line)
            if is_stdout:
                self._first.set()
        if is_stdout:
            self._first.set()

    def wait_listening(self):
        if not self._first.wait(START_TIMEOUT_S):
            raise AssertionError("server printed nothing; stderr:\n" +
                                 self.err.decode("utf-8", "replace"))
        first = bytes(self.out).split(b"\n", 1)[0].decode("utf-8", "replace")
        m = harness.LISTEN_RE.match(first)
        if not m:
            raise AssertionError(f"first line {first!r}; stderr:\n" +
                                 self.err.decode("utf-8", "replace"))
        self.target = f"{m.group(1)}:{m.group(2)}"
        return self

    def scrape_metrics(self):
        """GET /metrics from the listener announced on stdout (--metrics_listen)."""
        m = re.search(rb"metrics on (http://127\.0\.0\.1:\d+/metrics)", bytes(self.out))
        if not m:
            raise AssertionError("no metrics line on stdout: " + bytes(self.out).decode())
        return harness.http_get(m.group(1).decode())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        for t in self._threads:
            t.join(timeout=5)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return rc


class SecretHygieneTest(unittest.TestCase):
    maxDiff = None

    # ---------------------------------------------------------------- the detector itself
    def test_scanner_finds_every_encoding(self):
        """The detector is only worth something if it fires: plant a secret in each supported
        encoding, inside unrelated text, and expect exactly those plants to be found."""
        secret = os.urandom(32)
        other = os.urandom(32)

        def b64_in_blob(data, k, alt=None):
            blob = os.urandom(3 * (1 + k) + k) + data + os.urandom(5)  # starts at k mod 3
            return b"cookie=" + base64.b64encode(blob, alt).rstrip(b"=") + b";"

        plants = {
            "raw": secret,
            "raw window": secret[7:7 + WINDOW],
            "hex": secret.hex().encode(),
            "HEX": secret.hex().upper().encode(),
            "hex window": secret[3:3 + WINDOW + 1].hex().encode(),
            "hex colons": b":".join(b"%02X" % c for c in secret),
            "C hex escape": b"".join(b"\\x%02x" % c for c in secret),
            "C octal escape": b"".join(b"\\%03o" % c for c in secret),
            "JSON escape": json.dumps(secret.decode("latin-1")).encode(),
            "percent": urllib.parse.quote_from_bytes(secret).encode(),
            "base64": base64.b64encode(secret),
            "base64 unpadded": base64.b64encode(secret).rstrip(b"="),
            "base64url": base64.urlsafe_b64encode(secret),
            "base64url unpadded": base64.urlsafe_b64encode(secret).rstrip(b"="),
            "base64 wrapped": b"\n".join(base64.b64encode(secret)[i:i + 10]
                                         for i in range(0, 44, 10)),
        }
        for k in range(3):
            plants[f"embedded base64 align {k}"] = b64_in_blob(secret, k)
            plants[f"embedded base64url align {k}"] = b64_in_blob(secret, k, b"-_")
            plants[f"window in base64url align {k}"] = b64_in_blob(secret[9:9 + WINDOW], k,
                                                                   b"-_")
        for name, plant in plants.items():
            capture = [("noise", os.urandom(300)), ("log", b"INFO something\n" + plant +
                                                   b"\nINFO more\n")]
            found = Scanner(capture).find({"secret": secret, "other": other})
            self.assertEqual([(f[0], f[2][0].split(" ")[0]) for f in found],
                             [("secret", "log")], name)
        self.assertEqual(Scanner([("clean", os.urandom(4000) + secret.hex()[:31].encode())])
                         .find({"secret": secret}), [])

    # ---------------------------------------------------------------- the session
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="sessiontoken-hygiene-")
        self.dir = self._tmp.name
        self.captures = []          # [(label, bytes)]
        self.snapshots = {}         # data_dir -> {(name, content)}
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            if s.proc.poll() is None:
                s.proc.kill()
                s.stop()
        self._tmp.cleanup()

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def capture(self, label, data):
        self.captures.append((label, bytes(data)))

    def snapshot(self, data_dir):
        kdir = os.path.join(data_dir, "keyrings")
        snap = self.snapshots.setdefault(data_dir, set())
        if not os.path.isdir(kdir):
            return
        for n in os.listdir(kdir):
            if n.endswith(".keyring") and ".tmp." not in n:
                try:
                    with open(os.path.join(kdir, n), "rb") as f:
                        snap.add((n[:-len(".keyring")], f.read()))
                except FileNotFoundError:
                    pass

    def start(self, label, args, env_extra=None):
        s = ServerProc(args, env_extra)
        self.servers.append(s)
        s.label = label
        return s.wait_listening()

    def stop(self, s):
        rc = s.stop()
        self.capture(f"server[{s.label}] stdout", s.out)
        self.capture(f"server[{s.label}] stderr", s.err)
        self.assertEqual(rc, 0, s.err.decode("utf-8", "replace"))

    def refused_start(self, label, args, env_extra=None):
        env = harness.child_env()
        env.update(env_extra or {})
        p = subprocess.run([harness.SERVER_BIN, *args], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=START_TIMEOUT_S, env=env)
        self.capture(f"server[{label}] stdout", p.stdout)
        self.capture(f"server[{label}] stderr", p.stderr)
        self.assertNotEqual(p.returncode, 0, label)
        self.assertNotIn(b"listening", p.stdout, label)
        self.assertIn(b"FATAL", p.stderr, label)
        return p.stderr.decode("utf-8", "replace")

    def cli(self, target, *args, stdin=b"", expect=None, data_dir=None):
        """Runs the CLI, captures both streams; returns (rc, stdout text, stderr text)."""
        p = subprocess.run([harness.CLI_BIN, f"--server={target}", *args], input=stdin,
                           capture_output=True, timeout=15, env=harness.child_env())
        label = "cli " + " ".join(a if len(a) <= 60 else a[:57] + "..." for a in args)
        self.capture(label + " stdout", p.stdout)
        self.capture(label + " stderr", p.stderr)
        if expect is not None:
            self.assertEqual(p.returncode, expect,
                             f"{label}: {p.stdout[:300]!r} {p.stderr[:300]!r}")
        self.snapshot(data_dir or self.data)
        return (p.returncode, p.stdout.decode("utf-8", "replace"),
                p.stderr.decode("utf-8", "replace"))

    def cli_json(self, target, *args, stdin=b"", expect=None, data_dir=None):
        rc, out, err = self.cli(target, "--json", *args, stdin=stdin, expect=expect,
                                data_dir=data_dir)
        return rc, (json.loads(out) if out.strip() else None), err

    def test_no_key_material_in_any_output(self):
        t0 = time.monotonic()
        self.data = self.path("data")
        kek = os.urandom(32)
        wrong_kek = os.urandom(32)
        kek_file = self.path("kek")
        with open(kek_file, "w") as f:
            f.write(kek.hex() + "\n")
        os.chmod(kek_file, 0o600)
        audit = self.path("audit.jsonl")
        fp_hex = kek_fingerprint(kek).hex()

        # Secrets the test chooses. The CLI strips one trailing "\n" then "\r": avoid both.
        native_secret = os.urandom(31) + b"\x80"
        flask_text_secret = ("flask-dev-" + base64.urlsafe_b64encode(os.urandom(24))
                             .decode()).encode()
        flask_bin_secret = os.urandom(23) + b"\xfe"
        short_native_secret = os.urandom(14) + b"\x81"   # rejected: < 16 bytes
        native_secret_file = self.path("native.secret")
        with open(native_secret_file, "wb") as f:
            f.write(native_secret)

        # ---- server 1: KEK file, audit log file, scheduler every second; metrics listener,
        # JSON logs and per-call logs on (their output is captured and scanned too).
        s = self.start("main", ["--listen=127.0.0.1:0", f"--data_dir={self.data}",
                                f"--kek_file={kek_file}", f"--audit_log={audit}",
                                "--scheduler_interval=1s", "--metrics_listen=127.0.0.1:0",
                                "--log_format=json", "--log_calls"])
        T = s.target
        self.snapshot(self.data)
        self.cli(T, "health", expect=0)
        self.cli(T, "--json", "health", expect=0)

        signed = []  # (keyring, key_id or None, token, audience) of every issued token

        def sign(keyring="default", audience="web", payload="user=42", json_out=True):
            base = [f"--keyring={keyring}", f"--audience={audience}", "sign",
                    f"--payload={payload}", "--ttl=1h"]
            if json_out:
                _, r, _ = self.cli_json(T, *base, expect=0)
                tok, kid = r["token"], r["key_id"]
            else:
                _, out, _ = self.cli(T, *base, expect=0)
                tok, kid = out.strip(), None
            signed.append((keyring, kid, tok, audience))
            return tok

        def verify(tok, keyring="default", audience="web", expect=0, result="VALID"):
            _, r, _ = self.cli_json(T, f"--keyring={keyring}", f"--audience={audience}",
                                    "verify", tok, expect=expect)
            self.assertEqual(r["result"], result, tok)
            rc, out, _ = self.cli(T, f"--keyring={keyring}", f"--audience={audience}",
                                  "verify", f"--token={tok}", expect=expect)
            self.assertIn(f"result: {result}", out)
            return r

        def states(keyring="default"):
            _, r, _ = self.cli_json(T, f"--keyring={keyring}", "keyrings", "get", expect=0)
            return {k["key_id"]: k["state"] for k in r["keys"]}

        # Sign/verify, then several rotations (json and plain), a token per key.
        tok0 = sign()
        sign(json_out=False)
        verify(tok0)
        _, out, _ = self.cli(T, "--audience=web", "verify", "-", stdin=tok0.encode() + b"\n",
                             expect=0)
        for i in range(4):
            if i % 2:
                self.cli(T, "keys", "rotate", expect=0)
            else:
                self.cli_json(T, "keys", "rotate", expect=0)
            sign(payload=f"after-rotation-{i}")
        r = verify(tok0)
        self.assertTrue(r["refresh_recommended"])
        self.cli(T, "keys", "list", expect=0)
        self.cli_json(T, "keys", "list", expect=0)

        # Stage lead time: rotate stages, promote; then back to immediate rotation.
        self.cli_json(T, "policy", "set", "--stage_lead_time=1h", "--rotation_period=24h",
                      expect=0)
        _, rot, _ = self.cli_json(T, "keys", "rotate", expect=0)
        staged = rot["new_key"]["key_id"]
        self.assertEqual(rot["new_key"]["state"], "STAGED")
        self.cli(T, "keys", "promote", str(staged), expect=0)
        self.cli(T, "policy", "set", "--stage_lead_time=0s", "--rotation_period=0s", expect=0)
        sign(payload="after-promote")

        # Disable / enable / destroy the first key, and what its token does meanwhile.
        first = next(kid for kr, kid, _, _ in signed if kr == "default" and kid)
        self.cli_json(T, "keys", "disable", str(first), expect=0)
        verify(tok0, expect=1, result="KEY_DISABLED")
        self.cli(T, "keys", "enable", str(first), expect=0)
        verify(tok0)
        self.cli(T, "keys", "disable", str(first), expect=0)
        self.cli_json(T, "keys", "destroy", str(first), expect=0)
        verify(tok0, expect=1, result="KEY_DISABLED")
        self.assertEqual(states()[first], "DESTROYED")

        # Imports: a native key from a file, a Flask secret from stdin (as `printf '%s\n'`).
        _, imp, _ = self.cli_json(T, "keys", "import", "--algorithm=native",
                                  f"--secret_file={native_secret_file}", expect=0)
        native_id = imp["key"]["key_id"]
        self.assertEqual(imp["key"]["algorithm"], "HMAC_SHA256")
        _, out, _ = self.cli(T, "keys", "import", "--algorithm=flask",
                             stdin=flask_text_secret + b"\n", expect=0)
        self.assertIn("HMAC_SHA1_FLASK", out)
        self.cli(T, "keys", "promote", str(native_id), expect=0)
        native_tok = sign(payload="signed-by-imported")
        self.assertTrue(native_mac_ok(native_secret, native_tok, "web"))
        # A cookie the old Flask app issued verifies through the imported key.
        cookie = flask_sign(flask_text_secret, b"cookie-session", b'{"user":"alice"}',
                            int(time.time()))
        r = verify(cookie, audience="cookie-session")
        self.assertTrue(r["refresh_recommended"])
        self.cli_json(T, "keys", "rotate", expect=0)   # the import is no longer primary
        sign(payload="after-import")

        # Keyrings: create (native, Flask), list, get; a Flask keyring with a binary secret.
        self.cli_json(T, "keyrings", "create", "shop", expect=0)
        self.cli(T, "keyrings", "create", "legacy", "--algorithm=flask", expect=0)
        self.cli(T, "keyrings", "list", expect=0)
        self.cli_json(T, "keyrings", "list", expect=0)
        for kr in ("shop", "legacy"):
            self.cli(T, f"--keyring={kr}", "keyrings", "get", expect=0)
            self.cli_json(T, f"--keyring={kr}", "keyrings", "get", expect=0)
        shop_tok = sign("shop", payload="cart=3")
        verify(shop_tok, "shop")
        legacy_gen_tok = sign("legacy", audience="cookie-session", payload='{"u":1}')
        verify(legacy_gen_tok, "legacy", audience="cookie-session")
        _, imp, _ = self.cli_json(T, "--keyring=legacy", "keys", "import", "--algorithm=flask",
                                  "--state=primary", stdin=flask_bin_secret, expect=0)
        self.assertEqual(imp["key"]["state"], "PRIMARY")
        legacy_imp_tok = sign("legacy", audience="web", payload='{"u":2}')
        self.assertTrue(flask_mac_ok(flask_bin_secret, legacy_imp_tok, b"web"))
        verify(legacy_imp_tok, "legacy", audience="web")
        self.cli(T, "--keyring=legacy", "keys", "rotate", expect=0)
        sign("legacy", audience="", payload='{"u":3}')
        self.cli_json(T, "--keyring=shop", "policy", "set", "--rotation_period=720h",
                      "--verify_window=768h", "--destroy_after=168h", "--max_token_ttl=744h",
                      expect=0)
        self.cli(T, "--keyring=shop", "policy", "set", "--max_token_ttl=24h", expect=0)

        # The scheduler: a keyring that rotates, disables and destroys every second or so.
        self.cli(T, "keyrings", "create", "sched", "--rotation_period=1s", "--verify_window=1s",
                 "--destroy_after=1s", "--max_token_ttl=1s", expect=0)
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            self.snapshot(self.data)
            with open(audit, "rb") as f:
                if b'"caller":"scheduler","operation":"destroy"' in f.read():
                    break
            time.sleep(0.05)
        self.cli(T, "--keyring=sched", "policy", "set", "--rotation_period=0s",
                 "--verify_window=0s", "--destroy_after=0s", expect=0)
        self.cli(T, "--keyring=sched", "keys", "list", expect=0)

        # Batch RPCs.
        _, out, _ = self.cli(T, "--audience=web", "batch-sign", stdin=b"one\ntwo\nthree\n",
                             expect=0)
        batch_tokens = out.split()
        self.assertEqual(len(batch_tokens), 3)
        signed += [("default", None, tok, "web") for tok in batch_tokens]
        _, r, _ = self.cli_json(T, "--audience=web", "batch-sign", stdin=b"four\nfive\n",
                                expect=0)
        batch_tokens += [i["response"]["token"] for i in r["items"]]
        for i in r["items"]:
            signed.append(("default", i["response"]["key_id"], i["response"]["token"], "web"))
        lines = ("\n".join(batch_tokens + [tok0, "garbage", cookie]) + "\n").encode()
        self.cli(T, "--audience=web", "batch-verify", stdin=lines, expect=1)
        _, r, _ = self.cli_json(T, "--audience=web", "batch-verify", stdin=lines, expect=1)
        self.assertEqual([i["response"]["result"] for i in r["items"]],
                         ["VALID"] * 5 + ["KEY_DISABLED", "MALFORMED", "BAD_SIGNATURE"])
        self.cli(T, "--audience=web", "batch-sign", stdin=b"ok\n" + b"x" * 5000 + b"\n",
                 expect=1)
        self.cli_json(T, "batch-sign", stdin=b"p\n" * 1001, expect=3)
        self.cli_json(T, "--keyring=nope", "batch-verify", stdin=tok0.encode(), expect=1)

        # Bad inputs: malformed and tampered tokens, oversize payloads, unknown keyrings,
        # illegal transitions, bad imports, bad policies, usage errors.
        tampered = tok0[:-5] + ("A" if tok0[-5] != "A" else "B") + tok0[-4:]
        live = signed[-1][2]
        for tok, result in (("garbage", "MALFORMED"), ("st1.", "MALFORMED"),
                            ("st1.AAAA=", "MALFORMED"),
                            ("eyJhIjoxfQ.Z2.AAAAAAAAAAAAAAAAAAAAAAAAAAA", "MALFORMED"),
                            (tampered, "MALFORMED"), (live[:-3] + "AAA", None),
                            (tok0 + "x", "MALFORMED")):
            rc, out, _ = self.cli(T, "--audience=web", "verify", tok)
            self.assertEqual(rc, 1, tok[:80])
            _, r, _ = self.cli_json(T, "--audience=web", "verify", tok, expect=1)
            if result:
                self.assertIn(r["result"], (result, "BAD_SIGNATURE", "KEY_DISABLED"), tok[:80])
        for extra in ([], ["--json"]):  # too long for any format: MALFORMED or a bad request
            self.assertIn(self.cli(T, *extra, "verify", "st1." + "A" * 5000)[0], (1, 3))
        self.assertEqual(verify(live, audience="other", expect=1,
                                result="WRONG_AUDIENCE")["result"], "WRONG_AUDIENCE")
        big = self.path("big.payload")
        with open(big, "wb") as f:
            f.write(b"p" * 4000)
        for args in (["sign", "--payload=" + "x" * 2049], ["sign", f"--payload_file={big}"],
                     ["sign", "--payload=x", "--ttl=0s"], ["sign", "--payload=x", "--ttl=9999h"],
                     ["--audience=" + "a" * 300, "sign", "--payload=x"],
                     ["--audience=" + "a" * 300, "verify", tok0]):
            self.cli(T, *args, expect=3)
            self.cli(T, "--json", *args, expect=3)
        for args in (["sign", "--payload=x"], ["verify", tok0], ["keys", "list"],
                     ["keys", "rotate"], ["keyrings", "get"], ["policy", "set"],
                     ["keys", "disable", "123"]):
            _, _, err = self.cli(T, "--keyring=nope", *args, expect=3)
            self.assertIn("NOT_FOUND", err)
            self.cli(T, "--json", "--keyring=nope", *args, expect=3)
        # Secrets sent with a request that fails must not come back either.
        for extra in ([], ["--json"]):
            self.cli(T, *extra, "--keyring=nope", "keys", "import", "--algorithm=native",
                     f"--secret_file={native_secret_file}", expect=3)
            self.cli(T, *extra, "--keyring=nope", "keys", "import", "--algorithm=flask",
                     stdin=flask_text_secret, expect=3)
            self.cli(T, *extra, "keys", "import", "--algorithm=native",
                     stdin=short_native_secret, expect=3)
            self.cli(T, *extra, "keys", "import", "--algorithm=native", "--state=staged",
                     stdin=b"", expect=3)
            self.cli(T, *extra, "keys", "import", "--algorithm=rsa", stdin=native_secret,
                     expect=2)
            self.cli(T, *extra, "keys", "import", "--algorithm=native", "--state=destroyed",
                     stdin=native_secret, expect=2)
            self.cli(T, *extra, "keys", "import", stdin=flask_text_secret, expect=2)
            self.cli(T, *extra, "keys", "import", "--algorithm=flask",
                     "--secret_file=/nonexistent/secret", expect=2)
        st = states()
        primary = next(k for k, v in st.items() if v == "PRIMARY")
        active = next(k for k, v in st.items() if v == "ACTIVE")
        for args in (["disable", str(primary)], ["destroy", str(primary)],
                     ["destroy", str(active)], ["enable", str(primary)],
                     ["promote", str(first)], ["enable", str(first)],
                     ["disable", "4294967295"], ["promote", "7"]):
            rc, _, err = self.cli(T, "keys", *args)
            self.assertEqual(rc, 3, args)
            self.cli(T, "--json", "keys", *args, expect=3)
        self.cli(T, "keyrings", "create", "default", expect=3)
        self.cli_json(T, "keyrings", "create", "bad/name", expect=3)
        self.cli(T, "policy", "set", "--verify_window=1h", "--max_token_ttl=2h", expect=3)
        self.cli_json(T, "policy", "set", "--stage_lead_time=2h", "--rotation_period=1h",
                      expect=3)
        for args in ([], ["frobnicate"], ["verify"], ["keys", "promote", "abc"],
                     ["keyrings", "create"], ["verify", "a", "b"]):
            self.cli(T, *args, expect=2)
        self.cli(T, "--json", "health", expect=0)
        for kr_name in ("default", "legacy", "shop", "sched"):
            self.cli(T, f"--keyring={kr_name}", "keys", "usage", expect=0)
            self.cli_json(T, f"--keyring={kr_name}", "keys", "usage", expect=0)
        metrics_text = s.scrape_metrics()
        self.capture("metrics[main]", metrics_text)
        self.stop(s)
        self.snapshot(self.data)
        # Metrics and server logs carry no token and no payload either; the JSON log is one
        # object per line.
        main_err_bytes = dict(self.captures)["server[main] stderr"]
        self.assertIn(b"sessiontoken_verify_results_total", metrics_text)
        for _, _, tok, _ in signed:
            self.assertNotIn(tok.encode(), metrics_text)
            self.assertNotIn(tok.encode(), main_err_bytes)
            for part in tok.split("."):
                if len(part) >= 16:
                    self.assertNotIn(part.encode(), metrics_text, tok)
                    self.assertNotIn(part.encode(), main_err_bytes, tok)
        self.assertNotIn(b"user=42", metrics_text)
        self.assertNotIn(b"user=42", main_err_bytes)
        calls = 0
        for line in main_err_bytes.decode("utf-8").splitlines():
            obj = json.loads(line)
            self.assertEqual(sorted(obj), ["fields", "level", "message", "time"], line)
            calls += obj["message"] == "call"
        self.assertGreater(calls, 100)
        with open(audit, "rb") as f:
            audit_bytes = f.read()
        self.capture("audit log (file)", audit_bytes)

        # ---- refused starts: bad KEK files (some almost the KEK), the wrong KEK.
        base = ["--listen=127.0.0.1:0", f"--data_dir={self.data}", f"--audit_log={audit}"]
        bad_files = {
            "missing": None,
            "empty": b"",
            "63 hex chars": kek.hex()[:-1].encode() + b"\n",
            "hex + junk": kek.hex().encode() + b"zz\n",
            "KEK= prefix": b"KEK=" + kek.hex().encode() + b"\n",
            "base64 of 31 bytes": base64.b64encode(kek[:31]) + b"\n",
            "two hex lines": kek.hex().encode() + b"\n" + kek.hex().encode() + b"\n",
            "upper hex + 1": kek.hex().upper().encode() + b"0\n",
        }
        for name, content in bad_files.items():
            p = self.path("bad-kek-" + re.sub(r"\W", "_", name))
            if content is not None:
                with open(p, "wb") as f:
                    f.write(content)
                os.chmod(p, 0o600)  # refused for its content, not its mode
            err = self.refused_start(f"bad kek file: {name}", base + [f"--kek_file={p}"])
            self.assertIn("KEK", err)
            self.assertNotIn("chmod", err)
        # The right KEK in a file group or others may read: refused, with the fix.
        open_file = self.path("kek-0644")
        with open(open_file, "w") as f:
            f.write(kek.hex() + "\n")
        for mode in (0o644, 0o640):
            os.chmod(open_file, mode)
            err = self.refused_start(f"kek file mode {mode:o}", base + [f"--kek_file={open_file}"])
            self.assertIn(f"chmod 600 {open_file}", err)
        wrong_file = self.path("wrong-kek")
        with open(wrong_file, "w") as f:
            f.write(wrong_kek.hex() + "\n")
        os.chmod(wrong_file, 0o600)
        err = self.refused_start("wrong KEK", base + [f"--kek_file={wrong_file}"])
        # Both fingerprints are printed: the stored one is this test's KEK's.
        self.assertIn(fp_hex, err)
        self.assertIn(kek_fingerprint(wrong_kek).hex(), err)
        err = self.refused_start("wrong KEK from env", base,
                                 {"SESSIONTOKEN_KEK": base64.b64encode(wrong_kek).decode()})
        self.assertIn(fp_hex, err)
        self.refused_start("bad KEK in env", base, {"SESSIONTOKEN_KEK": kek.hex()[:-2]})
        self.refused_start("no KEK", base)

        # ---- a KEK file and a KEK in the environment: the file is used, the variable is
        # wiped and unset all the same (issue 17 point 7).
        env_decoy = os.urandom(32)
        s1b = self.start("kek file + env", ["--listen=127.0.0.1:0", f"--data_dir={self.data}",
                                            f"--kek_file={kek_file}"],
                         {"SESSIONTOKEN_KEK": env_decoy.hex()})
        self.cli(s1b.target, "health", expect=0)
        try:
            with open(f"/proc/{s1b.proc.pid}/environ", "rb") as f:
                environ = f.read()
        except PermissionError:   # not root: the server is non-dumpable, environ is private
            environ = None
        if environ is not None:
            self.capture("server[kek file + env] /proc/pid/environ", environ)
            self.assertNotIn(env_decoy.hex().encode(), environ)
            entry = environ.split(b"SESSIONTOKEN_KEK=", 1)[1][:64]
            self.assertEqual(entry, b"\0" * 64)   # wiped in place in the initial block
        self.stop(s1b)

        # ---- server 2: the right KEK from the environment (base64), audit to stdout.
        s2 = self.start("restart, KEK from env", ["--listen=127.0.0.1:0",
                                                  f"--data_dir={self.data}", "--audit_log=-"],
                        {"SESSIONTOKEN_KEK": base64.b64encode(kek).decode()})
        T = s2.target
        verify(native_tok)
        verify(shop_tok, "shop")
        _, rot, _ = self.cli_json(T, "keys", "rotate", expect=0)
        sign(payload="after-restart")
        self.cli(T, "keys", "disable", str(rot["new_key"]["key_id"]), expect=3)
        self.cli(T, "keyrings", "list", expect=0)
        reported = {kr: states(kr) for kr in ("default", "shop", "legacy", "sched")}
        self.stop(s2)
        self.snapshot(self.data)
        self.assertIn(b'"operation":"rotate"', bytes(s2.out))

        # ---- server 3: --dev_kek in a fresh data directory (the server makes the KEK).
        dev_data = self.path("dev-data")
        s3 = self.start("dev kek", ["--listen=127.0.0.1:0", f"--data_dir={dev_data}",
                                    "--dev_kek", "--audit_log=-"])
        T = s3.target
        self.cli(T, "sign", "--payload=dev", expect=0, data_dir=dev_data)
        self.cli_json(T, "keys", "rotate", expect=0, data_dir=dev_data)
        self.cli(T, "keys", "list", expect=0, data_dir=dev_data)
        self.stop(s3)
        self.snapshot(dev_data)
        self.assertIn(b"DEVELOPMENT KEK", bytes(s3.err))
        with open(os.path.join(dev_data, "dev-kek"), "rb") as f:
            dev_kek = bytes.fromhex(f.read().decode().strip())

        # A CLI whose server is gone.
        self.cli(s.target, "--timeout=2s", "health", expect=3)

        # Whatever else the server wrote into its data directories (not the dev KEK file,
        # which is where the server keeps the development KEK on purpose); none of it, nor
        # the audit log, is readable by group or others.
        self.assertEqual(os.stat(audit).st_mode & 0o077, 0, "audit log mode")
        for d in (self.data, dev_data):
            for root, dirs, files in os.walk(d):
                for n in dirs + files:
                    mode = os.stat(os.path.join(root, n)).st_mode
                    self.assertEqual(mode & 0o077, 0, f"{os.path.join(root, n)}: {mode:o}")
                for n in files:
                    if n != "dev-kek":
                        with open(os.path.join(root, n), "rb") as f:
                            self.capture("data file " + os.path.relpath(os.path.join(root, n),
                                                                         self.dir), f.read())

        # ---- every key: decrypt every version of every keyring file seen.
        materials = {}   # (data dir, keyring, key id) -> (algorithm, material)
        final = {}       # (data dir, keyring) -> newest decrypted keyring
        for d, k in ((self.data, kek), (dev_data, dev_kek)):
            for name, content in sorted(self.snapshots[d]):
                self.assertEqual(content[18:26], kek_fingerprint(k), name)
                if name.startswith("_mark."):  # a revision, no key material
                    self.assertGreaterEqual(open_mark_file(k, name[len("_mark."):], content), 1)
                    continue
                kr = open_keyring_file(k, name, content)
                cur = final.get((d, name))
                if cur is None or kr["revision"] > cur["revision"]:
                    final[(d, name)] = kr
                for key in kr["keys"]:
                    if not key["material"]:
                        self.assertEqual(key["state"], 5, f"{name}/{key['id']} has no material")
                        continue
                    prev = materials.setdefault((d, name, key["id"]),
                                                (key["algorithm"], key["material"]))
                    self.assertEqual(prev, (key["algorithm"], key["material"]),
                                     f"{name}/{key['id']} changed material")
        # Destroyed keys are tombstones without material in the newest files.
        for (d, name), kr in final.items():
            for key in kr["keys"]:
                if key["state"] == 5:
                    self.assertEqual(key["material"], b"", f"{name}/{key['id']} destroyed")
        # The decoded files agree with what the server reports.
        by_id = {(kr_name, kid): mat for (d, kr_name, kid), (_, mat) in materials.items()
                 if d == self.data}
        self.assertEqual(by_id[("default", native_id)], native_secret)
        self.assertIn(flask_text_secret, [m for (_, kr_name, _), (a, m) in materials.items()
                                          if kr_name == "default" and a == ALG_FLASK])
        self.assertIn(flask_bin_secret, [m for (_, kr_name, _), (a, m) in materials.items()
                                         if kr_name == "legacy" and a == ALG_FLASK])
        self.assertEqual(sorted(n for d, n in final if d == self.data),
                         ["default", "legacy", "sched", "shop"])
        self.assertEqual(materials[(self.data, "default", native_id)][0], ALG_NATIVE)
        for kr_name, want in reported.items():
            got = {k["id"]: STATE_NAMES[k["state"]] for k in final[(self.data, kr_name)]["keys"]}
            self.assertEqual(got, want, kr_name)
        # Every token the server issued has the MAC of the key the decrypted file holds.
        checked = 0
        for kr_name, kid, tok, aud in signed:
            if tok.startswith(("st1.", "st2.")):
                if kid is None:
                    kid = struct.unpack(">I", b64url_decode(tok[4:])[:4])[0]
                self.assertTrue(native_mac_ok(by_id[(kr_name, kid)], tok, aud), tok)
                checked += 1
            else:
                flask_keys = [m for (d, n, _), (a, m) in materials.items()
                              if d == self.data and n == kr_name and a == ALG_FLASK]
                self.assertTrue(any(flask_mac_ok(m, tok, aud.encode()) for m in flask_keys),
                                tok)
                checked += 1
        self.assertGreaterEqual(checked, 15)

        secrets = {"KEK": kek, "wrong KEK": wrong_kek, "dev KEK": dev_kek,
                   "ignored KEK in env": env_decoy,
                   "imported native secret": native_secret,
                   "imported Flask secret (text)": flask_text_secret,
                   "imported Flask secret (binary)": flask_bin_secret,
                   "rejected short native secret": short_native_secret}
        imported = {native_secret, flask_text_secret, flask_bin_secret}
        generated = 0
        for (d, name, kid), (alg, mat) in sorted(materials.items()):
            where = "dev " if d == dev_data else ""
            if mat not in imported:
                generated += 1
                secrets[f"{where}generated key {name}/{kid}"] = mat
            if alg == ALG_FLASK:
                for salt in FLASK_SALTS:
                    secrets[f"{where}derived Flask key {name}/{kid} salt {salt!r}"] = \
                        flask_derive(mat, salt)
        self.assertGreaterEqual(generated, 6)
        self.assertGreaterEqual(len([n for n in secrets if "sched/" in n]), 2)
        self.assertTrue(any("derived Flask key legacy" in n for n in secrets))

        # The evidence that the logs are the ones of these servers and this KEK.
        main_err = dict(self.captures)["server[main] stderr"]
        self.assertIn(f"KEK fingerprint {fp_hex}".encode(), main_err)
        self.assertIn(f"KEK fingerprint {fp_hex}".encode(),
                      dict(self.captures)["server[restart, KEK from env] stderr"])
        self.assertIn(f"KEK fingerprint {kek_fingerprint(dev_kek).hex()}".encode(),
                      dict(self.captures)["server[dev kek] stderr"])
        self.assertIn(b"scheduler applied", main_err)
        events = [json.loads(line) for line in audit_bytes.splitlines()]
        ops = {e["operation"] for e in events}
        for op in ("rotate", "promote", "disable", "enable", "destroy", "import",
                   "create_keyring", "set_policy"):
            self.assertTrue(any(op in o for o in ops), (op, ops))
        self.assertTrue(any(e["caller"] == "scheduler" for e in events))
        self.assertGreaterEqual(len(self.captures), 300)

        found = Scanner(self.captures).find(secrets)
        if found:
            self.fail("key material in captured output:\n" + "\n".join(
                f"LEAK: {name} as {enc} in:\n    " + "\n    ".join(where)
                for name, enc, where in found))
        elapsed = time.monotonic() - t0
        print(f"\nsecret hygiene: {len(self.captures)} captures "
              f"({sum(len(c) for _, c in self.captures)} bytes), {len(secrets)} secrets "
              f"({generated} generated keys), {checked} token MACs checked, "
              f"{elapsed:.1f}s")


if __name__ == "__main__":
    harness.require_binaries()
    if AESGCM is None:
        raise SystemExit("secret_hygiene_test needs Debian's python3-cryptography "
                         "(cryptography.hazmat.primitives.ciphers.aead.AESGCM) for "
                         "/usr/bin/python3: apt-get install python3-cryptography")
    unittest.main()
