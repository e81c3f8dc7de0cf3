#!/usr/bin/python3
"""Replicated keyrings on etcd, end to end (issue 12): a 3-member etcd cluster on loopback and
3 real sessiontoken-server replicas on it. ha_probe (tests/integration/ha_probe.cc) signs on
every replica in turn and verifies each token on the others right away, and polls every
replica's keyring tightly, while the policy rotates every 2 s (stage lead time 0: a key is
promoted as soon as every live replica has it) and the test injects, one after another:

  * SIGKILL of a replica while a new key is staged, then its restart;
  * SIGKILL of the etcd leader, then its restart;
  * SIGSTOP of a replica past its presence lease (a promotion proceeds without it), SIGCONT:
    a token of the new primary gets VALID or UNAVAILABLE from it, never UNKNOWN_KEY;
  * a replica cut off etcd (it knows one member, which is frozen): the same;
  * concurrent admin changes sent to all replicas at once (staged rotations, policy
    changes, rotations with promote_now while no token is in flight);
  * every etcd member frozen: Sign/Verify keep working, admin calls fail UNAVAILABLE
    naming etcd, and everything resumes when etcd does;
  * a damaged value, a sealed value of another keyring and keys naming no keyring written
    under the prefix: reported in every replica's log, nothing crashes, the last good copy
    keeps verifying, and the next good write is picked up.

Checked: 0 false rejections (a definitive non-VALID answer for a fresh token) and every token
VALID on some replica (UNAVAILABLE from a replica that may be behind is counted); every new
key reaches every replica; >= 50 rotations; each scheduler transition happened once (key
creation times and the replicas' audit logs); each acknowledged admin change is in the final
keyring. Printed: rotations, tokens, verifications, rejections, UNAVAILABLE answers, fault
events, and the latency (p50/p99) from the first replica showing a new key to each other one.
Bounded: about 3 minutes. Standard library only; $ETCD_BIN overrides /usr/bin/etcd."""

import base64
import calendar
import collections
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

import harness
from harness import cli, cli_json
from localproc import free_ports

ETCD_BIN = os.environ.get("ETCD_BIN", "/usr/bin/etcd")
PROBE_BIN = os.environ.get("SESSIONTOKEN_HA_PROBE", "")
PREFIX = "/sessiontoken/"
KEYRING = "ha"
PERIOD = 2.0          # rotation_period of the test keyring, seconds
PRESENCE_TTL = 3      # seconds
MIN_ROTATIONS = 50
LIVENESS = 15.0       # generous bound for anything that must happen "soon"
# Every child dies with the test, even when CTest kills it.
PDEATHSIG = ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []


def wait_for(what, predicate, timeout=LIVENESS, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value is not None and value is not False:  # 0 is an answer (a member index)
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def b64(data):
    return base64.b64encode(data if isinstance(data, bytes) else data.encode()).decode()


class Etcd:
    """A 3-member etcd cluster on loopback (client and peer ports picked free)."""

    NAMES = ("a", "b", "c")

    def __init__(self, root):
        self.root = root
        ports = free_ports(6)
        self.client_ports, self.peer_ports = ports[:3], ports[3:]
        self.procs = [None] * 3
        self.stopped = [False] * 3
        self.cluster = ",".join(f"{n}=http://127.0.0.1:{p}"
                                for n, p in zip(self.NAMES, self.peer_ports))

    def endpoint(self, i):
        return f"127.0.0.1:{self.client_ports[i]}"

    def start(self, i):
        client, peer = f"http://{self.endpoint(i)}", f"http://127.0.0.1:{self.peer_ports[i]}"
        log = open(os.path.join(self.root, f"etcd-{self.NAMES[i]}.log"), "ab")
        self.procs[i] = subprocess.Popen(
            PDEATHSIG + [ETCD_BIN, "--name", self.NAMES[i],
                         "--data-dir", os.path.join(self.root, f"etcd-{self.NAMES[i]}"),
                         "--listen-client-urls", client, "--advertise-client-urls", client,
                         "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                         "--initial-cluster", self.cluster, "--initial-cluster-state", "new",
                         "--initial-cluster-token", self.root, "--logger", "zap",
                         "--log-level", "warn",
                         "--listen-metrics-urls", f"http://127.0.0.1:{free_ports(1)[0]}"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=harness.child_env())
        log.close()
        self.stopped[i] = False

    def kill(self, i):
        p = self.procs[i]
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGCONT)
            p.kill()
            p.wait()
        self.stopped[i] = False

    def freeze(self, i):
        self.procs[i].send_signal(signal.SIGSTOP)
        self.stopped[i] = True

    def thaw(self, i):
        self.procs[i].send_signal(signal.SIGCONT)
        self.stopped[i] = False

    def live(self):
        return [i for i in range(3)
                if self.procs[i] is not None and self.procs[i].poll() is None
                and not self.stopped[i]]

    def call(self, i, path, body, timeout=2.0):
        """etcd's JSON gateway (the v3 API over HTTP): no etcdctl needed."""
        req = urllib.request.Request(f"http://{self.endpoint(i)}{path}",
                                     data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=timeout) as r:
            return json.loads(r.read())

    def any_call(self, path, body):
        last = None
        for i in self.live():
            try:
                return self.call(i, path, body)
            except OSError as e:
                last = e
        raise AssertionError(f"no etcd member answered {path}: {last}")

    def put(self, key, value):
        self.any_call("/v3/kv/put", {"key": b64(key), "value": b64(value)})

    def get(self, key):
        r = self.any_call("/v3/kv/range", {"key": b64(key)})
        kvs = r.get("kvs", [])
        return base64.b64decode(kvs[0]["value"]) if kvs else None

    def delete(self, key):
        self.any_call("/v3/kv/deleterange", {"key": b64(key)})

    def healthy(self, i):
        try:
            self.call(i, "/v3/kv/range", {"key": b64("health")}, timeout=1.0)
            return True
        except OSError:
            return False

    def leader(self):
        """Index of the member that leads, asked of every live member."""
        ids = {}
        leaders = set()
        self.last_status = []
        for i in self.live():
            try:
                st = self.call(i, "/v3/maintenance/status", {}, timeout=5.0)
            except (OSError, ValueError) as e:
                self.last_status.append((i, repr(e)))
                continue
            self.last_status.append((i, st.get("header", {}).get("member_id"), st.get("leader")))
            ids[st["header"]["member_id"]] = i
            leaders.add(st.get("leader"))
        found = [ids[l] for l in leaders if l in ids]
        return found[0] if len(found) == 1 and len(leaders) == 1 else None

    def stop_all(self):
        for i in range(3):
            self.kill(i)


class Replica:
    """One sessiontoken-server on the etcd store, on a fixed port (kept across restarts)."""

    def __init__(self, index, root, kek, endpoints):
        self.index, self.root, self.kek = index, root, kek
        self.id = f"r{index}"
        self.port = free_ports(1)[0]
        self.target = f"127.0.0.1:{self.port}"
        self.endpoints = endpoints
        self.log_path = os.path.join(root, f"replica-{self.id}.log")
        self.audit_path = os.path.join(root, f"audit-{self.id}.jsonl")
        self.proc = None

    def start(self):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            PDEATHSIG + [harness.SERVER_BIN, f"--listen={self.target}", f"--kek_file={self.kek}",
                         "--store=etcd", f"--etcd_endpoints={','.join(self.endpoints)}",
                         f"--replica_id={self.id}", f"--presence_ttl={PRESENCE_TTL}s",
                         "--resync_interval=10s", "--scheduler_interval=100ms",
                         f"--audit_log={self.audit_path}", "--default_keyring="],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
            env=harness.child_env())
        log.close()

    def serving(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"replica {self.id} exited ({self.proc.returncode}):\n"
                                 + self.log()[-3000:])
        return cli(self.target, "health", timeout=5)[0] == 0

    def wait_serving(self):
        wait_for(f"replica {self.id} SERVING", self.serving, interval=0.1)

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.alive():
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()

    def stop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"replica {self.id} did not stop on SIGTERM")
        return self.proc.returncode


