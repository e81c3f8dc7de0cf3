#!/usr/bin/python3
"""Observability through the real binaries: the server with --metrics_listen (loopback, free
port), --log_format=json and --log_calls, driven by the real CLI.

- A known sequence of calls, then /metrics: every counter has exactly the expected value.
- 10,000 distinct garbage tokens add no label value; no token or payload in any scrape.
- Key usage (`keys usage`) after a rotation shows the old key's verifications, then none
  once it is disabled; the audit log warns that the disabled key was still in use.
- Every server log line is one JSON object (time, level, message, fields); no token or
  payload in the log.
- The metric families the server exports are those `--print_metric_names` lists.
"""

import json
import os
import re
import secrets
import subprocess
import tempfile
import unittest

import harness

SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
TOKENS = "sessiontoken.v1.SessionTokens"
ADMIN = "sessiontoken.v1.KeyAdmin"


def parse(text):
    """{(name, frozenset(labels)): value} of every sample in an exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        assert m, f"unparsable sample line {line!r}"
        labels = frozenset(LABEL_RE.findall(m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def listening_ports(pid):
    """TCP ports the process `pid` listens on (from /proc: its sockets in state LISTEN)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                parts = line.split()
                if parts[3] == "0A" and parts[9] in inodes:
                    addr, port = parts[1].rsplit(":", 1)
                    # An IPv4-mapped IPv6 socket (::ffff:127.0.0.1) is 127.0.0.1 too.
                    addr = addr.replace("0000000000000000FFFF0000", "")
                    ports.add((addr, int(port, 16)))
    return ports


