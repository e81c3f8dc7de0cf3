#!/usr/bin/python3
"""KEK rotation and backups through the real binaries (issue 14), following the runbooks of
docs/operations.md step by step:

* one server on the file store: the KEK rotated under continuous Sign/Verify load (new KEK
  as current + old as previous, SIGHUP; `sessiontoken keys rewrap`; old KEK dropped, SIGHUP):
  0 failed calls; afterwards every stored record is sealed with the new KEK, a server given
  only the old KEK refuses to start naming the fingerprint it needs (and changes nothing),
  and the new KEK alone serves every token issued before;
* 3 replicas on etcd: the same, replica by replica (new + old on every replica, rewrap, new
  only), load balanced over the replicas by the Python client; a 4th replica with only the
  old KEK refuses to start;
* backup (`sessiontoken backup`), wipe, restore (`sessiontoken-restore`) into a fresh data
  dir and into a fresh etcd: every token issued before the backup verifies; a corrupted
  backup is refused and nothing is written; an old backup over newer keyrings is refused
  without --overwrite and, with it, says what comes back;
* secret hygiene: neither KEK appears in any log, CLI output, audit line or backup file.

Prints the rotation's duration and call counts (the figures docs/operations.md quotes)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "client", "python"))

import harness  # noqa: E402
from harness import cli, cli_json, free_port  # noqa: E402
from secret_hygiene_test import Scanner  # noqa: E402

ETCD_BIN = os.environ.get("ETCD_BIN", "/usr/bin/etcd")
RESTORE_BIN = os.environ.get("SESSIONTOKEN_RESTORE", "")
STEADY = 2.0  # seconds of load before the first step and after the last
PDEATHSIG = ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []


def wait_for(what, predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def write_key(path, key):
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex() + "\n")
    os.replace(path + ".tmp", path)
    return path


def read(path):
    with open(path, "rb") as f:
        return f.read()


def fingerprint(kek):
    import hashlib
    import hmac
    return hmac.new(kek, b"sessiontoken kek fingerprint v1", hashlib.sha256).digest()[:8].hex()


def file_store_fingerprints(data_dir):
    """Record name -> KEK fingerprint of every record of a file store."""
    out = {}
    d = os.path.join(data_dir, "keyrings")
    for n in os.listdir(d):
        if n.endswith(".keyring"):
            with open(os.path.join(d, n), "rb") as f:
                out[n[:-len(".keyring")]] = f.read()[18:26].hex()
    return out


class Load:
    """Threads signing and verifying through the Python client (its service config: round
    robin over every address of the target, UNAVAILABLE retried) until stopped."""

    def __init__(self, target, keyring="default", threads=4):
        import sessiontoken
        self.client = sessiontoken.Client(target, keyring=keyring, timeout=5)
        self.Result = sessiontoken.Result
        self.ok = self.failed = 0
        self.errors = []
        self.tokens = []
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(threads)]
        for t in self.threads:
            t.start()
        wait_for("the load to run", lambda: self.ok >= 20 or self.errors[:1] and
                 self.fail_fast(self.errors[0]))

    @staticmethod
    def fail_fast(error):
        raise AssertionError(f"the load fails: {error}")

    def run(self, i):
        n = 0
        while not self.stop_flag.is_set():
            n += 1
            try:
                tok = self.client.sign(f"session {i}-{n}", 600).token
                res = self.client.verify(tok).result
                good = res == self.Result.VALID
                err = None if good else f"verify: {res.name}"
            except Exception as e:  # noqa: BLE001 - every failure is counted
                good, err, tok = False, repr(e)[:300], None
            with self.lock:
                if good:
                    self.ok += 1
                    if n % 50 == 1:
                        self.tokens.append(tok)
                else:
                    self.failed += 1
                    self.errors.append(err)

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(30)
        self.client.close()
        return self.ok, self.failed


class Captures:
    """Everything the processes printed, and the files they wrote, for the hygiene check."""

    def __init__(self):
        self.items = []

    def add(self, label, data):
        self.items.append((label, data if isinstance(data, bytes) else data.encode()))

    def add_file(self, label, path):
        with open(path, "rb") as f:
            self.add(label, f.read())


class KekTestBase(unittest.TestCase):
    """Keys, temp dir, captures and the shared steps; no test of its own."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kek-rotation-")
        self.k1, self.k2 = os.urandom(32), os.urandom(32)
        self.fp1, self.fp2 = fingerprint(self.k1), fingerprint(self.k2)
        self.caps = Captures()
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def cli(self, target, *args, expect=0):
        rc, out, err = cli(target, *args, timeout=30)
        self.caps.add(f"cli {args}", out + err)
        self.assertEqual(rc, expect, f"{args}: {out}{err}")
        return out

    def restore(self, *args, expect=0):
        p = subprocess.run([RESTORE_BIN, *args], capture_output=True, timeout=60,
                           env=harness.child_env())
        out = (p.stdout + p.stderr).decode(errors="replace")
        self.caps.add(f"restore {args}", out)
        self.assertEqual(p.returncode, expect, out)
        return out

    def refused_start(self, args, needs):
        """A server start that must fail naming the fingerprint `needs`; returns stderr."""
        p = subprocess.run([harness.SERVER_BIN, "--listen=127.0.0.1:0", *args],
                           capture_output=True, timeout=30, env=harness.child_env())
        err = p.stderr.decode(errors="replace")
        self.caps.add(f"refused start {args}", p.stdout + p.stderr)
        self.assertEqual(p.returncode, 1, err)
        self.assertIn(f"fingerprint {needs}", err)
        self.assertIn("previous_kek_files", err)
        return err

    def check_hygiene(self):
        secrets = {"KEK 1": self.k1, "KEK 2": self.k2}
        found = Scanner(self.caps.items).find(secrets)
        self.assertFalse(found, f"a KEK in the captured output: {found}")
        self.assertGreaterEqual(len(self.caps.items), 8)



