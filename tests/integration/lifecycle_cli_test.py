#!/usr/bin/python3
"""The key lifecycle driven through the real CLI against the real server: rotate with a
stage lead time, promote, disable, enable, destroy, import, policies, a second keyring whose
tokens never verify in the first, and the audit log."""

import json
import os
import tempfile
import unittest

import harness
from harness import cli, cli_json


class LifecycleCliTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        d = self.tmp.name
        self.audit = os.path.join(d, "audit.jsonl")
        self.server = harness.Server(os.path.join(d, "data"),
                                     harness.write_kek(os.path.join(d, "kek")),
                                     os.path.join(d, "server.log"),
                                     ["--audit_log=" + self.audit, "--scheduler_interval=0"])
        self.t = self.server.target

    def tearDown(self):
        self.server.kill()
        self.tmp.cleanup()

    def keys(self, keyring="default"):
        rc, info, err = cli_json(self.t, f"--keyring={keyring}", "keyrings", "get")
        self.assertEqual(rc, 0, err)
        return info, {k["key_id"]: k["state"] for k in info["keys"]}

    def test_full_lifecycle(self):
        rc, tok, err = cli_json(self.t, "sign", "--payload=u1", "--ttl=1h")
        self.assertEqual(rc, 0, err)
        first = tok["key_id"]
        # A policy with a stage lead time: rotate stages; promote makes it primary.
        rc, info, err = cli_json(self.t, "policy", "set", "--stage_lead_time=1h",
                                 "--rotation_period=24h", "--verify_window=0s")
        self.assertEqual(rc, 0, err)
        self.assertEqual(info["policy"]["stage_lead_time"], "3600s")
        rc, rot, err = cli_json(self.t, "keys", "rotate")
        self.assertEqual(rc, 0, err)
        staged = rot["new_key"]["key_id"]
        self.assertEqual(rot["new_key"]["state"], "STAGED")
        _, states = self.keys()
        self.assertEqual(states, {first: "PRIMARY", staged: "STAGED"})
        rc, info, err = cli_json(self.t, "keys", "promote", str(staged))
        self.assertEqual(rc, 0, err)
        _, states = self.keys()
        self.assertEqual(states, {first: "ACTIVE", staged: "PRIMARY"})
        revision = int(info["revision"])
        # The old token: valid, refresh recommended.
        rc, v, _ = cli_json(self.t, "verify", tok["token"])
        self.assertEqual((rc, v["result"], v["refresh_recommended"]), (0, "VALID", True))
        # Illegal moves are refused with FAILED_PRECONDITION and change nothing.
        for args in (("keys", "disable", str(staged)), ("keys", "destroy", str(first)),
                     ("keys", "enable", str(first)), ("keys", "promote", str(staged))):
            rc, _, err = cli(self.t, *args)
            self.assertEqual(rc, 3, args)
            self.assertIn("FAILED_PRECONDITION", err)
        info, _ = self.keys()
        self.assertEqual(int(info["revision"]), revision)
        # Disable -> KEY_DISABLED; enable -> VALID again; disable + destroy -> tombstone.
        self.assertEqual(cli(self.t, "keys", "disable", str(first))[0], 0)
        rc, v, _ = cli_json(self.t, "verify", tok["token"])
        self.assertEqual((rc, v["result"]), (1, "KEY_DISABLED"))
        self.assertEqual(cli(self.t, "keys", "enable", str(first))[0], 0)
        self.assertEqual(cli_json(self.t, "verify", tok["token"])[1]["result"], "VALID")
        self.assertEqual(cli(self.t, "keys", "disable", str(first))[0], 0)
        self.assertEqual(cli(self.t, "keys", "destroy", str(first))[0], 0)
        _, states = self.keys()
        self.assertEqual(states[first], "DESTROYED")
        self.assertEqual(cli_json(self.t, "verify", tok["token"])[1]["result"], "KEY_DISABLED")
        # The tombstone's retention is a policy field (pruning is the scheduler's, off here).
        rc, info, err = cli_json(self.t, "policy", "set", "--tombstone_retention=48h")
        self.assertEqual(rc, 0, err)
        self.assertEqual(info["policy"]["tombstone_retention"], "172800s")
        self.assertEqual(info["policy"]["stage_lead_time"], "3600s")  # the rest kept
        self.assertEqual(self.keys()[1][first], "DESTROYED")
        # Import reads the secret from stdin, never argv.
        rc, imp, err = cli_json(self.t, "keys", "import", "--algorithm=flask",
                                stdin=b"legacy-flask-secret\n")
        self.assertEqual(rc, 0, err)
        self.assertEqual(imp["key"]["state"], "ACTIVE")
        self.assertEqual(imp["key"]["algorithm"], "HMAC_SHA1_FLASK")
        # A policy whose max TTL exceeds the verify window is rejected, naming the field.
        rc, _, err = cli(self.t, "policy", "set", "--verify_window=1h", "--max_token_ttl=2h")
        self.assertEqual(rc, 3)
        self.assertIn("max_token_ttl", err)
        # Audit: one line per admin call, outcome and revision, never the secret.
        with open(self.audit) as f:
            events = [json.loads(line) for line in f]
        ops = [e["operation"] for e in events]
        for op in ("set_policy", "rotate", "promote", "disable", "enable", "destroy", "import"):
            self.assertIn(op, ops)
        self.assertTrue(any(e["outcome"].startswith("FAILED_PRECONDITION") for e in events))
        ok = [e for e in events if e["outcome"] == "ok"]
        self.assertEqual([e["revision"] for e in ok], sorted(e["revision"] for e in ok))
        with open(self.audit, "rb") as f:
            self.assertNotIn(b"legacy-flask-secret", f.read())

    def test_weak_secret_import_warns(self):
        """Issue 17 point 9: importing the tutorial's 'mysecret123' succeeds with a warning
        (CLI stderr, --json "warning", audit log); a 32-byte random secret gets none."""
        rc, out, err = cli(self.t, "keys", "import", "--algorithm=flask", stdin=b"mysecret123\n")
        self.assertEqual(rc, 0, err)
        self.assertIn("imported key", out)
        self.assertTrue(err.startswith("WARNING: weak secret: "), err)
        self.assertIn("well-known", err)
        self.assertIn("rotate right after importing", err)
        rc, imp, err = cli_json(self.t, "keys", "import", "--algorithm=flask",
                                stdin=b"change-me-please")
        self.assertEqual(rc, 0, err)
        self.assertIn("weak secret", imp["warning"])
        self.assertIn("weak secret", err)
        for extra in ([], ["--json"]):
            rc, out, err = cli(self.t, *extra, "keys", "import", "--algorithm=native",
                               stdin=os.urandom(31) + b"\x80")
            self.assertEqual(rc, 0, err)
            self.assertEqual(err, "")
            if extra:
                self.assertEqual(json.loads(out)["warning"], "")
            else:
                self.assertNotIn("warning", out.lower())
        with open(self.audit) as f:
            events = [json.loads(line) for line in f]
        warned = [e for e in events if e["operation"] == "import_warning"]
        self.assertEqual(len(warned), 2, events)
        imports = {e["key_id"]: e for e in events if e["operation"] == "import"}
        for e in warned:
            self.assertIn("weak secret", e["warning"])
            self.assertEqual(imports[e["key_id"]]["revision"], e["revision"])
        with open(self.audit, "rb") as f:
            content = f.read()
        self.assertNotIn(b"mysecret123", content)
        self.assertNotIn(b"change-me-please", content)

    def test_keyrings_are_isolated(self):
        rc, info, err = cli_json(self.t, "keyrings", "create", "shop")
        self.assertEqual(rc, 0, err)
        self.assertEqual(info["revision"], "1")
        rc, _, err = cli(self.t, "keyrings", "create", "shop")
        self.assertEqual(rc, 3)
        self.assertIn("ALREADY_EXISTS", err)
        rc, lst, _ = cli_json(self.t, "keyrings", "list")
        self.assertEqual([k["name"] for k in lst["keyrings"]], ["default", "shop"])
        rc, a, _ = cli_json(self.t, "--keyring=default", "sign", "--payload=a")
        rc, b, _ = cli_json(self.t, "--keyring=shop", "sign", "--payload=b")
        self.assertEqual(cli_json(self.t, "--keyring=default", "verify", a["token"])[1]["result"],
                         "VALID")
        self.assertEqual(cli_json(self.t, "--keyring=shop", "verify", b["token"])[1]["result"],
                         "VALID")
        # Cross-keyring: the key id is unknown there (ids are random and independent).
        rc, v, _ = cli_json(self.t, "--keyring=shop", "verify", a["token"])
        self.assertEqual((rc, v["result"]), (1, "UNKNOWN_KEY"))
        rc, v, _ = cli_json(self.t, "--keyring=default", "verify", b["token"])
        self.assertEqual((rc, v["result"]), (1, "UNKNOWN_KEY"))
        # Rotating one keyring leaves the other alone.
        self.assertEqual(cli(self.t, "--keyring=shop", "keys", "rotate")[0], 0)
        _, states = self.keys("default")
        self.assertEqual(list(states.values()), ["PRIMARY"])

    def test_batch_rpcs(self):
        rc, out, err = cli(self.t, "batch-sign", stdin=b"one\ntwo\nthree\n")
        self.assertEqual(rc, 0, err)
        tokens = out.split()
        self.assertEqual(len(tokens), 3)
        rc, res, _ = cli_json(self.t, "batch-verify",
                              stdin=("\n".join(tokens + ["garbage"]) + "\n").encode())
        self.assertEqual(rc, 1)  # one item is not valid
        results = [i["response"]["result"] for i in res["items"]]
        self.assertEqual(results, ["VALID", "VALID", "VALID", "MALFORMED"])


if __name__ == "__main__":
    harness.require_binaries()
    unittest.main()