def get(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


class MetricsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="sessiontoken-metrics-")
        d = self.tmp.name
        self.audit = os.path.join(d, "audit.jsonl")
        self.server = harness.Server(
            os.path.join(d, "data"), harness.write_kek(os.path.join(d, "kek")),
            os.path.join(d, "server.log"),
            extra_args=["--metrics_listen=127.0.0.1:0", "--log_format=json", "--log_calls",
                        f"--audit_log={self.audit}", "--max_batch_items=10000",
                        "--scheduler_interval=0s"])
        self.T = self.server.target
        # Exactly two listeners, both where they were told: gRPC and metrics on 127.0.0.1.
        metrics_port = int(self.server.metrics_url.rsplit(":", 1)[1].split("/")[0])
        self.assertEqual(listening_ports(self.server.proc.pid),
                         {("0100007F", self.server.port), ("0100007F", metrics_port)})

    def tearDown(self):
        self.assertEqual(self.server.stop(), 0)
        self.tmp.cleanup()

    def cli(self, *args, expect=0, stdin=None):
        rc, out, err = harness.cli(self.T, *args, stdin=stdin)
        self.assertEqual(rc, expect, f"{args}: {out} {err}")
        return out

    def cli_json(self, *args, expect=0, stdin=None):
        return json.loads(self.cli("--json", *args, expect=expect, stdin=stdin))

    def usage(self):
        r = self.cli_json("keys", "usage")
        return {k["key_id"]: k for k in r["keys"]}

    def test_metrics_usage_and_logs(self):
        payloads = [f"payload-{secrets.token_hex(8)}" for _ in range(3)]
        tokens = [self.cli_json("sign", f"--payload={p}", "--ttl=1h", "--audience=web")
                  for p in payloads]
        old = tokens[0]["key_id"]
        for t in tokens[:2]:
            self.cli("verify", t["token"], "--audience=web")
        self.cli("verify", tokens[2]["token"], "--audience=other", expect=1)  # WRONG_AUDIENCE
        self.cli("verify", "not-a-token", "--audience=web", expect=1)         # MALFORMED
        self.cli("health")
        rot = self.cli_json("keys", "rotate", "--promote_now")
        new = rot["new_key"]["key_id"]
        r = self.cli_json("verify", tokens[0]["token"], "--audience=web")
        self.assertTrue(r["refresh_recommended"])
        u = self.usage()
        self.assertEqual(u[old]["verified_last_hour"], "3")  # uint64 in proto JSON
        self.assertEqual(u[old]["verified_last_day"], "3")
        self.assertIn("last_verified_at", u[old])
        self.assertEqual(u[new]["verified_last_hour"], "0")
        self.cli("keys", "disable", str(old))
        self.cli("verify", tokens[1]["token"], "--audience=web", expect=1)     # KEY_DISABLED
        u = self.usage()
        self.assertEqual(u[old]["verified_last_hour"], "3")  # none since it was disabled
        self.assertEqual(u[old]["rejected_disabled_last_day"], "1")
        self.assertEqual(u[old]["state"], "DISABLED")
        self.assertIn(f"{old}", self.cli("keys", "usage"))

        m = parse(self.server.scrape())
        calls = lambda svc, meth, code="OK": get(m, "sessiontoken_rpc_calls_total",
                                                 service=svc, method=meth, code=code)
        self.assertEqual(calls(TOKENS, "Sign"), 3)
        self.assertEqual(calls(TOKENS, "Verify"), 6)
        self.assertEqual(calls(ADMIN, "Rotate"), 1)
        self.assertEqual(calls(ADMIN, "DisableKey"), 1)
        self.assertEqual(calls(ADMIN, "GetKeyUsage"), 3)
        self.assertEqual(calls("grpc.health.v1.Health", "Check"), 1)
        self.assertEqual(get(m, "sessiontoken_rpc_duration_seconds_count",
                             service=TOKENS, method="Verify"), 6)
        res = lambda r: get(m, "sessiontoken_verify_results_total", keyring="default", result=r)
        self.assertEqual(res("VALID"), 3)
        self.assertEqual(res("WRONG_AUDIENCE"), 1)
        self.assertEqual(res("MALFORMED"), 1)
        self.assertEqual(res("KEY_DISABLED"), 1)
        self.assertEqual(res("EXPIRED"), 0)
        self.assertEqual(get(m, "sessiontoken_refresh_recommended_total", keyring="default"), 1)
        per_key = lambda k, r: get(m, "sessiontoken_key_verifications_total",
                                   keyring="default", key_id=str(k), result=r)
        self.assertEqual(per_key(old, "VALID"), 3)
        self.assertEqual(per_key(old, "WRONG_AUDIENCE"), 1)
        self.assertEqual(per_key(old, "KEY_DISABLED"), 1)
        self.assertEqual(get(m, "sessiontoken_key_signed_tokens_total", keyring="default",
                             key_id=str(old)), 3)
        self.assertEqual(get(m, "sessiontoken_keyring_primary_key_id", keyring="default"), new)
        self.assertEqual(get(m, "sessiontoken_keyring_revision", keyring="default"), 3)
        for op in ("rotate", "disable"):
            self.assertEqual(get(m, "sessiontoken_keyring_changes_total", keyring="default",
                                 operation=op), 1)
        self.assertGreater(get(m, "process_resident_memory_bytes"), 0)
        for (name, _), _ in m.items():
            if name.startswith("sessiontoken_store_"):
                self.fail("the file store exports no store_* metrics")

        # 10,000 distinct garbage tokens: only counts move, no new series.
        self.cli("--audience=web", "batch-verify", stdin=b"warm-up\n", expect=1)
        before = parse(self.server.scrape())
        garbage = [f"st1.{secrets.token_urlsafe(40)}" if i % 2 else f"junk{i}-{secrets.token_hex(6)}"
                   for i in range(10000)]
        self.cli("--audience=web", "batch-verify", stdin="\n".join(garbage).encode(), expect=1)
        text = self.server.scrape()
        after = parse(text)
        self.assertEqual({k for k in after if not k[0].startswith(("process_", "exposer_"))},
                         {k for k in before if not k[0].startswith(("process_", "exposer_"))})
        bad = lambda s: sum(get(s, "sessiontoken_verify_results_total", keyring="default",
                                result=r) for r in ("MALFORMED", "UNKNOWN_KEY", "BAD_SIGNATURE"))
        self.assertEqual(bad(after) - bad(before), 10000)
        for g in garbage[:50] + garbage[-50:]:
            self.assertNotIn(g, text)
        for t, p in zip(tokens, payloads):
            self.assertNotIn(t["token"], text)
            self.assertNotIn(p, text)

        # The families exported are in the server's own list.
        names = subprocess.run([harness.SERVER_BIN, "--print_metric_names"], check=True,
                               capture_output=True, text=True).stdout.split()
        exported = {n for n, _ in after}
        for n in exported:
            base = re.sub(r"_(bucket|sum|count)$", "", n)
            if not n.startswith("exposer_"):
                self.assertTrue(n in names or base in names, n)

        # The audit log warned that the disabled key was still in use.
        with open(self.audit) as f:
            events = [json.loads(line) for line in f]
        disable = [e for e in events if e["operation"] == "disable"]
        self.assertEqual(len(disable), 1)
        self.assertIn(f"key {old} was still in use", disable[0].get("warning", ""))

        # JSON logs: one object per line, per-call lines, no token or payload.
        log = self.server.log()
        lines = log.splitlines()
        self.assertTrue(lines)
        call_lines = 0
        for line in lines:
            obj = json.loads(line)
            self.assertEqual(sorted(obj), ["fields", "level", "message", "time"], line)
            if obj["message"] == "call":
                call_lines += 1
                self.assertEqual(sorted(obj["fields"]), ["code", "latency_us", "method"])
        self.assertEqual(call_lines, 17)  # one per RPC this test made
        self.assertTrue(any("still in use" in json.loads(l)["message"] for l in lines))
        for t, p in zip(tokens, payloads):
            self.assertNotIn(t["token"], log)
            self.assertNotIn(p, log)
        self.assertNotIn(garbage[1], log)

    def test_metrics_listener_off_by_default_and_address_checked(self):
        d = self.tmp.name
        kek = harness.write_kek(os.path.join(d, "kek2"))
        plain = harness.Server(os.path.join(d, "data2"), kek, os.path.join(d, "plain.log"))
        try:
            self.assertIsNone(plain.metrics_url)
            # Only the gRPC port listens, on 127.0.0.1 (0100007F in /proc/net/tcp).
            self.assertEqual(listening_ports(plain.proc.pid), {("0100007F", plain.port)})
        finally:
            self.assertEqual(plain.stop(), 0)
        for bad in ("9464", ":9464", "127.0.0.1:notaport"):
            p = subprocess.run([harness.SERVER_BIN, "--listen=127.0.0.1:0",
                                f"--data_dir={os.path.join(d, 'data3')}", f"--kek_file={kek}",
                                f"--metrics_listen={bad}"], capture_output=True, text=True,
                               timeout=20, env=harness.child_env())
            self.assertNotEqual(p.returncode, 0, bad)
            self.assertIn("metrics_listen", p.stderr)
            self.assertNotIn("listening", p.stdout)


if __name__ == "__main__":
    harness.require_binaries()
    unittest.main()
