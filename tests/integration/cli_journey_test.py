#!/usr/bin/python3
"""End-to-end journey: the real `sessiontoken` CLI against the real sessiontoken-server.

Binaries come from the environment (set by CTest, see CMakeLists.txt here):
  SESSIONTOKEN_SERVER  path of sessiontoken-server
  SESSIONTOKEN_CLI     path of the sessiontoken CLI

Everything runs on 127.0.0.1 with a port picked by the server (--listen=127.0.0.1:0), in a
fresh temporary directory, with a random KEK file. Standard library only.
"""

import base64
import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import harness

SERVER_BIN = os.environ.get("SESSIONTOKEN_SERVER", "")
CLI_BIN = os.environ.get("SESSIONTOKEN_CLI", "")

LOOPBACK = "127.0.0.1"
LISTEN_RE = re.compile(r"^sessiontoken-server listening on 127\.0\.0\.1:(\d+)$")
STARTUP_TIMEOUT_S = 10.0
REFUSE_TIMEOUT_S = 5.0   # "exits non-zero within a few seconds"
STOP_TIMEOUT_S = 10.0
CLI_TIMEOUT_S = 15.0
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


# Shared with the other integration tests.
_child_env = harness.child_env
write_kek = harness.write_kek


def snapshot_dir(path):
    """{file name: (bytes, mtime_ns, size)} of every entry of `path`."""
    snap = {}
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        st = os.stat(full)
        with open(full, "rb") as f:
            snap[name] = (f.read(), st.st_mtime_ns, st.st_size)
    return snap


