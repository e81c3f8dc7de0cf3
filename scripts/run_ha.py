#!/usr/bin/python3
"""`make run-ha`: three sessiontoken replicas sharing one local etcd, rotating together.

Starts etcd (Debian's /usr/bin/etcd; 1 member, or 3 with --etcd_members=3) and three
`sessiontoken-server --store=etcd` replicas (r1, r2, r3), all on 127.0.0.1, with one
development KEK; creates the keyring "demo" with a short rotation policy (a new key every
30 s, staged 5 s before it becomes primary) and then prints, every few seconds, what each
replica serves: its primary key id, the keyring revision, and a staged key if any. Ctrl-C
(or SIGTERM) stops the replicas, then etcd.

Everything lives in .run-ha/ (git-ignored): the KEK (mode 0600), etcd's data and every
process's log. It is emptied at each start (a fresh demo); the logs stay after the stop,
the KEK and etcd's data are removed.

--check runs the same on free ports in a temporary directory with a 2 s rotation period,
waits until all three replicas serve the same new primary and a token signed on r1 with it
verifies on r2 and r3, stops everything and exits 0 (CTest's run_ha_smoke); 1 otherwise.

Standard library only. Also imported by tests/bench/run_bench.py (LocalEtcd, free_port).
"""
import argparse
import ctypes
import datetime
import fcntl
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from localproc import child_env, free_port, write_kek  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ETCD_BIN = os.environ.get("ETCD_BIN") or "/usr/bin/etcd"
LISTEN_RE = re.compile(r"^sessiontoken-server listening on (127\.0\.0\.1):(\d+)$")
KEYRING = "demo"


class Stop(Exception):
    """SIGTERM received: stop everything as Ctrl-C does."""


def _die_with_parent():
    """In the child before exec: SIGTERM when this script dies (even by SIGKILL)."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(argv, log_path, stdout=subprocess.DEVNULL):
    """A child in its own session (the terminal's Ctrl-C reaches only this script, which
    then stops the children in order), killed if this script dies."""
    log = open(log_path, "ab")
    try:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=log,
                                env=child_env(), start_new_session=True,
                                preexec_fn=_die_with_parent)
    finally:
        log.close()


def stop_process(proc, timeout=15.0):
    """SIGTERM, then SIGKILL after `timeout`; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


