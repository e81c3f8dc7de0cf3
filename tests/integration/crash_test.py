#!/usr/bin/python3
"""Crash safety: SIGKILL the server at random moments during a loop of admin operations
(rotate / promote / disable / enable), restart it each time, and check that

  * the keyring always loads (the server starts),
  * no acknowledged operation is lost: the revision is at least the last acknowledged one,
    and when it equals it the key states are exactly the acknowledged ones (an operation in
    flight at the kill may or may not have landed, never half),
  * every token signed before a kill still verifies: VALID while its key can verify,
    KEY_DISABLED when an operation disabled it; never UNKNOWN_KEY or BAD_SIGNATURE.

Figures are printed at the end (operations, kills, losses). Bounded: ~30 s."""

import os
import random
import tempfile
import threading
import time
import unittest

import harness
from harness import cli, cli_json

OPERATIONS = int(os.environ.get("CRASH_TEST_OPERATIONS", "240"))
KEYRING = "crash"


class CrashTest(unittest.TestCase):
    def test_sigkill_during_admin_operations(self):
        rng = random.Random(int(os.environ.get("CRASH_TEST_SEED", "20261127")))
        with tempfile.TemporaryDirectory() as d:
            data, log = os.path.join(d, "data"), os.path.join(d, "server.log")
            kek = harness.write_kek(os.path.join(d, "kek"))
            args = ["--scheduler_interval=0"]
            server = harness.Server(data, kek, log, args)
            try:
                rc, info, err = cli_json(server.target, "keyrings", "create", KEYRING)
                self.assertEqual(rc, 0, err)
                acked = info  # the last acknowledged KeyringInfo
                tokens = []   # (token, key_id) signed while the server was up
                must_have = None  # (revision, key id) of a rotation acked after `acked`
                ops = kills = losses = unacked = 0
                next_kill = rng.randint(5, 25)
                while ops < OPERATIONS:
                    states = {k["key_id"]: k["state"] for k in acked["keys"]}
                    active = [i for i, s in states.items() if s == "ACTIVE"]
                    disabled = [i for i, s in states.items() if s == "DISABLED"]
                    choice = rng.random()
                    if choice < 0.4 or not (active or disabled):
                        cmd = ["keys", "rotate", "--promote_now"]
                    elif choice < 0.6 and active:
                        cmd = ["keys", "promote", str(rng.choice(active))]
                    elif choice < 0.8 and active:
                        cmd = ["keys", "disable", str(rng.choice(active))]
                    elif disabled:
                        cmd = ["keys", "enable", str(rng.choice(disabled))]
                    else:
                        cmd = ["keys", "rotate", "--promote_now"]
                    if ops % 4 == 0:
                        rc, s, _ = cli_json(server.target, f"--keyring={KEYRING}", "sign",
                                            "--payload=t", "--ttl=1h")
                        if rc == 0:
                            tokens.append((s["token"], s["key_id"]))
                    kill_now = ops == next_kill
                    if kill_now:
                        # SIGKILL at a random instant while this operation is in flight.
                        timer = threading.Timer(rng.uniform(0.0, 0.02), server.proc.kill)
                        timer.start()
                    rc, out, _ = cli_json(server.target, f"--keyring={KEYRING}", *cmd)
                    ops += 1
                    if rc == 0:
                        if cmd[1] == "rotate":
                            # A rotation answers with the new key and revision only.
                            rotated = (int(out["revision"]), out["new_key"]["key_id"])
                            rc2, out, _ = cli_json(server.target, f"--keyring={KEYRING}",
                                                   "keyrings", "get")
                            if rc2 != 0:
                                # Acknowledged, but the read that follows raced the kill:
                                # remember what the acknowledgement promised.
                                must_have = rotated
                                out = None
                        if out is not None:
                            acked, must_have = out, None
                    else:
                        unacked += 1
                    if kill_now:
                        timer.join()
                        server.kill()
                        kills += 1
                        next_kill = ops + rng.randint(5, 25)
                        server = harness.Server(data, kek, log, args)
                        rc, now, err = cli_json(server.target, f"--keyring={KEYRING}",
                                                "keyrings", "get")
                        self.assertEqual(rc, 0, err)
                        rev, acked_rev = int(now["revision"]), int(acked["revision"])
                        now_states = {k["key_id"]: k["state"] for k in now["keys"]}
                        acked_states = {k["key_id"]: k["state"] for k in acked["keys"]}
                        if must_have is not None:
                            if rev < must_have[0] or must_have[1] not in now_states:
                                losses += 1
                            self.assertGreaterEqual(rev, must_have[0])
                            self.assertIn(must_have[1], now_states)
                            acked_rev = must_have[0]
                            must_have = None
                        elif rev < acked_rev or (rev == acked_rev and now_states != acked_states):
                            losses += 1
                        self.assertGreaterEqual(rev, acked_rev, "an acknowledged operation was lost")
                        self.assertLessEqual(rev, acked_rev + 2)
                        if rev == int(acked["revision"]):
                            self.assertEqual(now_states, acked_states)
                        for key_id in acked_states:
                            self.assertIn(key_id, now_states, "a key disappeared")
                        acked = now
                        for token, key_id in tokens:
                            rc, v, _ = cli_json(server.target, f"--keyring={KEYRING}", "verify",
                                                token)
                            want = ("VALID" if now_states[key_id] in ("PRIMARY", "ACTIVE", "STAGED")
                                    else "KEY_DISABLED")
                            self.assertEqual(v["result"], want, f"token of key {key_id}")
                print(f"\ncrash test: {ops} admin operations, {kills} SIGKILLs, "
                      f"{unacked} unacknowledged (in flight at a kill), {len(tokens)} tokens "
                      f"re-verified after every restart, losses = {losses}", flush=True)
                self.assertGreaterEqual(ops, 200)
                self.assertGreaterEqual(kills, 8)
                self.assertEqual(losses, 0)
            finally:
                server.kill()


if __name__ == "__main__":
    harness.require_binaries()
    unittest.main()
