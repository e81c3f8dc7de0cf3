"""Clients in a cluster (issue 15, item 3), against real servers on loopback:

- the Python, Node and C++ clients accept `dns:///name:port` targets;
- they balance calls round_robin over every address the target resolves to, as the shared
  service config (proto/sessiontoken/v1/service_config.json) says. Two servers with their own
  keys listen on 127.0.0.1:P and 127.0.0.2:P; a target resolving to both (`ipv4:` lists them,
  as a headless Service's DNS name lists its pods) must spread calls over both: the tokens a
  client signed must include some that only the first server verifies and some that only the
  second does. With gRPC's default pick_first every call would go to the first server;
- the server's --max_connection_age closes connections (GOAWAY) so that clients reconnect
  (and re-resolve), and no call fails because of it.

Needs SESSIONTOKEN_SERVER, SESSIONTOKEN_PROBE (tests/e2e/balancing_probe.cc),
SESSIONTOKEN_PY_STUBS, SESSIONTOKEN_NODE (CTest sets them)."""

import base64
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
sys.path.insert(0, os.path.join(REPO, "client", "python"))
import harness  # noqa: E402 (tests/integration/harness.py: the real server on loopback)

PROBE = os.environ.get("SESSIONTOKEN_PROBE", "")
NODE = os.environ.get("SESSIONTOKEN_NODE", "node")
CALLS = 12
MAX_CALLS = 5000  # and 20 s: how long a client may take to reach both servers

NODE_SCRIPT = r"""
const { Client } = require(process.argv[1]);
(async () => {
  const [count, max] = [Number(process.argv[3]), Number(process.argv[4])];
  const token = process.argv[5] || undefined;
  const c = new Client({ address: process.argv[2], keyring: 'default', token });
  const tokens = [];
  const keyIds = new Set();
  const deadline = Date.now() + 20000;
  for (let i = 0; i < max; i++) {
    if (i >= count && (keyIds.size >= 2 || Date.now() > deadline)) break;
    const t = (await c.sign({ payload: Buffer.from('node ' + i), ttlSeconds: 600 })).token;
    keyIds.add(Buffer.from(t.split('.')[1].slice(0, 8), 'base64url').toString('hex', 0, 4));
    tokens.push(t);
  }
  c.close();
  console.log(JSON.stringify(tokens));
})().catch((e) => { console.error(e); process.exit(1); });
"""


def key_id(token):
    """The key id of a native token: the first 4 bytes of its body (docs/token-format.md)."""
    return base64.urlsafe_b64decode(token.split(".", 1)[1][:8])[:4]


class TwoServers:
    """Servers with separate data dirs and KEKs (so separate keys) on 127.0.0.1:P and
    127.0.0.2:P (the same port on two loopback addresses)."""

    def __init__(self, tmp, extra_args=()):
        self.servers = []
        a = self._start(tmp, "a", "127.0.0.1:0", extra_args)
        for attempt in range(5):  # P may be taken on 127.0.0.2 by something else
            try:
                b = self._start(tmp, f"b{attempt}", f"127.0.0.2:{a.port}", extra_args)
                break
            except RuntimeError:
                a.stop()
                self.servers.clear()
                a = self._start(tmp, f"a{attempt}", "127.0.0.1:0", extra_args)
        else:
            raise RuntimeError("no port free on both 127.0.0.1 and 127.0.0.2")
        self.a, self.b, self.port = a, b, a.port

    def _start(self, tmp, name, listen, extra_args):
        d = os.path.join(tmp, name)
        os.makedirs(d)
        s = harness.Server(os.path.join(d, "data"), harness.write_kek(os.path.join(d, "kek")),
                           os.path.join(d, "log"), extra_args=extra_args, listen=listen)
        self.servers.append(s)
        return s

    def stop(self):
        for s in self.servers:
            s.stop()


class ClientBalancingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.require_binaries()
        if not PROBE or not os.access(PROBE, os.X_OK):
            raise SystemExit("set SESSIONTOKEN_PROBE to the built balancing_probe (CTest does)")
        import sessiontoken
        cls.sessiontoken = sessiontoken
        cls.tmp = tempfile.TemporaryDirectory(prefix="sessiontoken-lb-")
        cls.two = TwoServers(cls.tmp.name)
        cls.both = f"ipv4:127.0.0.1:{cls.two.port},127.0.0.2:{cls.two.port}"
        cls.at_a = sessiontoken.Client(cls.two.a.target)
        cls.at_b = sessiontoken.Client(cls.two.b.target)

    @classmethod
    def tearDownClass(cls):
        cls.at_a.close()
        cls.at_b.close()
        cls.two.stop()
        cls.tmp.cleanup()

    def signed_by(self, tokens):
        """{"a": n, "b": m}: which server signed each token (each must verify at exactly one)."""
        count = {"a": 0, "b": 0}
        for t in tokens:
            valid_a = self.at_a.verify(t).result == self.sessiontoken.Result.VALID
            valid_b = self.at_b.verify(t).result == self.sessiontoken.Result.VALID
            self.assertNotEqual(valid_a, valid_b, f"token {t[:20]}... verified at both or none")
            count["a" if valid_a else "b"] += 1
        return count

    def assert_spread(self, tokens, who):
        self.assertGreaterEqual(len(tokens), CALLS, who)
        self.assertLessEqual(len(tokens), MAX_CALLS, who)
        count = self.signed_by(tokens)
        self.assertGreater(count["a"], 0, f"{who}: no call reached 127.0.0.1 ({count})")
        self.assertGreater(count["b"], 0, f"{who}: no call reached 127.0.0.2 ({count})")

    # --- the Python client -----------------------------------------------------------------
    def python_sign(self, target, n, most):
        """n tokens, then more (up to `most` and 20 s) until they carry two key ids."""
        tokens, key_ids, deadline = [], set(), time.monotonic() + 20
        with self.sessiontoken.Client(target) as c:
            while len(tokens) < most:
                if len(tokens) >= n and (len(key_ids) >= 2 or time.monotonic() > deadline):
                    break
                tokens.append(c.sign(f"py {len(tokens)}", 600).token)
                key_ids.add(key_id(tokens[-1]))
        return tokens

    def test_python_round_robin(self):
        self.assert_spread(self.python_sign(self.both, CALLS, MAX_CALLS), "python")

    def test_python_dns_target(self):
        tokens = self.python_sign(f"dns:///localhost:{self.two.port}", 3, 3)
        self.assertEqual(self.signed_by(tokens)["a"], 3)  # localhost is 127.0.0.1

    # --- the Node client -------------------------------------------------------------------
    def node_sign(self, target, n, most):
        p = subprocess.run([NODE, "-e", NODE_SCRIPT, os.path.join(REPO, "client", "node"),
                            target, str(n), str(most), ""], capture_output=True, text=True, timeout=60,
                           env=harness.child_env())
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def test_node_round_robin(self):
        self.assert_spread(self.node_sign(self.both, CALLS, MAX_CALLS), "node")

    def test_node_dns_target(self):
        tokens = self.node_sign(f"dns:///localhost:{self.two.port}", 3, 3)
        self.assertEqual(self.signed_by(tokens)["a"], 3)

    # --- the C++ client (library of the CLI) -----------------------------------------------
    def cpp_sign(self, target, n, most):
        p = subprocess.run([PROBE, target, str(n), str(most)], capture_output=True, text=True, timeout=60,
                           env=harness.child_env())
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.split()

    def test_cpp_round_robin(self):
        self.assert_spread(self.cpp_sign(self.both, CALLS, MAX_CALLS), "c++")

    def test_cpp_dns_target(self):
        tokens = self.cpp_sign(f"dns:///localhost:{self.two.port}", 3, 3)
        self.assertEqual(self.signed_by(tokens)["a"], 3)
        rc, out, err = harness.cli(f"dns:///localhost:{self.two.port}", "health")
        self.assertEqual(rc, 0, err)