class LocalEtcd:
    """etcd on loopback: `members` (1 or 3) members with free ports, data under `work_dir`."""

    def __init__(self, work_dir, members=1):
        if not os.access(ETCD_BIN, os.X_OK):
            raise RuntimeError(f"{ETCD_BIN} not found: install etcd-server "
                               "(scripts/install-deps.sh does)")
        self.dir = work_dir
        names = ["a", "b", "c"][:members]
        self.members = [{"name": n, "client": free_port(), "peer": free_port()} for n in names]
        cluster = ",".join(f"{m['name']}=http://127.0.0.1:{m['peer']}" for m in self.members)
        token = f"sessiontoken-{os.getpid()}-{self.members[0]['client']}"  # one per cluster
        self.procs = []
        for m in self.members:
            client, peer = f"http://127.0.0.1:{m['client']}", f"http://127.0.0.1:{m['peer']}"
            self.procs.append(spawn([
                ETCD_BIN, "--name", m["name"], "--data-dir", os.path.join(work_dir, m["name"]),
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", cluster, "--initial-cluster-state", "new",
                "--initial-cluster-token", token,
                "--listen-metrics-urls", f"http://127.0.0.1:{free_port()}",
                "--logger", "zap", "--log-level", "warn"],
                os.path.join(work_dir, f"etcd-{m['name']}.log")))
        self.endpoints = [f"127.0.0.1:{m['client']}" for m in self.members]

    def wait_healthy(self, timeout=30.0):
        """Every member answers /health with true (it has a leader)."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.time() + timeout
        pending = list(self.endpoints)
        while pending and time.time() < deadline:
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"etcd exited ({p.returncode}); see {self.dir}/etcd-*.log")
            try:
                with opener.open(f"http://{pending[0]}/health", timeout=2) as r:
                    if json.loads(r.read()).get("health") == "true":
                        pending.pop(0)
                        continue
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        if pending:
            raise RuntimeError(f"etcd not healthy within {timeout:.0f} s at {pending[0]}")

    def stop(self):
        for p in self.procs:
            stop_process(p)


class Replica:
    """One sessiontoken-server on the etcd store; `target` is read from its first line."""

    def __init__(self, server_bin, replica_id, listen, endpoints, kek, log_path, extra=()):
        self.id = replica_id
        self.proc = spawn([server_bin, f"--listen={listen}", "--store=etcd",
                           f"--etcd_endpoints={','.join(endpoints)}", f"--replica_id={replica_id}",
                           f"--kek_file={kek}", *extra], log_path, stdout=subprocess.PIPE)
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in self.proc.stdout] and None,
                         daemon=True).start()
        try:
            first = lines.get(timeout=20).decode(errors="replace").strip()
        except queue.Empty:
            first = ""
        m = LISTEN_RE.match(first)
        if not m:
            stop_process(self.proc)
            with open(log_path, errors="replace") as f:
                tail = f.read()[-1500:]
            raise RuntimeError(f"replica {replica_id} did not start; its log ({log_path}):\n{tail}")
        self.target = f"{m.group(1)}:{m.group(2)}"

    def stop(self):
        return stop_process(self.proc)


class Cli:
    """The sessiontoken CLI against one keyring."""

    def __init__(self, cli_bin, keyring=KEYRING):
        self.bin, self.keyring = cli_bin, keyring

    def run(self, target, *args, timeout=10):
        r = subprocess.run([self.bin, f"--server={target}", f"--keyring={self.keyring}", *args],
                           capture_output=True, text=True, env=child_env(), timeout=timeout)
        return r.returncode, r.stdout.strip(), r.stderr.strip()

    def keys(self, target):
        """ListKeys as a dict, or the error text."""
        rc, out, err = self.run(target, "--json", "keys", "list")
        if rc != 0:
            return (err or out or f"exit {rc}").splitlines()[-1]
        return json.loads(out)


def wait_serving(cli, replicas, timeout=60.0):
    deadline = time.time() + timeout
    for r in replicas:
        while True:
            if r.proc.poll() is not None:
                raise RuntimeError(f"replica {r.id} exited ({r.proc.returncode})")
            if cli.run(r.target, "health")[0] == 0:
                break
            if time.time() > deadline:
                raise RuntimeError(f"replica {r.id} not SERVING within {timeout:.0f} s")
            time.sleep(0.2)


def create_demo_keyring(cli, target, period_s, lead_s, window_s):
    rc, out, err = cli.run(target, "keyrings", "create", KEYRING)
    if rc != 0 and "ALREADY_EXISTS" not in err:
        raise RuntimeError(f"keyrings create {KEYRING}: {err or out}")
    rc, out, err = cli.run(target, "policy", "set", f"--rotation_period={period_s}s",
                           f"--stage_lead_time={lead_s}s", f"--verify_window={window_s}s",
                           f"--max_token_ttl={window_s}s", f"--destroy_after={window_s}s")
    if rc != 0:
        raise RuntimeError(f"policy set: {err or out}")


# ---- what each replica serves ---------------------------------------------------------------

def summary(keys):
    """(primary, revision, staged ids, counts by state) of a ListKeys dict."""
    staged = [k["key_id"] for k in keys.get("keys", []) if k.get("state") == "STAGED"]
    counts = {}
    for k in keys.get("keys", []):
        counts[k.get("state", "?")] = counts.get(k.get("state", "?"), 0) + 1
    return keys.get("primary_key_id"), int(keys.get("revision", 0)), staged, counts


def cell(keys):
    if isinstance(keys, str):
        return ("error: " + keys)[:25]
    primary, rev, _, _ = summary(keys)
    return f"key {primary} rev {rev}"


def next_rotation(keys, period_s, lead_s):
    """Seconds until the next key is staged, from the primary's promotion time."""
    for k in keys.get("keys", []):
        if k.get("key_id") == keys.get("primary_key_id") and k.get("state_changed_at"):
            t = datetime.datetime.fromisoformat(k["state_changed_at"].replace("Z", "+00:00"))
            return t.timestamp() + period_s - lead_s - time.time()
    return None


def observe(cli, replicas):
    """ListKeys on every replica at once."""
    out = [None] * len(replicas)

    def one(i):
        try:
            out[i] = cli.keys(replicas[i].target)
        except (subprocess.SubprocessError, ValueError, OSError) as e:
            out[i] = str(e)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(replicas))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def show(cli, replicas, period_s, lead_s, interval_s):
    """Prints what each replica serves every interval_s, until Ctrl-C."""
    width = 27
    print("time      " + "".join(f"{r.id} {r.target}".ljust(width) for r in replicas),
          flush=True)
    common = None
    while True:
        views = observe(cli, replicas)
        line = time.strftime("%H:%M:%S  ") + "".join(cell(v).ljust(width) for v in views)
        ok = [v for v in views if isinstance(v, dict)]
        same = len(ok) == len(views) and len({summary(v)[:2] for v in ok}) == 1
        note = "in step" if same else "propagating"
        staged = sorted({k for v in ok for k in summary(v)[2]})
        if staged:
            note += f"; staged key {','.join(map(str, staged))}"
        elif ok:
            eta = next_rotation(ok[0], period_s, lead_s)
            if eta is not None and eta > 0:
                note += f"; next key staged in ~{eta:.0f} s"
        print(line + note, flush=True)
        primaries = {summary(v)[0] for v in ok}
        if same and len(primaries) == 1 and primaries != {common}:
            if common is not None:
                print(f"          ==> all {len(replicas)} replicas now sign with key "
                      f"{primaries.pop()}", flush=True)
            common = summary(ok[0])[0]
        time.sleep(interval_s)