class FileStoreKekTest(KekTestBase):
    def test_file_store_rotation_under_load_then_backup_and_restore(self):
        data, kek, old = self.path("data"), self.path("kek"), self.path("kek.old")
        cfg, audit = self.path("server.textproto"), self.path("audit.jsonl")
        write_key(kek, self.k1)
        with open(cfg, "w") as f:
            f.write("")
        server = harness.Server(data, kek, self.path("server.log"),
                                [f"--config={cfg}", f"--audit_log={audit}"])
        t = server.target
        self.cli(t, "keyrings", "create", "shop")
        shop_token = self.cli(t, "--keyring=shop", "sign", "--payload=before").strip()
        load = Load(t)
        time.sleep(STEADY)
        began = time.monotonic()
        log_at = len(server.log())
        # Step 1: the new KEK as current, the old one as previous; SIGHUP.
        write_key(old, self.k1)
        write_key(kek, self.k2)
        with open(cfg, "w") as f:
            f.write(f'previous_kek_files: "{old}"\n')
        server.proc.send_signal(signal.SIGHUP)
        wait_for("the reload", lambda: f"reloaded: KEK fingerprint {self.fp2}; previous KEKs: "
                 f"{self.fp1}" in server.log()[log_at:])
        # Step 2: rewrap.
        out = self.cli(t, "keys", "rewrap")
        self.assertIn("0 records remain", out)
        again = json.loads(self.cli(t, "--json", "keys", "rewrap"))  # the response, captured
        self.assertEqual((again["rewrapped"], again["remaining_count"]), (0, 0))
        self.assertEqual(again["previous_kek_fingerprints"], [self.fp1])
        # Step 3: drop the old KEK; SIGHUP.
        with open(cfg, "w") as f:
            f.write("")
        os.remove(old)
        server.proc.send_signal(signal.SIGHUP)
        wait_for("the second reload", lambda: f"reloaded: KEK fingerprint {self.fp2}; previous "
                 "KEKs: none" in server.log()[log_at:])
        took = time.monotonic() - began
        time.sleep(STEADY)
        ok, failed = load.stop()
        print(f"\nKEK rotation, one server under load: {took:.2f}s from the new KEK to the "
              f"old one dropped; {ok} sign+verify pairs, {failed} failed", flush=True)
        self.assertEqual(failed, 0, load.errors[:5])
        self.assertGreater(ok, 100)
        # Backup now (before later changes).
        backup = self.path("backup.stb")
        out = self.cli(t, "backup", backup)
        self.assertIn(f"sealed with KEK {self.fp2}", out)
        self.assertEqual(os.stat(backup).st_mode & 0o777, 0o600)
        self.caps.add_file("backup file", backup)
        tokens = load.tokens[:20] + [shop_token]
        leaked = json.loads(self.cli(t, "--json", "keyrings", "get"))["primary_key_id"]
        self.cli(t, "keys", "rotate", "--promote_now")
        self.cli(t, "keys", "disable", str(leaked))
        self.cli(t, "keys", "destroy", str(leaked))
        self.assertEqual(server.stop(), 0)
        self.caps.add("server log", server.log())
        self.caps.add_file("audit log", audit)
        with open(audit) as f:
            ops = [json.loads(line)["operation"] for line in f]
        for op in ("rewrap", "rewrap_keyrings", "export_backup"):
            self.assertIn(op, ops)
        # Afterwards: every record sealed with the new KEK; the old KEK alone refuses.
        fps = file_store_fingerprints(data)
        self.assertEqual(set(fps.values()), {self.fp2}, fps)
        before = {n: read(os.path.join(data, "keyrings", n + ".keyring")) for n in fps}
        only_old = write_key(self.path("kek.only-old"), self.k1)
        self.refused_start([f"--data_dir={data}", f"--kek_file={only_old}"], self.fp2)
        for n, content in before.items():
            with open(os.path.join(data, "keyrings", n + ".keyring"), "rb") as f:
                self.assertEqual(f.read(), content, f"a refused start modified {n}")
        self.restore_file_store(backup, data, kek, tokens, leaked)
        self.check_hygiene()

    def restore_file_store(self, backup, data, kek, tokens, leaked):
        # A corrupted copy: refused, nothing written.
        with open(backup, "rb") as f:
            content = bytearray(f.read())
        content[len(content) // 2] ^= 0x01
        corrupt = self.path("corrupt.stb")
        with open(corrupt, "wb") as f:
            f.write(bytes(content))
        fresh = self.path("fresh")
        out = self.restore(f"--backup={corrupt}", f"--to=file:{fresh}", f"--kek_file={kek}",
                           expect=1)
        self.assertIn("damaged", out)
        self.assertFalse(os.path.exists(os.path.join(fresh, "keyrings")) and
                         os.listdir(os.path.join(fresh, "keyrings")), "a refused restore wrote")
        # Into a fresh data dir: every token issued before the backup verifies.
        out = self.restore(f"--backup={backup}", f"--to=file:{fresh}", f"--kek_file={kek}")
        self.assertIn("create keyring shop", out)
        server = harness.Server(fresh, kek, self.path("fresh.log"))
        for i, tok in enumerate(tokens):
            keyring = "shop" if i == len(tokens) - 1 else "default"
            rc, res, err = cli_json(server.target, f"--keyring={keyring}", "verify", tok)
            self.assertEqual((rc, res and res["result"]), (0, "VALID"), err)
        self.assertEqual(server.stop(), 0)
        self.caps.add("fresh server log", server.log())
        # Over the newer keyrings (the leaked key destroyed since): refused without the flag.
        before = read(os.path.join(data, "keyrings", "default.keyring"))
        out = self.restore(f"--backup={backup}", f"--to=file:{data}", f"--kek_file={kek}",
                           expect=1)
        self.assertIn("REPLACE keyring default", out)
        self.assertIn(f"comes back: key {leaked} (DESTROYED in the store", out)
        self.assertIn("--overwrite", out)
        with open(os.path.join(data, "keyrings", "default.keyring"), "rb") as f:
            self.assertEqual(f.read(), before, "a refused restore wrote")
        out = self.restore(f"--backup={backup}", f"--to=file:{data}", f"--kek_file={kek}",
                           "--overwrite")
        server = harness.Server(data, kek, self.path("server.log"))  # no --accept_rollback
        rc, res, err = cli_json(server.target, "verify", tokens[0])
        self.assertEqual((rc, res and res["result"]), (0, "VALID"), err)
        self.assertEqual(server.stop(), 0)


class Etcd:
    def __init__(self, root, name):
        self.port, peer = free_port(), free_port()
        client, peer_url = f"http://127.0.0.1:{self.port}", f"http://127.0.0.1:{peer}"
        self.log = open(os.path.join(root, f"etcd-{name}.log"), "ab")
        self.proc = subprocess.Popen(
            PDEATHSIG + [ETCD_BIN, "--name", name, "--data-dir", os.path.join(root, f"etcd-{name}"),
                         "--listen-client-urls", client, "--advertise-client-urls", client,
                         "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
                         "--initial-cluster", f"{name}={peer_url}", "--initial-cluster-state",
                         "new", "--listen-metrics-urls", f"http://127.0.0.1:{free_port()}",
                         "--log-level", "warn", "--logger", "zap"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, env=harness.child_env())
        self.endpoint = f"127.0.0.1:{self.port}"
        wait_for("etcd", self.healthy, timeout=30)

    def call(self, path, body):
        import urllib.request
        req = urllib.request.Request(f"http://{self.endpoint}{path}", method="POST",
                                     data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=5) as r:
            return json.loads(r.read())

    def healthy(self):
        try:
            self.call("/v3/kv/range", {"key": "aGVhbHRo"})
            return True
        except OSError:
            return False

    def fingerprints(self):
        """Record name -> KEK fingerprint of every keyring record under the prefix."""
        import base64
        start = base64.b64encode(b"/sessiontoken/keyrings/").decode()
        end = base64.b64encode(b"/sessiontoken/keyrings0").decode()
        r = self.call("/v3/kv/range", {"key": start, "range_end": end})
        out = {}
        for kv in r.get("kvs", []):
            value = base64.b64decode(kv["value"])
            out[base64.b64decode(kv["key"]).decode()] = value[9:17].hex()
        return out

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()


class Replica:
    def __init__(self, test, i, endpoint):
        self.test, self.id, self.endpoint = test, f"r{i}", endpoint
        self.port = free_port()
        self.target = f"127.0.0.1:{self.port}"
        self.log_path = test.path(f"replica-{self.id}.log")
        self.proc = None

    def start(self, kek=None, config=None):
        """With `kek` (--kek_file) or `config` (a config file naming the KEK files, re-read
        on SIGHUP)."""
        args = [f"--listen={self.target}", "--store=etcd", f"--etcd_endpoints={self.endpoint}",
                f"--replica_id={self.id}", "--presence_ttl=3s", "--default_keyring=",
                "--shutdown_grace=5s"]
        args.append(f"--kek_file={kek}" if kek else f"--config={config}")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(PDEATHSIG + [harness.SERVER_BIN, *args],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=log, env=harness.child_env())
        log.close()
        self.test.procs.append(self.proc)
        wait_for(f"{self.id} serving", lambda: self.serving())

    def reload(self, expect):
        """SIGHUP; waits for the log line of the reload with `expect` in it."""
        at = len(self.log())
        self.proc.send_signal(signal.SIGHUP)
        wait_for(f"{self.id} reloading its KEKs", lambda: expect in self.log()[at:])

    def serving(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.id} exited: " + self.log()[-2000:])
        return cli(self.target, "health", timeout=5)[0] == 0

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=30)
        self.test.assertEqual(rc, 0, self.log()[-2000:])

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")


class EtcdKekTest(KekTestBase):
    def assertVerifies(self, target, token, result):
        rc, res, err = cli_json(target, "--keyring=shop", "verify", token)
        self.assertEqual(res and res["result"], result, err)

    def test_three_replicas_rotation_then_restore_on_a_fresh_etcd(self):
        etcd = Etcd(self.tmp, "a")
        try:
            self.run_replicas(etcd)
        finally:
            etcd.stop()

    def run_replicas(self, etcd):
        kek, new_only = self.path("kek.old"), self.path("kek.new")
        cfg = self.path("replicas.textproto")
        write_key(kek, self.k1)
        write_key(new_only, self.k2)
        with open(cfg, "w") as f:
            f.write(f'kek_file: "{kek}"\n')
        replicas = [Replica(self, i, etcd.endpoint) for i in range(3)]
        for r in replicas:
            r.start(config=cfg)
        self.cli(replicas[0].target, "keyrings", "create", "shop")
        wait_for("shop on every replica", lambda: all(
            cli(r.target, "--keyring=shop", "keyrings", "get")[0] == 0 for r in replicas))
        # A revoked session (sealed revocation records in etcd) must stay revoked throughout.
        rc, signed, err = cli_json(replicas[0].target, "--keyring=shop", "sign",
                                   "--payload=stolen", "--subject=mallory")
        self.assertEqual(rc, 0, err)
        revoked = signed["token"]
        self.cli(replicas[0].target, "--keyring=shop", "revoke", "--subject=mallory")
        target = "ipv4:" + ",".join(r.target for r in replicas)
        load = Load(target, "shop")
        time.sleep(STEADY)
        began = time.monotonic()
        # Step 1: on every replica: the new KEK as current, the old one as previous (SIGHUP).
        with open(cfg, "w") as f:
            f.write(f'kek_file: "{new_only}"\nprevious_kek_files: "{kek}"\n')
        for r in replicas:
            r.reload(f"reloaded: KEK fingerprint {self.fp2}; previous KEKs: {self.fp1}")
        # Step 2: rewrap (on any replica) until nothing remains under the old KEK.
        out = self.cli(replicas[1].target, "keys", "rewrap")
        self.assertIn("0 records remain", out)
        # Step 3: on every replica: the new KEK only (SIGHUP).
        with open(cfg, "w") as f:
            f.write(f'kek_file: "{new_only}"\n')
        for r in replicas:
            r.reload(f"reloaded: KEK fingerprint {self.fp2}; previous KEKs: none")
        took = time.monotonic() - began
        time.sleep(STEADY)
        ok, failed = load.stop()
        print(f"\nKEK rotation, 3 replicas on etcd under load (SIGHUP per replica): {took:.2f}s; "
              f"{ok} sign+verify pairs, {failed} failed", flush=True)
        self.assertEqual(failed, 0, load.errors[:5])
        fps = etcd.fingerprints()
        self.assertEqual(set(fps.values()), {self.fp2}, fps)
        self.assertTrue(any("/_rev.shop." in n for n in fps), fps)
        for r in replicas:
            self.assertVerifies(r.target, revoked, "REVOKED")
        only_old = write_key(self.path("kek.only-old"), self.k1)
        self.refused_start(["--store=etcd", f"--etcd_endpoints={etcd.endpoint}",
                            "--replica_id=r9", f"--kek_file={only_old}"], self.fp2)
        self.assertEqual(etcd.fingerprints(), fps, "a refused start modified etcd")
        backup = self.path("backup.stb")
        self.cli(replicas[0].target, "backup", backup)
        self.caps.add_file("backup file", backup)
        tokens = load.tokens[:20]
        for r in replicas:
            r.stop()
            self.caps.add(f"{r.id} log", r.log())
        # Disaster recovery: a fresh etcd, the backup, the KEK.
        fresh = Etcd(self.tmp, "b")
        try:
            out = self.restore(f"--backup={backup}", "--to=etcd",
                               f"--etcd_endpoints={fresh.endpoint}", f"--kek_file={new_only}")
            self.assertIn("create keyring shop", out)
            r = Replica(self, 5, fresh.endpoint)
            r.start(new_only)
            for tok in tokens:
                self.assertVerifies(r.target, tok, "VALID")
            self.assertVerifies(r.target, revoked, "REVOKED")  # the backup carried it
            r.stop()
            self.caps.add("dr replica log", r.log())
        finally:
            fresh.stop()
        self.check_hygiene()


if __name__ == "__main__":
    harness.require_binaries()
    if not RESTORE_BIN or not os.access(RESTORE_BIN, os.X_OK):
        raise SystemExit("set SESSIONTOKEN_RESTORE to the built sessiontoken-restore")
    unittest.main()
