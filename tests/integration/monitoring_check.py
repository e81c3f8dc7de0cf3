#!/usr/bin/python3
"""deploy/monitoring/ checked against the real server: the alert rules pass `promtool check
rules` (Debian's prometheus package); the Grafana dashboard parses, each of its queries is
valid PromQL (checked by promtool as a recording rule, Grafana variables substituted), and
every metric name in the rules and the dashboard is one the server exports
(`sessiontoken-server --print_metric_names`). Standard library only."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import harness

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MON = os.path.join(ROOT, "deploy", "monitoring")
NAME_RE = re.compile(r"\b((?:sessiontoken|process)_[a-z0-9_]+)\b")
GRAFANA_VARS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def exported_names():
    out = subprocess.run([harness.SERVER_BIN, "--print_metric_names"], check=True,
                         capture_output=True, text=True, timeout=30).stdout.split()
    assert len(out) >= 20, out
    return set(out)


def unknown_names(text, names):
    bad = set()
    for n in NAME_RE.findall(text):
        base = re.sub(r"_(bucket|sum|count)$", "", n)
        if n not in names and base not in names:
            bad.add(n)
    return bad


def promtool(path):
    exe = shutil.which("promtool")
    if exe is None:
        raise AssertionError("promtool not found: apt-get install prometheus "
                             "(scripts/install-deps.sh installs it)")
    return subprocess.run([exe, "check", "rules", path], capture_output=True, text=True,
                          timeout=60)


def panel_targets(panels):
    for p in panels:
        yield p, p.get("targets", [])
        yield from panel_targets(p.get("panels", []))


class MonitoringCheck(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.names = exported_names()

    def test_alert_rules(self):
        path = os.path.join(MON, "alerts.yml")
        r = promtool(path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS", r.stdout)
        with open(path) as f:
            text = f.read()
        self.assertEqual(unknown_names(text, self.names), set())
        for alert in ("SessiontokenErrorRate", "SessiontokenStaleSnapshot",
                      "SessiontokenRotationOverdue", "SessiontokenKeyInUseAboutToBeDisabled",
                      "SessiontokenKeyInUseAboutToBeDestroyed"):
            self.assertIn(f"alert: {alert}", text)

    def test_dashboard(self):
        with open(os.path.join(MON, "dashboard.json")) as f:
            dash = json.load(f)
        exprs = []
        titles = []
        for p, targets in panel_targets(dash["panels"]):
            titles.append(p.get("title", ""))
            if p.get("type") == "row":
                continue
            self.assertTrue(targets, f"panel {p.get('title')!r} has no query")
            for t in targets:
                self.assertTrue(NAME_RE.search(t["expr"]), t["expr"])
                exprs.append(t["expr"])
        for v in dash["templating"]["list"]:
            if v.get("type") == "query":
                exprs.append(v["definition"])
        bad = set()
        for e in exprs:
            bad |= unknown_names(e, self.names)
        self.assertEqual(bad, set())
        text = " ".join(titles).lower()
        for topic in ("calls", "latency", "verify results", "key usage", "rotations"):
            self.assertIn(topic, text)
        # Every query is valid PromQL: promtool checks them as recording rules.
        rules = ["groups:", "  - name: dashboard", "    rules:"]
        for i, e in enumerate(x for x in exprs if not x.startswith("label_values(")):
            for var, val in GRAFANA_VARS.items():
                e = e.replace(var, val)
            e = re.sub(r"\$\{?[a-z_]+\}?", "x", e)
            rules += [f"      - record: dashboard:query{i}", f"        expr: {json.dumps(e)}"]
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
            f.write("\n".join(rules) + "\n")
        try:
            r = promtool(f.name)
        finally:
            os.unlink(f.name)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_checker_catches_unknown_names(self):
        self.assertEqual(unknown_names("rate(sessiontoken_nope_total[5m])", self.names),
                         {"sessiontoken_nope_total"})
        self.assertEqual(unknown_names("sessiontoken_rpc_duration_seconds_bucket", self.names),
                         set())


if __name__ == "__main__":
    harness.require_binaries()
    unittest.main()