# ---- the modes ------------------------------------------------------------------------------

class Cluster:
    """etcd + the replicas, stopped in order (replicas first: they leave their leases)."""

    def __init__(self, build_dir, work_dir):
        self.server = os.path.join(build_dir, "server", "sessiontoken-server")
        self.cli = Cli(os.path.join(build_dir, "client", "cpp", "sessiontoken"))
        for p in (self.server, self.cli.bin):
            if not os.access(p, os.X_OK):
                raise RuntimeError(f"{p} is missing: build first (make run-ha does)")
        self.work = work_dir
        self.etcd = None
        self.replicas = []

    def start(self, members, listens, extra=()):
        """Starts etcd, then one replica per address in `listens`; returns when all serve."""
        kek = write_kek(os.path.join(self.work, "kek.hex"))
        self.etcd = LocalEtcd(self.work, members)
        self.etcd.wait_healthy()
        for i, listen in enumerate(listens):
            rid = f"r{i + 1}"
            self.replicas.append(Replica(self.server, rid, listen, self.etcd.endpoints, kek,
                                         os.path.join(self.work, f"{rid}.log"), extra))
        wait_serving(self.cli, self.replicas)

    def stop(self):
        codes = [r.stop() for r in self.replicas]
        if self.etcd:
            self.etcd.stop()
            self.etcd = None
        self.replicas = []
        return codes


