#!/usr/bin/python3
"""Rollback protection through the real binaries: a keyring file restored from an older copy
(which brings back a key destroyed since) stops the start with a message naming the keyring
and the way out, and changes nothing; --accept_rollback=NAME loads it once, audited."""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

import harness
from harness import cli_json


class RollbackTest(unittest.TestCase):
    def test_rolled_back_file_is_refused_until_accepted(self):
        with tempfile.TemporaryDirectory() as d:
            data, kek = os.path.join(d, "data"), harness.write_kek(os.path.join(d, "kek"))
            audit = os.path.join(d, "audit.jsonl")
            log = os.path.join(d, "server.log")
            server = harness.Server(data, kek, log, ["--scheduler_interval=0"])
            t = server.target
            rc, info, err = cli_json(t, "keyrings", "get")
            self.assertEqual(rc, 0, err)
            leaked = info["keys"][0]["key_id"]
            self.assertEqual(cli_json(t, "keys", "rotate", "--promote_now")[0], 0)
            path = os.path.join(data, "keyrings", "default.keyring")
            old = os.path.join(d, "default.keyring.old")
            shutil.copy(path, old)  # the leaked key is still ACTIVE in this copy
            self.assertEqual(cli_json(t, "keys", "disable", str(leaked))[0], 0)
            self.assertEqual(cli_json(t, "keys", "destroy", str(leaked))[0], 0)
            self.assertEqual(server.stop(), 0)

            shutil.copy(old, path)
            with open(path, "rb") as f:
                restored = f.read()
            p = subprocess.run([harness.SERVER_BIN, "--listen=127.0.0.1:0",
                                f"--data_dir={data}", f"--kek_file={kek}"],
                               capture_output=True, timeout=30, env=harness.child_env())
            self.assertEqual(p.returncode, 1, p.stderr)
            err = p.stderr.decode()
            self.assertIn("keyring default", err)
            self.assertIn("rolled back", err)
            self.assertIn("--accept_rollback=default", err)
            with open(path, "rb") as f:
                self.assertEqual(f.read(), restored, "a refused start modified the file")

            server = harness.Server(data, kek, log, ["--accept_rollback=default",
                                                     "--audit_log=" + audit])
            rc, info, err = cli_json(server.target, "keyrings", "get")
            self.assertEqual(rc, 0, err)
            states = {k["key_id"]: k["state"] for k in info["keys"]}
            self.assertEqual(states[leaked], "ACTIVE")  # what the backup held
            self.assertEqual(server.stop(), 0)
            with open(audit) as f:
                events = [json.loads(line) for line in f]
            self.assertTrue(any(e.get("operation") == "accept_rollback" for e in events), events)
            # Accepted once: the next start needs no flag.
            server = harness.Server(data, kek, log)
            self.assertEqual(server.stop(), 0)


if __name__ == "__main__":
    harness.require_binaries()
    unittest.main()