class ServerProcess:
    """One sessiontoken-server child. stdout is drained by a thread (lines -> queue);
    stderr goes to a file so it can never block the server."""

    def __init__(self, data_dir, kek_file, log_path):
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.stdout_lines = []
        self._lines = queue.Queue()
        self.proc = subprocess.Popen(
            [SERVER_BIN, f"--listen={LOOPBACK}:0", f"--data_dir={data_dir}",
             f"--kek_file={kek_file}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._log,
            env=_child_env())
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        self.port = None

    def _read_stdout(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.stdout_lines.append(line)
            self._lines.put(line)
        self._lines.put(None)  # EOF

    def first_line(self, timeout):
        """The first stdout line, or None if the process closed stdout without one."""
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(
                f"server printed nothing on stdout within {timeout}s; stderr:\n{self.stderr()}")

    def stderr(self):
        self._log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait(self, timeout):
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self._reader.join(timeout=5)
        return rc

    def terminate(self):
        """SIGTERM, then the exit code (None if it did not exit in time)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(STOP_TIMEOUT_S)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.stdout:
            self.proc.stdout.close()
        self._log.close()


class CliJourneyTest(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        missing = [n for n, v in (("SESSIONTOKEN_SERVER", SERVER_BIN),
                                  ("SESSIONTOKEN_CLI", CLI_BIN)) if not v]
        if missing:
            raise RuntimeError(
                f"environment variable(s) {', '.join(missing)} not set: give the paths of "
                "sessiontoken-server and the sessiontoken CLI (CTest sets them)")
        for name, path in (("SESSIONTOKEN_SERVER", SERVER_BIN), ("SESSIONTOKEN_CLI", CLI_BIN)):
            if not (os.path.isfile(path) and os.access(path, os.X_OK)):
                raise RuntimeError(f"{name}={path!r} is not an executable file")

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="sessiontoken-it-")
        self.tmp = self._tmp.name
        self.data_dir = os.path.join(self.tmp, "data")
        self.keyrings_dir = os.path.join(self.data_dir, "keyrings")
        self.kek = write_kek(os.path.join(self.tmp, "kek.hex"))
        self.servers = []
        self.server = None
        self.port = None
        self._log_n = 0

    def tearDown(self):
        for s in self.servers:
            s.kill()
        self._tmp.cleanup()

    # --- server control -------------------------------------------------------------------

    def _spawn(self, kek_file):
        self._log_n += 1
        s = ServerProcess(self.data_dir, kek_file,
                          os.path.join(self.tmp, f"server-{self._log_n}.log"))
        self.servers.append(s)
        return s

    def start_server(self, kek_file=None):
        s = self._spawn(kek_file or self.kek)
        line = s.first_line(STARTUP_TIMEOUT_S)
        if line is None:
            self.fail(f"server exited before listening (rc={s.wait(5)}); "
                      f"stderr:\n{s.stderr()}")
        m = LISTEN_RE.match(line)
        self.assertIsNotNone(m, f"unexpected first stdout line {line!r}")
        port = int(m.group(1))
        self.assertTrue(0 < port < 65536, port)
        self.server, self.port = s, port
        return s

    def stop_server(self):
        s = self.server
        rc = s.terminate()
        self.assertEqual(rc, 0, f"server did not exit 0 on SIGTERM (rc={rc}); "
                                f"stderr:\n{s.stderr()}")
        self.server, self.port = None, None

    def expect_refusal(self, kek_file):
        """Starts a server that must refuse to start; returns (rc, stderr)."""
        s = self._spawn(kek_file)
        rc = s.wait(REFUSE_TIMEOUT_S)
        if rc is None:
            s.kill()
            self.fail(f"server with kek_file={kek_file} still running after "
                      f"{REFUSE_TIMEOUT_S}s; stdout={s.stdout_lines!r}")
        self.assertNotEqual(rc, 0, f"server exited 0; stderr:\n{s.stderr()}")
        self.assertFalse(any("listening" in l for l in s.stdout_lines),
                         f"server claimed to listen: {s.stdout_lines!r}")
        return rc, s.stderr()

    # --- CLI ----------------------------------------------------------------------------

    def cli(self, *args, keyring=None, audience=None, ttl=None, json_out=False):
        self.assertIsNotNone(self.port, "no server running")
        argv = [CLI_BIN, f"--server={LOOPBACK}:{self.port}"]
        if keyring is not None:
            argv.append(f"--keyring={keyring}")
        if audience is not None:
            argv.append(f"--audience={audience}")
        if ttl is not None:
            argv.append(f"--ttl={ttl}")
        if json_out:
            argv.append("--json")
        argv.extend(args)
        return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=CLI_TIMEOUT_S, env=_child_env())

    def cli_ok_json(self, *args, **kw):
        r = self.cli(*args, json_out=True, **kw)
        self.assertEqual(r.returncode, 0, f"{args}: rc={r.returncode} stderr={r.stderr!r}")
        try:
            return json.loads(r.stdout)
        except ValueError as e:
            self.fail(f"{args}: output is not JSON ({e}): {r.stdout!r}")

    def sign(self, payload, audience="web", ttl=None):
        """sign --json; returns the parsed response after checking its fields."""
        out = self.cli_ok_json("sign", f"--payload={payload}", audience=audience, ttl=ttl)
        for field in ("token", "key_id", "issued_at", "expires_at"):
            self.assertIn(field, out, f"sign --json lacks {field}: {out}")
        self.assertIsInstance(out["key_id"], int)
        self.assertNotEqual(out["key_id"], 0)
        self.assertTrue(out["token"].startswith("st2."), out["token"])
        self.assertEqual(len(out.get("token_id", "")), 22, out)
        return out

    def verify(self, token, audience="web", keyring=None):
        """verify --json; returns (exit code, parsed JSON)."""
        r = self.cli("verify", token, audience=audience, keyring=keyring, json_out=True)
        try:
            out = json.loads(r.stdout)
        except ValueError as e:
            self.fail(f"verify --json output is not JSON ({e}): rc={r.returncode} "
                      f"stdout={r.stdout!r} stderr={r.stderr!r}")
        return r.returncode, out

    def assert_valid(self, token, payload, key_id, refresh):
        rc, out = self.verify(token)
        self.assertEqual(out.get("result"), "VALID", out)
        self.assertEqual(rc, 0, out)
        self.assertEqual(base64.b64decode(out["payload"], validate=True), payload.encode(), out)
        self.assertEqual(out.get("key_id"), key_id, out)
        self.assertIs(out.get("refresh_recommended"), refresh, out)
        return out

    def keys_list(self):
        out = self.cli_ok_json("keys", "list")
        self.assertEqual(out.get("keyring"), "default", out)
        self.assertIsInstance(out.get("revision"), str, "revision must be a JSON string (int64)")
        return out

    # --- the journey -----------------------------------------------------------------------

    def test_journey(self):
        t0 = time.monotonic()
        self.start_server()
        self.assertTrue(os.path.isfile(os.path.join(self.keyrings_dir, "default.keyring")),
                        "first start did not create keyrings/default.keyring")

        # 1. health, sign, verify.
        r = self.cli("health")
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "SERVING"), r.stderr)

        r = self.cli("sign", "--payload=user=42", audience="web")
        self.assertEqual(r.returncode, 0, r.stderr)
        plain_lines = r.stdout.splitlines()
        self.assertEqual(len(plain_lines), 1, f"plain sign must print only the token: {r.stdout!r}")
        plain_token = plain_lines[0]
        self.assertTrue(plain_token.startswith("st2."), plain_token)

        list0 = self.keys_list()
        old_key = list0["primary_key_id"]
        self.assertEqual([k["key_id"] for k in list0["keys"]], [old_key], list0)
        rev0 = int(list0["revision"])

        self.assert_valid(plain_token, "user=42", old_key, refresh=False)
        old = self.sign("user=42")
        self.assertEqual(old["key_id"], old_key)
        self.assert_valid(old["token"], "user=42", old_key, refresh=False)

        # 2. rotate.
        rot = self.cli_ok_json("keys", "rotate")
        new_key = rot["new_key"]["key_id"]
        self.assertNotEqual(new_key, old_key, rot)
        self.assertEqual(rot["new_key"].get("state"), "PRIMARY", rot)
        self.assertEqual(rot["previous_primary_key_id"], old_key, rot)
        rev_rot = int(rot["revision"])
        self.assertGreater(rev_rot, rev0, rot)

        self.assert_valid(old["token"], "user=42", old_key, refresh=True)
        new = self.sign("user=43")
        self.assertEqual(new["key_id"], new_key, "sign after rotate must use the new primary")
        self.assertNotEqual(new["key_id"], old_key)
        self.assert_valid(new["token"], "user=43", new_key, refresh=False)

        list1 = self.keys_list()
        states = {k["key_id"]: k["state"] for k in list1["keys"]}
        self.assertEqual(states, {new_key: "PRIMARY", old_key: "ACTIVE"}, list1)
        self.assertEqual(list(states.values()).count("PRIMARY"), 1, list1)
        self.assertEqual(list1["primary_key_id"], new_key, list1)
        self.assertEqual(int(list1["revision"]), rev_rot, list1)
        self.assertGreater(int(list1["revision"]), rev0, list1)

        # 3. graceful stop, restart with the same KEK: everything survives.
        self.stop_server()
        self.start_server()
        self.assert_valid(old["token"], "user=42", old_key, refresh=True)
        self.assert_valid(new["token"], "user=43", new_key, refresh=False)
        list2 = self.keys_list()
        self.assertEqual({k["key_id"]: k["state"] for k in list2["keys"]}, states, list2)
        self.assertEqual(int(list2["revision"]), rev_rot, list2)

        # 4. stop; a different KEK must be refused without touching the keyrings.
        self.stop_server()
        before = snapshot_dir(self.keyrings_dir)
        self.assertIn("default.keyring", before)
        time.sleep(0.05)  # so that a rewrite would show up in mtime_ns too
        other_kek = write_kek(os.path.join(self.tmp, "other-kek.hex"))
        rc, err = self.expect_refusal(other_kek)
        self.assertIn("different KEK", err)
        after = snapshot_dir(self.keyrings_dir)
        self.assertEqual(sorted(after), sorted(before), "keyrings/ listing changed")
        for name in before:
            self.assertEqual(after[name][0], before[name][0], f"{name}: bytes changed")
            self.assertEqual(after[name][1:], before[name][1:], f"{name}: mtime/size changed")

        # And the right KEK still works afterwards.
        self.start_server()
        self.assert_valid(new["token"], "user=43", new_key, refresh=False)
        self.stop_server()
        self.assertLess(time.monotonic() - t0, 30, "journey took too long")

    def test_rejections(self):
        self.start_server()
        tok = self.sign("user=42")
        token = tok["token"]

        # --json verify: field names and types.
        rc, out = self.verify(token)
        self.assertEqual(rc, 0, out)
        for field in ("result", "payload", "key_id", "issued_at", "expires_at",
                      "refresh_recommended"):
            self.assertIn(field, out, f"verify --json lacks {field}: {out}")
        self.assertEqual(out["result"], "VALID")
        self.assertIsInstance(out["refresh_recommended"], bool)
        self.assertEqual(out["key_id"], tok["key_id"])
        self.assertEqual((out["issued_at"], out["expires_at"]),
                         (tok["issued_at"], tok["expires_at"]), out)
        self.assertEqual(base64.b64decode(out["payload"]), b"user=42")

        # Tampered token: one base64url character in the middle replaced by another.
        i = len(token) // 2
        self.assertGreater(i, len("st2."))
        c = token[i]
        self.assertIn(c, B64URL)
        tampered = token[:i] + B64URL[(B64URL.index(c) + 1) % 64] + token[i + 1:]
        self.assertNotEqual(tampered, token)
        rc, out = self.verify(tampered)
        self.assertEqual(rc, 1, out)
        self.assertNotEqual(out.get("result"), "VALID", out)
        self.assertIn(out.get("result"), ("BAD_SIGNATURE", "MALFORMED", "UNKNOWN_KEY"), out)
        self.assertFalse(out.get("payload"), f"invalid token must not return a payload: {out}")

        # Plain (non-JSON) verify of the tampered token also exits 1.
        r = self.cli("verify", tampered, audience="web")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertNotIn("result: VALID", r.stdout)

        # Wrong audience.
        rc, out = self.verify(token, audience="mobile")
        self.assertEqual((rc, out.get("result")), (1, "WRONG_AUDIENCE"), out)
        self.assertFalse(out.get("payload"), out)

        # ttl=0s is rejected by the server.
        r = self.cli("sign", "--payload=x", audience="web", ttl="0s")
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertIn("ttl", r.stderr)
        self.assertIn("INVALID_ARGUMENT", r.stderr)
        self.assertEqual(r.stdout, "", "nothing may be printed on stdout for a failed sign")

        # Unknown keyring.
        r = self.cli("sign", "--payload=x", keyring="nope", audience="web")
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertIn("NOT_FOUND", r.stderr)
        self.assertEqual(r.stdout, "")

        # Missing KEK file: refuses to start, keyrings untouched.
        self.stop_server()
        before = snapshot_dir(self.keyrings_dir)
        self.assertIn("default.keyring", before)
        missing = os.path.join(self.tmp, "no-such-kek.hex")
        self.assertFalse(os.path.exists(missing))
        rc, err = self.expect_refusal(missing)
        self.assertIn("no-such-kek.hex", err, "the error should name the KEK file")
        self.assertEqual(snapshot_dir(self.keyrings_dir), before)


if __name__ == "__main__":
    unittest.main(verbosity=2)