class ApiTokenTest(unittest.TestCase):
    """The Python and Node clients' `token` option: sent as a bearer token on every call, as
    frontends in the cluster must (deploy/k8s: the server requires API tokens)."""

    @classmethod
    def setUpClass(cls):
        import hashlib
        import sessiontoken
        harness.require_binaries()
        cls.sessiontoken = sessiontoken
        cls.tmp = tempfile.TemporaryDirectory(prefix="sessiontoken-token-")
        cls.token = os.urandom(32).hex()
        config = os.path.join(cls.tmp.name, "server.textproto")
        with open(config, "w") as f:
            f.write('auth { api_tokens { identity: "fe" sha256: "%s" }\n'
                    '  rules { identity: "token:fe" keyrings: "*" roles: SIGN roles: VERIFY } }\n'
                    % hashlib.sha256(cls.token.encode()).hexdigest())
        cls.server = harness.Server(os.path.join(cls.tmp.name, "data"),
                                    harness.write_kek(os.path.join(cls.tmp.name, "kek")),
                                    os.path.join(cls.tmp.name, "log"),
                                    extra_args=[f"--config={config}"])
        cls.dns = f"dns:///localhost:{cls.server.port}"

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.tmp.cleanup()

    def test_python_token(self):
        with self.sessiontoken.Client(self.dns, token=self.token) as c:
            self.assertEqual(c.verify(c.sign("x", 60).token).result, self.sessiontoken.Result.VALID)
        for token in (None, "wrong"):
            with self.sessiontoken.Client(self.dns, token=token) as c:
                with self.assertRaises(self.sessiontoken.ServiceError) as e:
                    c.sign("x", 60)
                self.assertEqual(e.exception.code.name, "UNAUTHENTICATED")

    def test_node_token(self):
        def run(token):
            return subprocess.run([NODE, "-e", NODE_SCRIPT, os.path.join(REPO, "client", "node"),
                                   self.dns, "2", "2", token], capture_output=True, text=True,
                                  timeout=60, env=harness.child_env())
        ok = run(self.token)
        self.assertEqual(ok.returncode, 0, ok.stderr)
        self.assertEqual(len(json.loads(ok.stdout)), 2)
        refused = run("wrong")
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("UNAUTHENTICATED", refused.stderr)


class MaxConnectionAgeTest(unittest.TestCase):
    """--max_connection_age=1s: the server sends GOAWAY about every second; a client that
    keeps calling sees its connection close and reconnects, and every call succeeds."""

    def test_connections_are_recycled_without_failed_calls(self):
        harness.require_binaries()
        with tempfile.TemporaryDirectory(prefix="sessiontoken-age-") as tmp:
            server = harness.Server(os.path.join(tmp, "data"),
                                    harness.write_kek(os.path.join(tmp, "kek")),
                                    os.path.join(tmp, "log"),
                                    extra_args=["--max_connection_age=1s",
                                                "--shutdown_grace=2s"])
            try:
                self.assertGreaterEqual(self.ready_periods(server.target), 3)
            finally:
                self.assertEqual(server.stop(), 0)

    @staticmethod
    def ready_periods(target):
        """Calls health on one channel (gRPC's default pick_first, so the channel's state is
        its one connection's) until it has been READY three separate times, at most 20 s;
        returns how many READY periods (connections) it went through. Every call must
        succeed: a health call that fails raises."""
        import grpc
        import sessiontoken
        states, lock = [], threading.Lock()

        def seen(state):
            with lock:
                if not states or states[-1] != state:
                    states.append(state)

        channel = grpc.insecure_channel(target)
        channel.subscribe(seen, try_to_connect=True)
        client = sessiontoken.Client(target, channel=channel)
        end = time.monotonic() + 20
        try:
            while time.monotonic() < end:
                assert client.health() == "SERVING"
                with lock:
                    ready = states.count(grpc.ChannelConnectivity.READY)
                if ready >= 3:
                    break
                time.sleep(0.05)
        finally:
            channel.unsubscribe(seen)
            client.close()
            channel.close()
        return ready


if __name__ == "__main__":
    unittest.main(verbosity=2)