def prepare_work_dir(path):
    """.run-ha/ emptied (one run at a time: the lock file stays, held while running)."""
    os.makedirs(path, exist_ok=True)
    lock = open(os.path.join(path, "lock"), "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise SystemExit(f"run-ha: another run-ha uses {path}; stop it first")
    for name in os.listdir(path):
        if name != "lock":
            p = os.path.join(path, name)
            shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else os.remove(p)
    return lock


def interactive(args):
    work = os.path.abspath(args.work_dir)
    lock = prepare_work_dir(work)
    host, port = args.listen.rsplit(":", 1)
    if host != "127.0.0.1":
        raise SystemExit("run-ha: --listen must be on 127.0.0.1")
    listens = [f"{host}:{int(port) + i}" for i in range(3)]
    print(f"run-ha: starting etcd ({args.etcd_members} member(s)) and 3 replicas on loopback; "
          f"data and logs in {work}", flush=True)
    cluster = None
    failed = False
    try:
        cluster = Cluster(args.build_dir, work)
        cluster.start(args.etcd_members, listens)
        create_demo_keyring(cluster.cli, cluster.replicas[0].target, args.rotation_period,
                            args.stage_lead_time, args.verify_window)
        intro(args, cluster)
        show(cluster.cli, cluster.replicas, args.rotation_period, args.stage_lead_time,
             args.interval)
    except (KeyboardInterrupt, Stop):
        print("\nrun-ha: stopping the replicas, then etcd", flush=True)
    except RuntimeError as e:
        print(f"run-ha: {e}", file=sys.stderr, flush=True)
        failed = True
    finally:
        codes = cluster.stop() if cluster else []
        for name in ("kek.hex", "a", "b", "c"):
            p = os.path.join(work, name)
            if os.path.isdir(p):
                shutil.rmtree(p, ignore_errors=True)
            elif os.path.exists(p):
                os.remove(p)
        lock.close()
    print(f"run-ha: stopped" + (f" (replica exit codes {codes})" if codes else "")
          + f"; logs in {work}", flush=True)
    return 1 if failed else 0


def intro(args, cluster):
    cli = os.path.relpath(cluster.cli.bin)
    r = cluster.replicas
    print(f"""
etcd at {','.join(cluster.etcd.endpoints)}; replicas {', '.join(f'{x.id}={x.target} (pid {x.proc.pid})' for x in r)}.
Keyring "{KEYRING}": a new key every {args.rotation_period} s, staged {args.stage_lead_time} s before it becomes
primary (once every replica has loaded it); former keys verify for {args.verify_window} s.
In another terminal:
  C={cli}
  T=$($C --server={r[0].target} --keyring={KEYRING} sign --payload=hello --ttl={args.verify_window}s)
  $C --server={r[1].target} --keyring={KEYRING} verify "$T"    # signed on r1, VALID on r2
  $C --server={r[2].target} --keyring={KEYRING} keys rotate    # stage a key now, from any replica
  kill -STOP {r[2].proc.pid}; sleep 15; kill -CONT {r[2].proc.pid}   # r3 misses its lease; the others go on
Ctrl-C stops everything.
""", flush=True)


def check(args):
    """The smoke test: all three serve the same new primary; r1's token verifies on r2, r3."""
    work = tempfile.mkdtemp(prefix="sessiontoken-run-ha-")
    cluster = None
    ok = False
    try:
        cluster = Cluster(args.build_dir, work)
        cluster.start(args.etcd_members, ["127.0.0.1:0"] * 3)
        cli, r = cluster.cli, cluster.replicas
        create_demo_keyring(cli, r[0].target, 2, 1, 60)
        first = cli.keys(r[0].target)
        if isinstance(first, str):
            raise RuntimeError(f"keys list on r1: {first}")
        start = summary(first)[0]
        deadline = time.time() + 30
        while time.time() < deadline:
            views = observe(cli, r)
            got = [summary(v)[:2] if isinstance(v, dict) else v for v in views]
            if all(isinstance(v, dict) for v in views) and len(set(got)) == 1 \
                    and got[0][0] != start:
                print(f"run-ha --check: all 3 replicas serve key {got[0][0]} "
                      f"(revision {got[0][1]}; started with key {start})")
                ok = verify_across(cli, r, start)
                break
            time.sleep(0.2)
        else:
            print(f"run-ha --check: the replicas did not agree on a new primary in 30 s: {got}")
    except RuntimeError as e:
        print(f"run-ha --check: {e}")
    finally:
        codes = cluster.stop() if cluster else []
        if codes and any(c != 0 for c in codes):
            print(f"run-ha --check: replica exit codes {codes} (expected 0 after SIGTERM)")
            ok = False
        if not ok:
            for name in sorted(os.listdir(work)):
                if name.endswith(".log"):
                    with open(os.path.join(work, name), errors="replace") as f:
                        print(f"--- {name} (tail)\n{f.read()[-3000:]}")
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


def verify_across(cli, replicas, old_key_id):
    """A token signed on r1 with its current (new) primary is VALID on r2 and r3."""
    rc, out, err = cli.run(replicas[0].target, "--json", "sign", "--payload=hello", "--ttl=30s")
    if rc != 0:
        print(f"run-ha --check: sign on r1: {err or out}")
        return False
    signed = json.loads(out)
    ok = True
    for r in replicas[1:]:
        rc, vout, verr = cli.run(r.target, "--json", "verify", signed["token"])
        result = json.loads(vout).get("result") if rc in (0, 1) and vout else verr
        print(f"run-ha --check: token signed on r1 with key {signed['key_id']}: {result} on {r.id}")
        ok = ok and rc == 0 and result == "VALID"
    return ok and signed["key_id"] != old_key_id


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build_dir", default=os.path.join(ROOT, "build", "release"))
    ap.add_argument("--work_dir", default=os.path.join(ROOT, ".run-ha"))
    ap.add_argument("--listen", default="127.0.0.1:50061",
                    help="r1's address; r2 and r3 take the next two ports")
    ap.add_argument("--etcd_members", type=int, choices=(1, 3), default=1)
    ap.add_argument("--rotation_period", type=int, default=30, help="seconds")
    ap.add_argument("--stage_lead_time", type=int, default=5, help="seconds")
    ap.add_argument("--verify_window", type=int, default=120, help="seconds")
    ap.add_argument("--interval", type=float, default=3, help="seconds between two looks")
    ap.add_argument("--check", action="store_true", help="smoke test (see above)")
    args = ap.parse_args()
    args.build_dir = os.path.abspath(args.build_dir)

    def on_term(signum, frame):
        raise Stop()
    signal.signal(signal.SIGTERM, on_term)
    # Ctrl-C stops everything even where SIGINT came in ignored (a shell's background job).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.check:
        return check(args)
    if not 0 <= args.stage_lead_time < args.rotation_period:
        raise SystemExit("run-ha: --stage_lead_time must be shorter than --rotation_period")
    return interactive(args)


if __name__ == "__main__":
    sys.exit(main())