class Probe:
    """ha_probe running against every replica; its event lines become live state."""

    def __init__(self, targets, log_path):
        self.proc = subprocess.Popen(
            PDEATHSIG + [PROBE_BIN, f"--targets={','.join(targets)}", f"--keyring={KEYRING}"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=harness.child_env(), text=True, bufsize=1)
        self.log = open(log_path, "w")
        self.cv = threading.Condition()
        self.first_seen = {}             # key id -> (t, replica)
        self.seen = collections.defaultdict(dict)   # replica -> key id -> t first shown
        self.state = collections.defaultdict(dict)  # replica -> key id -> state
        self.primary_at = {}             # key id -> t it was first shown PRIMARY anywhere
        self.problems = []               # REJECT / ERROR / UNVERIFIED lines
        self.stats = {}
        self.summary = None
        self.markers = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.log.write(line)
            f = line.split()
            if not f:
                continue
            with self.cv:
                if f[0] in ("KEY", "STATE"):
                    r, key, state, t = int(f[1]), int(f[2]), f[3], int(f[4])
                    if f[0] == "KEY":
                        self.seen[r][key] = t
                        self.first_seen.setdefault(key, (t, r))
                    self.state[r][key] = state
                    if state == "PRIMARY":
                        self.primary_at.setdefault(key, t)
                elif f[0] in ("REJECT", "ERROR", "UNVERIFIED"):
                    self.problems.append(line.strip())
                elif f[0] in ("STATS", "SUMMARY"):
                    counts = dict(kv.split("=", 1) for kv in f[1:])
                    self.stats = {k: int(v) for k, v in counts.items()}
                    if f[0] == "SUMMARY":
                        self.summary = self.stats
                elif f[0] in ("PAUSED", "RESUMED"):
                    self.markers.put(f[0])
                self.cv.notify_all()
        self.log.flush()

    def command(self, cmd, marker=None):
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        if marker:
            got = self.markers.get(timeout=LIVENESS)
            assert got == marker, (cmd, got)

    def wait(self, what, predicate, timeout=LIVENESS):
        with self.cv:
            if not self.cv.wait_for(predicate, timeout=timeout):
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
            return predicate()

    def primaries(self):
        with self.cv:
            return len(self.primary_at)

    def current_primary(self, r):
        with self.cv:
            ids = [k for k, s in self.state[r].items() if s == "PRIMARY"]
            return ids[0] if len(ids) == 1 else None

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.command("stop")
            except (BrokenPipeError, OSError):
                pass
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(timeout=10)
        for f in (self.proc.stdin, self.proc.stdout, self.log):
            f.close()


def verify_loop(target, token, seconds, until_valid=False):
    """Verifies `token` on one replica every 5 ms (no retries); returns (answers, first
    VALID after ms or -1, last error)."""
    p = subprocess.run(PDEATHSIG + [PROBE_BIN, f"--targets={target}", f"--keyring={KEYRING}",
                                    f"--verify_token={token}", f"--verify_for={seconds}s",
                                    f"--until_valid={'true' if until_valid else 'false'}"],
                       capture_output=True, text=True, timeout=seconds + 30,
                       env=harness.child_env())
    m = re.match(r"VERIFY first_valid_ms=(-?\d+) answers=(\S*) last_error=(.*)", p.stdout)
    assert m, p.stdout + p.stderr
    answers = dict((a.split(":")[0], int(a.split(":")[1])) for a in m.group(2).split(",") if a)
    return answers, int(m.group(1)), m.group(3)


def percentile(values, q):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


class HaReplicasTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ha-replicas-")
        self.etcd = Etcd(self.tmp)
        self.replicas = []
        self.probe = None
        self.events = []          # (t monotonic, text)
        self.disturbed = collections.defaultdict(list)  # replica -> [(start, end)]
        self.manual_keys = set()  # key ids created by admin calls (not the scheduler)
        self.aborted = 0          # concurrent admin calls that lost their races
        # Wall-clock windows in which a committed scheduler transition may lack its audit
        # line: its replica was SIGKILLed after the write, or etcd applied a write whose
        # caller had given up (UNAVAILABLE) when etcd resumed.
        self.unaudited_windows = []

    def tearDown(self):
        try:
            if self.probe is not None:
                self.probe.stop()
        finally:
            for r in self.replicas:
                r.kill()
            self.etcd.stop_all()
            if os.environ.get("HA_TEST_KEEP"):
                print(f"kept {self.tmp}")
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)

    def event(self, text):
        self.events.append((time.monotonic_ns(), text))
        print(f"  [{time.strftime('%H:%M:%S')}] {text}", flush=True)

    def disturb(self, replicas, start, end=None):
        for r in replicas:
            self.disturbed[r].append((start, end or time.monotonic_ns()))

    def sign(self, replica, keyring=KEYRING):
        rc, out, err = cli_json(replica.target, f"--keyring={keyring}", "sign",
                                "--payload=checked", "--ttl=20s")
        self.assertEqual(rc, 0, err)
        return out["token"], int(out["key_id"])

    def keyring(self, replica, keyring=KEYRING):
        rc, out, err = cli_json(replica.target, f"--keyring={keyring}", "keyrings", "get")
        self.assertEqual(rc, 0, err)
        return out

    def new_key_staged_after(self, t0):
        """A key first shown after t0 (monotonic ns), or None."""
        with self.probe.cv:
            keys = sorted((t, k) for k, (t, _) in self.probe.first_seen.items() if t > t0)
        return keys[0][1] if keys else None

    def wait_promoted_without(self, r, t0):
        """Waits for a key first shown 200 ms after t0 (replica r was out by then: it cannot
        have loaded it, so the promotion went ahead without it) to be PRIMARY on the other
        replicas; returns its id."""
        others = [i for i in range(3) if i != r]
        t0 += 200_000_000

        def done():
            for key, (t, _) in self.probe.first_seen.items():
                if t > t0 and all(self.probe.state[o].get(key) == "PRIMARY" for o in others):
                    return key
            return None
        return self.probe.wait(f"a promotion without replica r{r}", done, timeout=30)

    def wait_rotations(self, n):
        target = self.probe.primaries() + n
        self.probe.wait(f"{n} more rotations", lambda: len(self.probe.primary_at) >= target,
                        timeout=n * PERIOD + 30)

    def wait_caught_up(self, r):
        """Replica r shows the primary the others show."""
        def same():
            p = [self.probe.current_primary(i) for i in range(3)]
            return p[r] is not None and p.count(p[r]) == 3
        wait_for(f"replica r{r} to show the current primary", same, timeout=30)

    # The faults, in order. Each leaves every process running when it returns.

    def fault_kill_replica_mid_rotation(self):
        r = 1
        t0 = time.monotonic_ns()
        key = self.probe.wait("a new staged key",
                              lambda: self.new_key_staged_after(t0), timeout=10)
        self.replicas[r].kill()
        start = time.monotonic_ns()
        self.unaudited_windows.append((time.time() - 3, time.time() + 1))
        with self.probe.cv:
            staged_state = {i: self.probe.state[i].get(key) for i in range(3)}
        self.event(f"SIGKILL replica r{r} while key {key} is staged (states seen: "
                   f"{staged_state})")
        self.probe.wait(f"key {key} promoted on r0 and r2 without r{r}",
                        lambda: all(self.probe.state[i].get(key) in ("PRIMARY", "ACTIVE")
                                    for i in (0, 2)), timeout=30)
        self.replicas[r].start()
        self.replicas[r].wait_serving()
        self.wait_caught_up(r)
        self.disturb([r], start)
        self.event(f"replica r{r} restarted, serving, caught up")

    def fault_kill_etcd_leader(self):
        try:
            leader = wait_for("an etcd leader", self.etcd.leader, timeout=30, interval=0.5)
        except AssertionError as e:
            raise AssertionError(f"{e}; members said {self.etcd.last_status}") from None
        start = time.monotonic_ns()
        self.etcd.kill(leader)
        self.event(f"SIGKILL etcd leader {Etcd.NAMES[leader]}")
        if leader == 2:  # replica r2 knows only member c: it is cut off meanwhile
            self.wait_promoted_without(2, start)
        else:
            self.wait_rotations(3)
        self.etcd.start(leader)
        wait_for("the etcd member back", lambda: self.etcd.healthy(leader))
        self.wait_rotations(2)
        self.disturb([0, 1, 2], start)  # every replica saw a leader election
        self.event(f"etcd member {Etcd.NAMES[leader]} restarted; 2 more rotations done")

    def check_new_primary_on(self, r, what):
        """A token of the primary the others promoted meanwhile, on replica r: only VALID or
        UNAVAILABLE (catching up), never a rejection. Returns the answers."""
        token, key = self.sign(self.replicas[0])
        answers, _, last_error = verify_loop(self.replicas[r].target, token, 0.5)
        self.event(f"{what}: token of new primary {key} on r{r}: {answers}")
        self.assertLessEqual(set(answers), {"VALID", "BEHIND"}, last_error)
        return token, key, answers

    def fault_sigstop_replica(self):
        r = 2
        start = time.monotonic_ns()
        self.replicas[r].proc.send_signal(signal.SIGSTOP)
        self.event(f"SIGSTOP replica r{r} (presence TTL {PRESENCE_TTL}s)")
        key = self.wait_promoted_without(r, start)
        self.event(f"key {key} promoted without r{r}")
        token, key = self.sign(self.replicas[0])
        self.replicas[r].proc.send_signal(signal.SIGCONT)
        answers, first_valid, last_error = verify_loop(self.replicas[r].target, token, 10,
                                                       until_valid=True)
        self.event(f"SIGCONT r{r}: token of new primary {key}: {answers}, VALID after "
                   f"{first_valid} ms")
        self.assertLessEqual(set(answers), {"VALID", "BEHIND"}, last_error)
        self.assertGreaterEqual(first_valid, 0, "the resumed replica never caught up")
        self.wait_caught_up(r)
        self.disturb([r], start)

    def fault_cut_off_replica(self):
        r, member = 2, 2  # replica r2 was started with member c's endpoint only
        start = time.monotonic_ns()
        self.etcd.freeze(member)
        self.event(f"SIGSTOP etcd member {Etcd.NAMES[member]}: replica r{r} is cut off etcd")
        key = self.wait_promoted_without(r, start)
        self.event(f"key {key} promoted without r{r}")
        _, _, answers = self.check_new_primary_on(r, "cut off")
        self.assertIn("BEHIND", answers, "a cut-off replica cannot know the new key")
        self.etcd.thaw(member)
        token, key = self.sign(self.replicas[0])
        answers, first_valid, last_error = verify_loop(self.replicas[r].target, token, 15,
                                                       until_valid=True)
        self.event(f"etcd member {Etcd.NAMES[member]} resumed: token of {key} on r{r}: "
                   f"{answers}, VALID after {first_valid} ms")
        self.assertLessEqual(set(answers), {"VALID", "BEHIND"}, last_error)
        self.assertGreaterEqual(first_valid, 0)
        self.wait_caught_up(r)
        self.disturb([r], start)

    def all_at_once(self, argv_per_replica):
        """Runs one CLI command per replica, all started at the same instant."""
        barrier = threading.Barrier(len(argv_per_replica))
        results = [None] * len(argv_per_replica)

        def run(i, argv):
            barrier.wait()
            results[i] = cli_json(self.replicas[i].target, f"--keyring={KEYRING}", *argv)
        threads = [threading.Thread(target=run, args=(i, a))
                   for i, a in enumerate(argv_per_replica)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results

    def acked(self, results):
        """The acknowledged answers of concurrent calls; a call may lose its races
        (ABORTED, saying so), never fail otherwise; at least one succeeds."""
        ok = []
        for rc, out, err in results:
            if rc == 0:
                ok.append(out)
            else:
                self.assertIn("ABORTED", err)
                self.aborted += 1
        self.assertTrue(ok, "every concurrent change failed")
        return ok

    def fault_concurrent_admin(self):
        # Three staged rotations at once: three new keys, none lost; the scheduler promotes.
        res = self.acked(self.all_at_once([["keys", "rotate"]] * 3))
        staged = [int(out["new_key"]["key_id"]) for out in res]
        self.assertEqual(len(set(staged)), len(res), staged)
        self.manual_keys.update(staged)
        self.event(f"3 concurrent rotations (staged): keys {staged}")
        self.probe.wait("the staged keys on every replica",
                        lambda: all(k in self.probe.state[i] for k in staged for i in range(3)))
        # Three policy changes at once: each acknowledged with its own revision; the final
        # policy is the one acknowledged last.
        ttls = (31, 32, 33)
        res = self.all_at_once([["policy", "set", f"--max_token_ttl={t}s"] for t in ttls])
        acked = {}
        for out in self.acked(res):
            acked[int(out["revision"])] = out["policy"]["max_token_ttl"]
        self.assertEqual(len(acked), len(self.acked(res)),
                         f"two policy changes share a revision: {acked}")
        final = self.keyring(self.replicas[1])
        self.assertEqual(final["policy"]["max_token_ttl"], acked[max(acked)])
        self.event(f"3 concurrent policy changes at revisions {sorted(acked)}")
        # Three rotations with promote_now at once, while no token is in flight (promote_now
        # does not wait for the other replicas: that is its documented risk).
        self.probe.command("pause", "PAUSED")
        try:
            res = self.acked(self.all_at_once([["keys", "rotate", "--promote_now"]] * 3))
            promoted = [int(out["new_key"]["key_id"]) for out in res]
            self.assertEqual(len(set(promoted)), len(res), promoted)
            self.manual_keys.update(promoted)
            self.probe.wait("the promote_now keys on every replica",
                            lambda: all(k in self.probe.state[i]
                                        for k in promoted for i in range(3)))
            self.wait_caught_up(0)
        finally:
            self.probe.command("resume", "RESUMED")
        self.event(f"3 concurrent rotations with promote_now: keys {promoted}")
        for i, r in enumerate(self.replicas):
            ids = {int(k["key_id"]) for k in self.keyring(r)["keys"]}
            self.assertLessEqual(set(staged) | set(promoted), ids, f"a lost rotation on r{i}")

    def fault_etcd_stopped(self):
        start = time.monotonic_ns()
        before = dict(self.probe.stats)
        frozen = time.time()
        for i in range(3):
            self.etcd.freeze(i)
        self.event("SIGSTOP every etcd member")
        time.sleep(PRESENCE_TTL + 2)  # every lease unconfirmed: all replicas "may be behind"
        # The server's answer, however long it takes: the call may first wait for the
        # scheduler's own attempt (the store's request timeout) before it makes its own.
        called = time.monotonic()
        rc, _, err = cli(self.replicas[0].target, f"--keyring={KEYRING}", "--timeout=40s",
                         "keys", "rotate", timeout=60)
        took = time.monotonic() - called
        self.assertEqual(rc, 3, err)
        self.assertIn("UNAVAILABLE", err)
        self.assertIn("etcd", err)
        self.event(f"admin call while etcd is stopped, answered after {took:.1f}s: "
                   f"{err.strip()[:160]}")
        during = dict(self.probe.stats)
        self.assertGreater(during["tokens"], before["tokens"] + 20, "signing stopped")
        self.assertGreater(during["valid"], before["valid"] + 20, "verifying stopped")
        for i in range(3):
            self.etcd.thaw(i)
        self.unaudited_windows.append((frozen - 2, time.time() + 1))
        self.event("SIGCONT every etcd member")
        t = time.monotonic_ns()
        key = self.probe.wait("a rotation after etcd resumed",
                              lambda: next((k for k, at in self.probe.primary_at.items()
                                            if at > t), None), timeout=30)
        for i in range(3):
            self.wait_caught_up(i)
        rc, _, err = cli(self.replicas[1].target, f"--keyring={KEYRING}", "keyrings", "get")
        self.assertEqual(rc, 0, err)
        self.disturb([0, 1, 2], start)
        self.event(f"etcd back: key {key} rotated in and shown by every replica; "
                   f"{during['tokens'] - before['tokens']} tokens signed and verified "
                   "while etcd was stopped")

    def fault_bad_values(self):
        rc, _, err = cli_json(self.replicas[0].target, "keyrings", "create", "bad")
        self.assertEqual(rc, 0, err)
        wait_for("keyring bad on every replica",
                 lambda: all(cli(r.target, "--keyring=bad", "keyrings", "get")[0] == 0
                             for r in self.replicas))
        token, _ = self.sign(self.replicas[1], "bad")
        good = self.etcd.get(PREFIX + "keyrings/bad")
        other = self.etcd.get(PREFIX + "keyrings/" + KEYRING)
        self.assertTrue(good and other)
        logs_before = [len(r.log()) for r in self.replicas]
        self.etcd.put(PREFIX + "keyrings/bad", b"garbage \x00\xff not a record")
        self.etcd.put(PREFIX + "keyrings/No Such/Name", b"foreign")
        self.etcd.put(PREFIX + "keyrings/" + "x" * 300, b"foreign")
        self.etcd.put(PREFIX + "keyrings/bad", other)  # sealed, but for another keyring
        self.event("wrote garbage, a foreign sealed value and keys naming no keyring")

        def reported():
            return all("keyring bad" in r.log()[n:] and "keeping the last good copy" in
                       r.log()[n:] for r, n in zip(self.replicas, logs_before))
        wait_for("every replica to report the bad values", reported)
        # The backstop (full reload) sees the damaged record and the foreign keys too.
        wait_for("a full reload reporting the foreign keys",
                 lambda: all("names no keyring" in r.log()[n:]
                             for r, n in zip(self.replicas, logs_before)), timeout=30)
        for r in self.replicas:
            self.assertTrue(r.alive(), f"replica {r.id} died on a bad value")
            rc, out, err = cli_json(r.target, "--keyring=bad", "verify", token)
            self.assertEqual((rc, out and out["result"]), (0, "VALID"), err)
        rc, _, err = cli(self.replicas[2].target, "--keyring=bad", "keys", "rotate",
                         "--promote_now")
        self.assertNotEqual(rc, 0, "a change was written over a damaged record")
        self.event(f"admin change on the damaged keyring refused: {err.strip()[:120]}")
        self.etcd.put(PREFIX + "keyrings/bad", good)  # the next good write
        self.etcd.delete(PREFIX + "keyrings/No Such/Name")
        self.etcd.delete(PREFIX + "keyrings/" + "x" * 300)
        rc, out, err = cli_json(self.replicas[2].target, "--keyring=bad", "keys", "rotate",
                                "--promote_now")
        self.assertEqual(rc, 0, err)
        new_key = int(out["new_key"]["key_id"])
        wait_for("the good write on every replica",
                 lambda: all(any(int(k["key_id"]) == new_key
                                 for k in self.keyring(r, "bad")["keys"])
                             for r in self.replicas))
        for r in self.replicas:
            rc, out, err = cli_json(r.target, "--keyring=bad", "verify", token)
            self.assertEqual((rc, out and out["result"]), (0, "VALID"), err)
        self.event(f"good value restored; rotation to key {new_key} reached every replica")

    def test_replicas_under_faults(self):
        for path, name in ((ETCD_BIN, "ETCD_BIN"), (PROBE_BIN, "SESSIONTOKEN_HA_PROBE")):
            if not path or not os.access(path, os.X_OK):
                self.fail(f"{name}: {path!r} is not an executable")
        began = time.monotonic()
        kek = harness.write_kek(os.path.join(self.tmp, "kek"))
        for i in range(3):
            self.etcd.start(i)
        for i in range(3):
            wait_for(f"etcd member {i}", lambda i=i: self.etcd.healthy(i), timeout=30)
        everyone = [self.etcd.endpoint(i) for i in range(3)]
        self.replicas = [Replica(0, self.tmp, kek, everyone),
                         Replica(1, self.tmp, kek, everyone[1:] + everyone[:1]),
                         Replica(2, self.tmp, kek, [self.etcd.endpoint(2)])]
        for r in self.replicas:
            r.start()
        for r in self.replicas:
            r.wait_serving()
        rc, _, err = cli_json(self.replicas[0].target, "keyrings", "create", KEYRING,
                              f"--rotation_period={int(PERIOD)}s", "--stage_lead_time=0s",
                              "--verify_window=600s", "--destroy_after=0s",
                              "--max_token_ttl=30s")
        self.assertEqual(rc, 0, err)
        created = time.time()
        self.probe = Probe([r.target for r in self.replicas],
                           os.path.join(self.tmp, "probe.log"))
        self.probe.wait("the keyring on every replica",
                        lambda: all(self.probe.state[i] for i in range(3)))
        self.event(f"etcd and 3 replicas up in {time.monotonic() - began:.1f}s; "
                   "keyring created, probe running")
        self.wait_rotations(4)
        self.fault_kill_replica_mid_rotation()
        self.fault_kill_etcd_leader()
        self.fault_sigstop_replica()
        self.fault_cut_off_replica()
        self.fault_concurrent_admin()
        self.fault_etcd_stopped()
        self.fault_bad_values()
        # The rest of the run: undisturbed rotations up to the count the issue asks for.
        self.probe.wait(f"{MIN_ROTATIONS} policy rotations",
                        lambda: len(set(self.probe.primary_at) - self.manual_keys)
                        >= MIN_ROTATIONS + 2, timeout=MIN_ROTATIONS * PERIOD + 30)
        t_end = time.monotonic_ns()
        self.wait_rotations(1)
        self.probe.stop()
        ended = time.time()
        self.check_results(created, ended, t_end)
        print(f"\nha replicas test: total {time.monotonic() - began:.0f}s", flush=True)

    def check_results(self, created, ended, t_end):
        s = self.probe.summary
        self.assertIsNotNone(s, "the probe printed no summary")
        final = self.keyring(self.replicas[0])
        # Every key reached every replica.
        keys = {int(k["key_id"]): k for k in final["keys"]}
        first_key = min(keys, key=lambda kid: self.created_at(keys[kid]))  # the keyring's own
        with self.probe.cv:
            for i in range(3):
                missing = set(keys) - set(self.probe.seen[i])
                self.assertFalse(missing, f"keys never shown by replica r{i}: {missing}")
            latencies, slow = [], []
            for key, (t0, first) in self.probe.first_seen.items():
                if t0 > t_end or key not in keys or key == first_key:
                    continue  # first_key existed before the probe started
                for i in range(3):
                    if i == first or key not in self.probe.seen[i]:
                        continue
                    ms = (self.probe.seen[i][key] - t0) / 1e6
                    if any(a - 2e9 <= t0 <= b + 1e9 for a, b in self.disturbed[i]):
                        continue  # the replica was killed, paused or cut off around then
                    latencies.append(ms)
                    if ms > LIVENESS * 1000:
                        slow.append((key, i, ms))
            rotations = len(self.primary_keys(keys))
            policy_rotations = len(self.primary_keys(keys) - self.manual_keys) - 1
        self.assertFalse(slow, f"keys that took longer than {LIVENESS}s to reach a replica")
        # The scheduler did each transition once: one creation per period at most, and one
        # audit line per (operation, key) across all replicas. Keyrings store whole seconds;
        # a replica stages when floor(promoted) + period <= now, so the stored creation
        # times of two scheduler keys (no admin key between) differ by >= period; a double
        # rotation would show up as a gap of 0 or 1 s.
        sched = sorted((self.created_at(k), kid) for kid, k in keys.items()
                       if kid not in self.manual_keys and kid != first_key)
        gaps = []
        manual_times = sorted(self.created_at(keys[k]) for k in self.manual_keys)
        for (a, ka), (b, kb) in zip(sched, sched[1:]):
            if any(a <= m <= b for m in manual_times):
                continue
            gaps.append(b - a)
        self.assertTrue(gaps)
        self.assertGreaterEqual(min(gaps), PERIOD - 0.01,
                                "two scheduler rotations within one rotation period")
        expected_max = int((ended - created) / PERIOD) + 1
        self.assertLessEqual(len(sched), expected_max, "more scheduler rotations than the "
                             "policy allows")
        audit = collections.Counter()
        ticks_failed = 0
        for r in self.replicas:
            with open(r.audit_path) as f:
                for line in f:
                    e = json.loads(line)
                    if e["caller"] != "scheduler" or e["keyring"] != KEYRING:
                        continue
                    if e["operation"] == "tick":
                        ticks_failed += 1
                    elif e["outcome"] == "ok":
                        audit[(e["operation"], e["key_id"])] += 1
        doubles = {k: n for k, n in audit.items() if n > 1}
        self.assertFalse(doubles, f"scheduler transitions recorded twice: {doubles}")
        staged_audited = {k for (op, k) in audit if op == "stage"}
        self.assertLessEqual(staged_audited, {k for _, k in sched})
        unaudited = [(t, k) for t, k in sched if k not in staged_audited]
        for t, k in unaudited:
            self.assertTrue(any(a - 1 <= t <= b for a, b in self.unaudited_windows),
                            f"scheduler key {k} (created {t}) has no audit line, and no "
                            f"fault explains it (windows {self.unaudited_windows})")
        # The figures.
        behind = s["behind"] + s["not_ready"]
        print("\nha replicas figures:"
              f"\n  rotations (keys promoted): {rotations}, by the policy {policy_rotations} "
              f"(scheduler-created keys "
              f"{len(sched)}, at most {expected_max} allowed by the policy; admin-created "
              f"{len(self.manual_keys)}, concurrent admin calls ABORTED {self.aborted}); "
              f"min gap between scheduler rotations {min(gaps):.0f}s; audit: {sum(audit.values())} scheduler transitions, "
              f"none twice, {ticks_failed} failed ticks, {len(unaudited)} staged keys "
              "without an audit line (replica SIGKILLed after the write, or a write etcd "
              "applied when it resumed after its caller had given up)"
              f"\n  tokens signed {s['tokens']}, verifications {s['verifications']} "
              f"(VALID {s['valid']}), false rejections {s['rejections']}, unverified "
              f"{s['unverified']}, UNAVAILABLE from a replica behind/not ready {behind}, "
              f"replica down/paused {s['down']}, other errors {s['errors']}, sign failures "
              f"{s['sign_failures']}, tokens re-checked elsewhere {s['retried_elsewhere']}"
              f"\n  fault events {len(self.events)}"
              f"\n  new key visible on the other replicas: p50 {percentile(latencies, .5):.1f} ms"
              f", p99 {percentile(latencies, .99):.1f} ms, max {max(latencies):.1f} ms "
              f"({len(latencies)} samples, disturbed replicas excluded)", flush=True)
        self.assertEqual(self.probe.problems, [])
        self.assertEqual(s["rejections"], 0)
        self.assertEqual(s["unverified"], 0)
        self.assertEqual(s["errors"], 0)
        self.assertGreaterEqual(policy_rotations, MIN_ROTATIONS)
        self.assertGreater(s["tokens"], 1000)
        for r in self.replicas:
            self.assertTrue(r.alive(), f"replica {r.id} died")
            self.assertEqual(r.stop(), 0, f"replica {r.id} did not stop cleanly")

    def primary_keys(self, keys):
        return {k for k in self.probe.primary_at if k in keys}

    @staticmethod
    def created_at(key):
        ts = key["created_at"]  # RFC 3339, UTC, optional fraction
        m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z$", ts)
        base = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
        return base + float(m.group(2) or 0)


if __name__ == "__main__":
    harness.require_binaries()
    unittest.main()
