#!/usr/bin/python3
"""`make bench`: the whole performance picture of sessiontoken in one table.

Runs, on this machine and in one go (standard library only):
  1. core_bench (Google Benchmark): native and Flask sign/verify on one thread, 64 B / 1 KiB;
  2. itsdangerous_bench.py: the same operations in Python itsdangerous (what Flask uses);
  3. R rounds of gRPC load over loopback: sessiontoken-server and the do-nothing floor_server
     side by side, each measured by loadgen (closed loop = max QPS, then open loop at half
     of that QPS for latency), with server CPU per call and RSS sampled from /proc;
  4. server RSS with 1 keyring and with BENCH_KEYRINGS keyrings of 3 keys (make_keyrings);
  5. replicas: a 1-member etcd and 3 replicas on it; ha_probe times BENCH_HA_ROTATIONS
     rotations until every replica lists and then serves the new key, and checks that a
     token signed with a new primary verifies on the other replicas at once; then the
     Sign/Verify QPS of one replica against a file-store server (alternating slices).
Every figure is the median over rounds; every ratio is computed within a round, then the
median is taken. Prints the table (and writes it, with the raw JSON, under BUILD/bench/).

Environment (all optional):
  BENCH_RUNS=3          rounds (core and itsdangerous repetitions too)
  BENCH_DURATION=3      seconds of measured load per point (split into slices)
  BENCH_SLICES=3        ours and the floor alternate in this many slices per point
  BENCH_WARMUP=0.5      seconds of load before the first slice (0.25 s before the others)
  BENCH_CHANNELS=4      connections per loadgen
  BENCH_INFLIGHT=32     calls in flight (closed loop), cap for the open loop
  BENCH_KEYRINGS=10000  keyrings for the RSS measurement (0 skips it)
  BENCH_PIN=1           pin the server to CPU 0 and loadgen to CPU 1 (taskset); 0: don't
  BENCH_TMPDIR=         work directory (default /dev/shm when writable)
  BENCH_CORE_FILTER=    regex passed to core_bench --benchmark_filter
  BENCH_HA_ROTATIONS=40 rotations timed across the replicas (--skip=ha skips part 5)
"""
import argparse
import json
import math
import os
import platform
import re
import secrets
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PYTHON = "/usr/bin/python3"
# The replicas' policy tick in the replica part: a staged key is promoted within one tick
# of the last replica loading it (the default, 1s, would make 40 rotations take a minute).
HA_SCHEDULER_INTERVAL = "100ms"


def env_int(name, default):
    v = os.environ.get(name, "")
    return int(v) if v.strip() else default


def env_float(name, default):
    v = os.environ.get(name, "")
    return float(v) if v.strip() else default


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# ---- machine ---------------------------------------------------------------------------------

def cpu_busy_seconds():
    """Busy CPU-seconds of the whole machine so far (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    v = [int(x) for x in parts[:8]]
    idle = v[3] + v[4]  # idle + iowait
    return (sum(v) - idle) / os.sysconf("SC_CLK_TCK")


def our_cpu_seconds():
    """CPU-seconds used by this script and every process it waited for."""
    import resource
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def machine():
    model, mhz = "unknown", None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                k, _, v = line.partition(":")
                k, v = k.strip(), v.strip()
                if k == "model name" and model == "unknown":
                    model = v
                elif k == "cpu MHz" and mhz is None:
                    mhz = float(v)
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        commit = commit + ("+local changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "mhz": mhz,
        "kernel": platform.release(),
        "loadavg": os.getloadavg(),
        "commit": commit,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


# ---- load results ----------------------------------------------------------------------------

def hist_mid(i, sub_bits):
    """Midpoint (ns) of loadgen's histogram bucket i (see Histogram in loadgen.cc)."""
    sub = 1 << sub_bits
    half = sub // 2
    if i < sub:
        return float(i)
    shift = (i - half) // half
    lo = (i - shift * half) << shift
    return lo + (1 << shift) / 2


def hist_quantile(h, q, sub_bits):
    total = sum(h.values())
    if total == 0:
        return None
    rank = max(1, int(-(-q * total // 1)))
    seen = 0
    for i in sorted(h):
        seen += h[i]
        if seen >= rank:
            return hist_mid(i, sub_bits)
    return hist_mid(max(h), sub_bits)


def merge_loads(rs):
    """One result from several loadgen runs of the same kind: sums, and percentiles of the
    merged histograms."""
    rs = [r for r in rs if r]
    if not rs:
        return None
    if any(r.get("unimplemented") for r in rs):
        return {"unimplemented": True}
    calls = sum(r["calls"] for r in rs)
    window = sum(r["window_s"] for r in rs)
    items = sum(r["items_per_s"] * r["window_s"] for r in rs)
    cpu = sum(r["server_cpu_s"] for r in rs)
    ccpu = sum(r["client_cpu_us_per_call"] * r["calls"] for r in rs)
    sub_bits = rs[0].get("hist_sub_bits", 6)
    out = {"slices": len(rs), "calls": calls, "window_s": window,
           "qps": calls / window if window else 0, "items_per_s": items / window if window else 0,
           "target_qps": rs[0].get("target_qps"),
           "errors": sum(r.get("errors", 0) for r in rs),
           "first_error": next((r["first_error"] for r in rs if r.get("first_error")), ""),
           "server_cpu_us_per_call": cpu * 1e6 / calls if calls else None,
           "client_cpu_us_per_call": ccpu / calls if calls else None,
           "server_rss_max_kib": max(r.get("server_rss_max_kib", 0) for r in rs),
           "server_hwm_kib": max(r.get("server_hwm_kib", 0) for r in rs)}
    for key, prefix in (("hist", ""), ("hist_sent", "sent_")):
        h = {}
        for r in rs:
            for i, c in r.get(key, []):
                h[i] = h.get(i, 0) + c
        for q, name in ((0.5, "p50_us"), (0.99, "p99_us"), (0.999, "p999_us")):
            v = hist_quantile(h, q, sub_bits)
            out[prefix + name] = v / 1e3 if v is not None else None
    return out


# ---- processes -------------------------------------------------------------------------------

class Server:
    """A server binary started by this script (loopback only), stopped with SIGTERM."""

    def __init__(self, argv, banner, logpath, pin=None):
        if pin is not None:
            argv = ["taskset", "-c", str(pin)] + argv
        self.log = open(logpath, "ab")
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.log)
        line = self._readline(30)
        m = re.match(re.escape(banner) + r" listening on (127\.0\.0\.1):(\d+)", line)
        if not m:
            self.stop()
            with open(logpath, errors="replace") as f:
                tail = f.read()[-2000:]
            raise RuntimeError(f"{argv[0]} did not start (first line {line!r}); its log:\n{tail}")
        self.target = f"{m.group(1)}:{m.group(2)}"
        self.pid = self.proc.pid  # taskset execs the server: same pid

    def _readline(self, timeout):
        buf = b""
        deadline = time.time() + timeout
        while not buf.endswith(b"\n") and time.time() < deadline:
            r, _, _ = select.select([self.proc.stdout], [], [], max(0.0, deadline - time.time()))
            if not r:
                break
            c = os.read(self.proc.stdout.fileno(), 1)
            if not c:
                break
            buf += c
        return buf.decode(errors="replace")

    def rss_kib(self):
        vals = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    vals[k] = int(v.split()[0])
        return vals

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self.log.close()


class Bench:
    def __init__(self, build_dir, workdir):
        self.build = build_dir
        self.work = workdir
        self.runs = max(1, env_int("BENCH_RUNS", 3))
        self.duration = env_float("BENCH_DURATION", 3)
        self.warmup = env_float("BENCH_WARMUP", 0.5)
        self.channels = env_int("BENCH_CHANNELS", 4)
        self.inflight = env_int("BENCH_INFLIGHT", 32)
        self.keyrings = env_int("BENCH_KEYRINGS", 10000)
        self.slices = max(1, env_int("BENCH_SLICES", 3))
        self.slice_warmup = 0.25
        # Pinning (server on CPU 0, loadgen on CPU 1) keeps the two from preempting each
        # other: steadier latency, and the server's QPS is that of one core.
        self.pin = (env_int("BENCH_PIN", 1 if (os.cpu_count() or 1) >= 2 else 0) == 1
                    and shutil.which("taskset") is not None)
        self.bin = {
            "server": os.path.join(build_dir, "server", "sessiontoken-server"),
            "core": os.path.join(build_dir, "tests", "bench", "core_bench"),
            "loadgen": os.path.join(build_dir, "tests", "bench", "loadgen"),
            "floor": os.path.join(build_dir, "tests", "bench", "floor_server"),
            "make_keyrings": os.path.join(build_dir, "tests", "bench", "make_keyrings"),
            "ha_probe": os.path.join(build_dir, "tests", "bench", "ha_bench_probe"),
        }
        for k, p in self.bin.items():
            if not os.access(p, os.X_OK):
                raise SystemExit(f"bench: {p} is missing; build the release preset first "
                                 f"(make bench does)")
        self.kek = os.path.join(workdir, "kek.hex")
        with open(os.path.join(workdir, "kek.hex"), "w") as f:
            f.write(secrets.token_hex(32) + "\n")
        os.chmod(self.kek, 0o600)
        self.servers = []
        self.n_data = 0

    # -- servers
    def start_server(self, data_dir=None, extra=(), **kw):
        if data_dir is None:
            self.n_data += 1
            data_dir = os.path.join(self.work, f"data-{self.n_data}")
        s = Server([self.bin["server"], "--listen=127.0.0.1:0", f"--data_dir={data_dir}",
                    f"--kek_file={self.kek}", *extra], "sessiontoken-server",
                   os.path.join(self.work, "server.log"), pin=0 if self.pin else None, **kw)
        self.servers.append(s)
        return s

    def start_replica(self, endpoints, replica_id, pin, extra=()):
        """sessiontoken-server on the etcd store (serves after its first load)."""
        s = Server([self.bin["server"], "--listen=127.0.0.1:0", "--store=etcd",
                    f"--etcd_endpoints={','.join(endpoints)}", f"--replica_id={replica_id}",
                    f"--kek_file={self.kek}", *extra], "sessiontoken-server",
                   os.path.join(self.work, f"replica-{replica_id}.log"),
                   pin=0 if (pin and self.pin) else None)
        self.servers.append(s)
        return s

    def start_floor(self):
        s = Server([self.bin["floor"], "--listen=127.0.0.1:0"], "floor_server",
                   os.path.join(self.work, "floor.log"), pin=0 if self.pin else None)
        self.servers.append(s)
        return s

    def stop(self, s):
        s.stop()
        if s in self.servers:
            self.servers.remove(s)

    def stop_all(self):
        for s in list(self.servers):
            self.stop(s)

    # -- load
    def load(self, server, mode, qps=0.0, duration=None, warmup=None, inflight=None):
        argv = [self.bin["loadgen"], f"--target={server.target}", f"--mode={mode}",
                f"--channels={self.channels}", f"--inflight={inflight or self.inflight}",
                f"--duration={duration or self.duration}s",
                f"--warmup={self.warmup if warmup is None else warmup}s",
                f"--qps={qps:.1f}", f"--server_pid={server.pid}"]
        if self.pin:
            argv = ["taskset", "-c", "1"] + argv
        r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            log(f"loadgen {mode} failed ({r.returncode}): {r.stderr.strip()[-500:]}")
            return None
        out = json.loads(r.stdout.strip().splitlines()[-1])
        if out.get("errors"):
            log(f"loadgen {mode}: {out['errors']} errors, first: {out.get('first_error')}")
        return out

    # -- parts
    def core(self):
        log("core_bench (Google Benchmark)")
        argv = [self.bin["core"], f"--benchmark_repetitions={self.runs}",
                "--benchmark_report_aggregates_only=true", "--benchmark_format=json",
                "--benchmark_min_time=0.2"]
        flt = os.environ.get("BENCH_CORE_FILTER", "")
        if flt:
            argv.append(f"--benchmark_filter={flt}")
        if self.pin:
            argv = ["taskset", "-c", "0"] + argv
        r = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise RuntimeError(f"core_bench failed: {r.stderr[-2000:]}")
        for line in r.stderr.splitlines():
            if line.startswith("core_bench:"):
                log(line)
        data = json.loads(r.stdout)
        out = {}
        errors = {}
        for b in data["benchmarks"]:
            if b.get("error_occurred"):
                errors[b["run_name"].replace("BM_", "", 1)] = b.get("error_message", "")
                continue
            # The median over repetitions; with a single repetition there are no aggregates.
            if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
                continue
            if b.get("run_type") != "aggregate" and self.runs > 1:
                continue
            name = b["run_name"]
            name = name.replace("BM_", "", 1)
            out[name] = {"ops": b.get("items_per_second"), "allocs": b.get("allocs/op"),
                         "ns": b.get("real_time") if "real_time" in name else b.get("cpu_time")}
        for name, msg in errors.items():
            log(f"core_bench {name}: {msg}")
        return {"results": out, "errors": errors, "context": data.get("context", {})}

    def itsdangerous(self):
        log("itsdangerous baseline (Python)")
        argv = [PYTHON, os.path.join(HERE, "itsdangerous_bench.py"), f"--reps={self.runs}"]
        if self.pin:
            argv = ["taskset", "-c", "0"] + argv
        r = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            log(f"itsdangerous baseline failed: {r.stderr.strip()[-500:]}")
            return None
        return json.loads(r.stdout)

    def pair(self, ours, floor, mode, rnd_index, qps=0.0, inflight=None, ref_mode=None):
        """Measures `mode` on ours and floor_`mode` (or `ref_mode`) on the floor in alternating
        slices (BENCH_SLICES of BENCH_DURATION/slices seconds each), so that a neighbour's
        burst lands on both sides; returns the merged results (ours, floor)."""
        sides = {"ours": [], "floor": []}
        per_slice = self.duration / self.slices
        for k in range(self.slices):
            order = [("ours", ours, mode), ("floor", floor, ref_mode or "floor_" + mode)]
            if (rnd_index + k) % 2:
                order.reverse()
            for who, srv, m in order:
                if sides[who] and sides[who][0].get("unimplemented"):
                    continue
                r = self.load(srv, m, qps=qps, duration=per_slice, inflight=inflight,
                              warmup=self.warmup if k == 0 else self.slice_warmup)
                if r is not None:
                    sides[who].append(r)
        return merge_loads(sides["ours"]), merge_loads(sides["floor"])

    def service(self):
        modes = ["sign", "verify", "mixed", "batch_verify"]
        rounds = []
        for i in range(self.runs):
            log(f"load round {i + 1}/{self.runs}")
            rnd = {}
            ours = self.start_server()
            floor = self.start_floor()
            try:
                for mode in modes:
                    rnd[f"ours:{mode}"], rnd[f"floor:{mode}"] = self.pair(ours, floor, mode, i)
                # Latency at half of this round's maximum (open loop); the floor gets the
                # same rate: what gRPC and this machine allow.
                for mode in ["sign", "verify"]:
                    mx = rnd.get(f"ours:{mode}")
                    if mx and mx.get("qps"):
                        rnd[f"half:{mode}"], rnd[f"halffloor:{mode}"] = self.pair(
                            ours, floor, mode, i, qps=mx["qps"] / 2,
                            inflight=max(self.inflight, 64))
                rnd["ours_hwm_kib"] = ours.rss_kib().get("VmHWM")
                rnd["floor_hwm_kib"] = floor.rss_kib().get("VmHWM")
            finally:
                self.stop(ours)
                self.stop(floor)
            # Metrics on (--metrics_listen: RPC interceptor + exposer) vs off, same run,
            # alternating slices: the cost of observability on the Verify path.
            off = self.start_server()
            on = self.start_server(extra_args=["--metrics_listen=127.0.0.1:0"])
            try:
                rnd["metrics_on:verify"], rnd["metrics_off:verify"] = self.pair(
                    on, off, "verify", i, floor_mode="verify")
            finally:
                self.stop(on)
                self.stop(off)
            rounds.append(rnd)
        return rounds

    def ha(self):
        """Replicas on one etcd: the QPS of one of them against a file-store server (same
        load, alternating slices), then how fast rotations reach all three (ha_probe)."""
        sys.path.insert(0, os.path.join(ROOT, "scripts"))
        import run_ha  # LocalEtcd: etcd on loopback with free ports
        rotations = env_int("BENCH_HA_ROTATIONS", 40)
        log(f"replicas: 1-member etcd, 3 replicas; {rotations} rotations, then Sign/Verify QPS "
            "of a replica vs the file store")
        etcd_dir = os.path.join(self.work, "etcd")
        os.makedirs(etcd_dir)
        etcd = run_ha.LocalEtcd(etcd_dir, 1)
        out = {"rounds": [], "probe": None, "scheduler_interval": HA_SCHEDULER_INTERVAL}
        extra = [f"--scheduler_interval={HA_SCHEDULER_INTERVAL}"]
        started = []
        try:
            etcd.wait_healthy()
            # r1 takes the file server's place (CPU 0 when pinned); r2, r3 and etcd float.
            for i in range(3):
                started.append(self.start_replica(etcd.endpoints, f"r{i + 1}", pin=(i == 0),
                                                  extra=extra))
            reps = list(started)
            out["probe"] = self.ha_probe(reps, rotations)
            fileserver = self.start_server(extra=extra)
            started.append(fileserver)
            for i in range(self.runs):
                log(f"replica vs file store, round {i + 1}/{self.runs}")
                rnd = {}
                for mode in ("sign", "verify"):
                    rnd[f"etcd:{mode}"], rnd[f"file:{mode}"] = self.pair(
                        reps[0], fileserver, mode, i, ref_mode=mode)
                out["rounds"].append(rnd)
        finally:
            for s in started:
                self.stop(s)
            etcd.stop()
        return out

    def ha_probe(self, reps, rotations):
        argv = [self.bin["ha_probe"], "--targets=" + ",".join(r.target for r in reps),
                f"--rotations={rotations}"]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60 + 5 * rotations)
        try:
            res = json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            log(f"ha_probe failed ({r.returncode}): {r.stderr.strip()[-500:]}")
            return None
        if res.get("error") or res.get("cross_first_problem"):
            log(f"ha_probe: {res.get('error') or res.get('cross_first_problem')}")
        return res

    def keyring_rss(self):
        if self.keyrings <= 0:
            return None
        log(f"make_keyrings: {self.keyrings} keyrings x 3 keys")
        many = os.path.join(self.work, "data-many")
        t = time.time()
        r = subprocess.run([self.bin["make_keyrings"], f"--data_dir={many}",
                            f"--kek_file={self.kek}", f"--count={self.keyrings}", "--keys=3",
                            "--report_memory"],
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            log(f"make_keyrings failed: {r.stderr.strip()[-500:]}")
            return None
        log(f"  written and measured in {time.time() - t:.1f} s")
        out = {"one": [], "many": [], "delta": [], "start_s_many": [], "start_s_one": []}
        try:
            out["in_process"] = json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            out["in_process"] = None
        for i in range(self.runs):
            vals = {}
            for kind, data_dir in (("one", None), ("many", many)):
                t0 = time.time()
                s = self.start_server(data_dir=data_dir)
                out[f"start_s_{kind}"].append(time.time() - t0)
                try:
                    # A short light load, so both servers have their gRPC machinery warmed.
                    self.load(s, "verify", duration=0.5, warmup=0.2, inflight=4)
                    vals[kind] = s.rss_kib()["VmRSS"]
                finally:
                    self.stop(s)
                out[kind].append(vals[kind])
            out["delta"].append(vals["many"] - vals["one"])
        return out


# ---- the table -------------------------------------------------------------------------------

def fmt_rate(x, unit="/s"):
    if x is None:
        return "n/a"
    if x >= 1e6:
        return f"{x / 1e6:.2f} M{unit}"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k{unit}"
    return f"{x:.0f} {unit.strip()}"


def fmt_us(x):
    if x is None:
        return "n/a"
    return f"{x / 1000:.2f} ms" if x >= 1000 else f"{x:.0f} us"


def fmt_mib(kib):
    return "n/a" if kib is None else f"{kib / 1024:.1f} MiB"


def verdict(ok):
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def flt_set():
    return bool(os.environ.get("BENCH_CORE_FILTER", ""))


def build_table(m, cfg, core, its, rounds, krss, ha=None):
    rows = []  # (area, measure, ours, reference, ratio, target, result)

    def row(area, measure, ours="", ref="", ratio="", target="", result=""):
        rows.append((area, measure, ours, ref, ratio, target, result))

    c = core["results"] if core else {}
    targets = []

    def core_ops(name):
        v = c.get(name)
        return v["ops"] if v else None

    def allocs(name):
        v = c.get(name)
        return v.get("allocs") if v else None

    # Core: native vs TimestampSigner (same work: bytes + time + MAC + base64), Flask vs
    # Flask's own serializer.
    pairs = [
        ("sign native 64 B", "NativeSign/64", "TimestampSigner.sign/64"),
        ("verify native 64 B", "NativeVerify/64", "TimestampSigner.unsign/64"),
        ("sign native 1 KiB", "NativeSign/1024", "TimestampSigner.sign/1024"),
        ("verify native 1 KiB", "NativeVerify/1024", "TimestampSigner.unsign/1024"),
        ("sign Flask 64 B", "FlaskSign/64", "FlaskSerializer.dumps/64"),
        ("verify Flask 64 B", "FlaskVerify/64", "FlaskSerializer.loads/64"),
        ("sign Flask 1 KiB", "FlaskSign/1024", "FlaskSerializer.dumps/1024"),
        ("verify Flask 1 KiB", "FlaskVerify/1024", "FlaskSerializer.loads/1024"),
    ]
    for label, ours_name, their_name in pairs if core else []:  # --skip=core
        o = core_ops(ours_name)
        t = its.get(their_name) if its else None
        if core and o is None and ours_name.startswith("Flask"):
            row("core", label, "n/a (server/token/flask.cc not built)")
            continue
        ratio = o / t if (o and t) else None
        tgt, res = "", ""
        if ours_name == "NativeVerify/64":
            tgt = ">= 1,000,000/s"
            res = verdict(o >= 1e6 if o else None)
            targets.append(("core verify native 64 B >= 1,000,000 tokens/s", res,
                            f"{fmt_rate(o)} ({o / 1e6:.2f}x the target)" if o else "n/a"))
        a = allocs(ours_name)
        row("core", f"{label} (1 thread; {a:.0f} allocs/op)" if a is not None else label,
            fmt_rate(o), f"{fmt_rate(t)} itsdangerous {their_name.split('/')[0]}",
            f"{ratio:.1f}x" if ratio else "n/a", tgt, res)
        if ours_name == "NativeVerify/64":
            ok = ratio >= 30 if ratio else None
            row("core", "  verify native 64 B vs itsdangerous", "", "TimestampSigner.unsign",
                f"{ratio:.1f}x" if ratio else "n/a", ">= 30x", verdict(ok))
            targets.append(("core verify native 64 B >= 30x itsdangerous (TimestampSigner)",
                            verdict(ok), f"{ratio:.1f}x" if ratio else "n/a"))
            t2 = its.get("FlaskSerializer.loads/64") if its else None
            if o and t2:
                row("core", "  verify native 64 B vs Flask's cookie verify", "",
                    f"{fmt_rate(t2)} FlaskSerializer.loads", f"{o / t2:.1f}x", "(info)", "")
    # Revocation (docs/revocation.md): Verify of a v2 token with 100,000 active entries in
    # the keyring's revocation list vs none, same engine code, same run.
    r_none, r_full = core_ops("EngineVerifyRevocations/0"), core_ops("EngineVerifyRevocations/100000")
    if core and (r_none or r_full):
        ratio = r_full / r_none if (r_none and r_full) else None
        ok = ratio >= 0.95 if ratio else None
        row("core", "verify v2 64 B with 100,000 revocation entries vs none (engine, 1 thread)",
            fmt_rate(r_full), f"{fmt_rate(r_none)} with none",
            f"{ratio * 100:.1f}%" if ratio else "n/a", ">= 95%", verdict(ok))
        targets.append(("verify with 100,000 revocation entries >= 95% of none", verdict(ok),
                        f"{ratio * 100:.1f}%" if ratio else "n/a"))
    diag = []  # (measure, value, note)
    for name, label in (
            ("NativeVerifyMT/64/real_time/threads:1", "keyring verify 64 B, 1 thread"),
            ("NativeVerifyMT/64/real_time/threads:2", "keyring verify 64 B, 2 threads"),
            ("EngineVerify/real_time/threads:1", "engine verify 64 B, 1 thread"),
            ("EngineVerify/real_time/threads:2", "engine verify 64 B, 2 threads"),
            ("EngineSign/real_time/threads:1", "engine sign 64 B, 1 thread"),
            ("EngineSign/real_time/threads:2", "engine sign 64 B, 2 threads"),
            ("NativeSignSealed/64", "keyring sign 64 B, sealed payload (AES-256-GCM)"),
            ("NativeVerifySealed/64", "keyring verify 64 B, sealed payload (AES-256-GCM)"),
            ("NativeSignSealed/1024", "keyring sign 1 KiB, sealed payload"),
            ("NativeVerifySealed/1024", "keyring verify 1 KiB, sealed payload"),
            ("NativeCodecVerify/64", "codec only: ParseNative + CheckNativeMac 64 B"),
            ("NativeCodecSign/64", "codec only: SignNative 64 B"),
            ("HmacSha256", "HMAC-SHA256 via crypto::Hmac (99 B message)"),
            ("HmacSha1", "HMAC-SHA1 via crypto::Hmac (99 B message)"),
            ("Deflate_reused/64", "zlib, per-thread stream 64 B (as SignFlask does)"),
            ("Deflate_compress2/64", "zlib compress2 64 B (SignFlask before)"),
            ("Deflate_reused/1024", "zlib, per-thread stream 1 KiB"),
            ("Deflate_compress2/1024", "zlib compress2 1 KiB"),
            ("SnapshotLoad_atomic_shared_ptr/threads:1", "atomic<shared_ptr> load, 1 thread"),
            ("SnapshotLoad_atomic_shared_ptr/threads:2", "atomic<shared_ptr> load, 2 threads"),
            ("SnapshotLoad_generation_cached/threads:1", "generation-cached snapshot, 1 thread"),
            ("SnapshotLoad_generation_cached/threads:2", "generation-cached snapshot, 2 threads")):
        v = c.get(name)
        if v is None or v.get("ops") is None:
            continue
        a = v.get("allocs")
        ns = v.get("ns")
        note = (f"{ns:.1f} ns/op per thread" if ns is not None else "") + \
            (f", {a:.0f} allocs/op" if a is not None else "")
        diag.append((label, fmt_rate(v["ops"], " ops/s"), note))

    # crypto::Hmac works on precomputed hash states: a MAC must not allocate. core_bench checks
    # it too (the benchmark errors out otherwise); this makes a failure visible in the table.
    if core and (not flt_set() or any(k.startswith("Hmac") for k in c)):
        hm = [(h, (c.get(h) or {}).get("allocs")) for h in ("HmacSha256", "HmacSha1")]
        errs = core.get("errors") or {}
        if all(a is not None for _, a in hm):
            bad = any(round(a, 3) != 0 for _, a in hm)
            diag.append(("HMAC heap allocations per MAC (SHA-256 / SHA-1)",
                         " / ".join(f"{a:g}" for _, a in hm),
                         "UNEXPECTED: expected 0" if bad else "expected 0: checked"))
        else:
            diag.append(("HMAC heap allocations per MAC (SHA-256 / SHA-1)", "n/a",
                         "UNEXPECTED: " + ("; ".join(f"{k}: {v}" for k, v in errs.items()
                                                     if k.startswith("Hmac"))
                                           or "no result")))

    # Service.
    def agg(key, field, rs=None):
        return median([(r.get(key) or {}).get(field) for r in (rs or rounds)])

    def ratio_med(a, b, field="qps"):
        xs = []
        for r in rounds:
            x, y = r.get(a), r.get(b)
            if x and y and x.get(field) and y.get(field):
                xs.append(x[field] / y[field])
        return median(xs)

    labels = {"sign": "Sign", "verify": "Verify", "mixed": "mixed 90% Verify / 10% Sign",
              "batch_verify": "BatchVerify (100 tokens/call)"}
    for mode in ["sign", "verify", "mixed", "batch_verify"] if rounds else []:  # --skip=load
        unimpl = any((r.get(f"ours:{mode}") or {}).get("unimplemented") for r in rounds)
        if unimpl:
            row("service", f"{labels[mode]} QPS", "n/a (UNIMPLEMENTED)",
                f"{fmt_rate(agg('floor:' + mode, 'qps'), ' calls/s')} floor", "n/a",
                ">= 500,000 tokens/s" if mode == "batch_verify" else "", "n/a")
            if mode == "batch_verify":
                targets.append(("BatchVerify of 100 tokens >= 500,000 tokens/s", "n/a",
                                "server answers UNIMPLEMENTED"))
            continue
        q = agg(f"ours:{mode}", "qps")
        fq = agg(f"floor:{mode}", "qps")
        rr = ratio_med(f"ours:{mode}", f"floor:{mode}")
        if mode == "batch_verify":
            items = agg(f"ours:{mode}", "items_per_s")
            ok = items >= 5e5 if items else None
            row("service", f"{labels[mode]}", f"{fmt_rate(q, ' calls/s')} = "
                f"{fmt_rate(items, ' tokens/s')}", f"{fmt_rate(fq, ' calls/s')} floor",
                f"{rr * 100:.0f}% of floor" if rr else "n/a", ">= 500,000 tokens/s",
                verdict(ok))
            targets.append(("BatchVerify of 100 tokens >= 500,000 tokens/s", verdict(ok),
                            f"{fmt_rate(items, ' tokens/s')}"
                            + (f" ({items / 5e5:.2f}x the target)" if items else "")))
        else:
            tgt, res = "", ""
            if mode in ("sign", "verify"):
                tgt = ">= 85% of floor"
                res = verdict(rr >= 0.85 if rr else None)
                targets.append((f"{labels[mode]} QPS >= 85% of the gRPC floor", res,
                                f"{rr * 100:.1f}% of floor" if rr else "n/a"))
            row("service", f"{labels[mode]} QPS (max, closed loop)", fmt_rate(q, " calls/s"),
                f"{fmt_rate(fq, ' calls/s')} floor", f"{rr * 100:.1f}% of floor" if rr else "n/a",
                tgt, res)
            cr = ratio_med(f"floor:{mode}", f"ours:{mode}", "server_cpu_us_per_call")
            if cr:
                diag.append((f"{labels[mode]}: floor server CPU/call over ours",
                             f"{cr * 100:.1f}%", "the QPS ratio a CPU-bound server would show"))
        row("service", f"  latency at max p50 / p99 / p99.9",
            " / ".join(fmt_us(agg(f"ours:{mode}", k)) for k in ("p50_us", "p99_us", "p999_us")),
            " / ".join(fmt_us(agg(f"floor:{mode}", k)) for k in ("p50_us", "p99_us", "p999_us"))
            + " floor", "", "", "")
        sc = agg(f"ours:{mode}", "server_cpu_us_per_call")
        fc = agg(f"floor:{mode}", "server_cpu_us_per_call")
        used = median([((r.get(f"ours:{mode}") or {}).get("server_cpu_us_per_call") or 0) *
                       ((r.get(f"ours:{mode}") or {}).get("qps") or 0) / 1e6 for r in rounds])
        if used:
            diag.append((f"{labels[mode]}: server CPU used at max QPS", f"{used:.2f} cores",
                         "1.00 = one saturated core" + (" (pinned)" if cfg["pin"] else "")))
        if mode == "batch_verify" and sc:
            diag.append(("BatchVerify: tokens/s per fully used server core",
                         fmt_rate(1e6 / (sc / 100), ""),
                         f"from {sc / 100:.2f} us of server CPU per token"))
        row("service", "  server CPU per call", fmt_us(sc), f"{fmt_us(fc)} floor",
            f"{sc - fc:+.1f} us" if (sc and fc) else "", "(info)", "")
    if any(r.get("metrics_on:verify") for r in rounds):
        q_on = agg("metrics_on:verify", "qps")
        q_off = agg("metrics_off:verify", "qps")
        mr = ratio_med("metrics_on:verify", "metrics_off:verify")
        res = verdict(mr >= 0.97 if mr else None)
        row("service", "Verify QPS, metrics on vs off (--metrics_listen, same run)",
            fmt_rate(q_on, " calls/s"), f"{fmt_rate(q_off, ' calls/s')} metrics off",
            f"{mr * 100:.1f}%" if mr else "n/a", ">= 97%", res)
        targets.append(("Verify QPS with metrics on >= 97% of metrics off", res,
                        f"{mr * 100:.1f}%" if mr else "n/a"))
        # Server CPU per call is steadier than QPS on a shared machine.
        cr = ratio_med("metrics_off:verify", "metrics_on:verify", "server_cpu_us_per_call")
        if cr:
            diag.append(("Verify: server CPU/call, metrics off over on", f"{cr * 100:.1f}%",
                         "the QPS ratio a CPU-bound server would show"))
    for mode in ["sign", "verify"] if rounds else []:
        q = agg(f"half:{mode}", "target_qps")
        if q is None:
            continue
        p99 = agg(f"half:{mode}", "p99_us")
        fp99 = agg(f"halffloor:{mode}", "p99_us")
        ok = p99 < 2000 if p99 is not None else None
        row("service", f"{labels[mode]} at half of max ({fmt_rate(q, ' calls/s')}, open loop) "
            "p50 / p99 / p99.9",
            " / ".join(fmt_us(agg(f"half:{mode}", k)) for k in ("p50_us", "p99_us", "p999_us")),
            " / ".join(fmt_us(agg(f"halffloor:{mode}", k))
                       for k in ("p50_us", "p99_us", "p999_us")) + " floor, same rate",
            "", "p99 < 2 ms", verdict(ok))
        row("service", "  the same, timed from the actual send (not the schedule)",
            " / ".join(fmt_us(agg(f"half:{mode}", k))
                       for k in ("sent_p50_us", "sent_p99_us", "sent_p999_us")),
            " / ".join(fmt_us(agg(f"halffloor:{mode}", k))
                       for k in ("sent_p50_us", "sent_p99_us", "sent_p999_us")) + " floor",
            "", "(info)", "")
        targets.append((f"{labels[mode]} p99 < 2 ms at half of max QPS", verdict(ok),
                        f"p99 {fmt_us(p99)} (floor at the same rate: {fmt_us(fp99)})"))
        # "Half of max" is not half of a core: with fewer calls per wake-up, each call costs
        # the server more CPU than under closed-loop load.
        used = median([((r.get(f"half:{mode}") or {}).get("server_cpu_us_per_call") or 0) *
                       ((r.get(f"half:{mode}") or {}).get("qps") or 0) / 1e6 for r in rounds])
        hc = agg(f"half:{mode}", "server_cpu_us_per_call")
        if used and hc:
            diag.append((f"{labels[mode]} at half of max: server CPU used", f"{used:.2f} cores",
                         f"{hc:.1f} us per call (closed loop: "
                         f"{fmt_us(agg(f'ours:{mode}', 'server_cpu_us_per_call'))})"))

    # Memory.
    peak = median([max([(r.get(f"ours:{mo}") or {}).get("server_rss_max_kib") or 0
                        for mo in ("sign", "verify", "mixed", "batch_verify")])
                   for r in rounds])
    # VmHWM is the kernel's peak; the 50 ms samples can exceed it by a page or two (RSS
    # counters are folded in lazily), so the larger of the two is the peak.
    hwm = median([max(r.get("ours_hwm_kib") or 0, max(
        [(r.get(f"ours:{mo}") or {}).get("server_rss_max_kib") or 0
         for mo in ("sign", "verify", "mixed", "batch_verify")])) for r in rounds])
    fhwm = median([r.get("floor_hwm_kib") for r in rounds])
    ok = hwm <= 64 * 1024 if hwm else None
    if rounds:
        row("memory", "server RSS under load (max sampled / VmHWM)",
            f"{fmt_mib(peak)} / {fmt_mib(hwm)}", f"{fmt_mib(fhwm)} floor VmHWM", "",
            "<= 64 MiB", verdict(ok))
        targets.append(("server RSS under load <= 64 MiB", verdict(ok),
                        f"VmHWM {fmt_mib(hwm)}"))
    if krss:
        d = median(krss["delta"])
        ok = d <= 20 * 1024 if d is not None else None
        row("memory", f"server RSS, {cfg['keyrings']} keyrings x 3 keys vs 1 keyring",
            fmt_mib(median(krss["many"])), f"{fmt_mib(median(krss['one']))} (1 keyring)",
            f"+{fmt_mib(d)}", "<= +20 MiB", verdict(ok))
        targets.append((f"{cfg['keyrings']} keyrings cost <= 20 MiB more", verdict(ok),
                        f"+{fmt_mib(d)} ({d / cfg['keyrings']:.2f} KiB per keyring)"))
        ip = krss.get("in_process")
        if ip:
            diag.append(("keyring load, in process (make_keyrings --report_memory)",
                         f"{ip['heap_bytes_per_keyring']:.0f} B",
                         f"live heap per keyring of {ip['keys']} keys "
                         f"(RSS {ip['rss_kib_per_keyring'] * 1024:.0f} B)"))
            diag.append(("  of which one crypto::Hmac per key", f"{ip['heap_bytes_per_hmac']:.0f} B",
                         "HMAC-SHA256: precomputed inner/outer SHA-256 states"))
        row("memory", f"  server start-up with {cfg['keyrings']} keyrings",
            f"{median(krss['start_s_many']):.2f} s",
            f"{median(krss['start_s_one']):.2f} s (1 keyring)", "", "(info)", "")
    ha_rows(ha, row, targets)
    return rows, targets, diag


def quantile(xs, q):
    """Nearest rank (with 40 values, p99 is the largest)."""
    xs = sorted(xs)
    return xs[max(0, math.ceil(q * len(xs)) - 1)] if xs else None


def ha_rows(ha, row, targets):
    """The replica rows: a replica's QPS against the file store, rotation visibility."""
    if not ha:
        return
    rounds = ha.get("rounds") or []
    for mode, label in (("sign", "Sign"), ("verify", "Verify")):
        xs = [r[f"etcd:{mode}"]["qps"] / r[f"file:{mode}"]["qps"] for r in rounds
              if r.get(f"etcd:{mode}") and r.get(f"file:{mode}") and r[f"file:{mode}"]["qps"]]
        rr = median(xs)
        res = verdict(rr >= 0.95 if rr else None)
        row("replicas", f"{label} QPS, a replica on etcd vs the file store (same run)",
            fmt_rate(median([(r.get(f"etcd:{mode}") or {}).get("qps") for r in rounds]),
                     " calls/s"),
            fmt_rate(median([(r.get(f"file:{mode}") or {}).get("qps") for r in rounds]),
                     " calls/s") + " file store", f"{rr * 100:.1f}%" if rr else "n/a",
            ">= 95%", res)
        cpu = [r[f"file:{mode}"]["server_cpu_us_per_call"] /
               r[f"etcd:{mode}"]["server_cpu_us_per_call"] for r in rounds
               if (r.get(f"etcd:{mode}") or {}).get("server_cpu_us_per_call")
               and (r.get(f"file:{mode}") or {}).get("server_cpu_us_per_call")]
        cr = median(cpu)
        row("replicas", "  server CPU per call: file store's over the replica's", "", "",
            f"{cr * 100:.1f}%" if cr else "n/a", "(info)", "")
        targets.append((f"{label} QPS of a replica on etcd >= 95% of the file store", res,
                        f"{rr * 100:.1f}% (rounds: " + ", ".join(f"{x * 100:.1f}%" for x in xs)
                        + ")" if rr else "n/a"))
    p = ha.get("probe")
    if not p:
        row("replicas", "rotation visibility (ha_probe)", "n/a (failed; see the log)")
        targets.append(("new key visible on all replicas, p99 <= 100 ms", "n/a", "probe failed"))
        return
    n = p.get("rotations", 0)
    fmt = lambda xs: (f"{quantile(xs, 0.5):.1f} / {quantile(xs, 0.99):.1f} ms" if xs else "n/a")
    for key, label in (("stage_visible_ms", "new key listed by all 3 (from Rotate's return)"),
                       ("primary_spread_ms", "new primary on all 3 (first replica -> last)")):
        xs = p.get(key) or []
        p99 = quantile(xs, 0.99)
        res = verdict(p99 <= 100 if p99 is not None and n else None)
        row("replicas", f"{label}, p50 / p99 of {n} rotations", fmt(xs), "", "",
            "p99 <= 100 ms", res)
        targets.append((f"{label}: p99 <= 100 ms", res,
                        f"p50 {quantile(xs, 0.5):.1f} ms, p99 {p99:.1f} ms, max {max(xs):.1f} ms"
                        if xs else "n/a"))
    row("replicas", f"  Rotate -> every replica signs with it (scheduler every "
        f"{ha['scheduler_interval']}), p50 / p99", fmt(p.get("rotate_to_primary_ms") or []),
        "", "", "(info)", "")
    checked, valid = p.get("cross_checked", 0), p.get("cross_valid", 0)
    ok = checked > 0 and checked == valid and n > 0 and not p.get("error")
    row("replicas", "  new primary's first token, verified at once on the 2 others",
        f"{valid}/{checked} VALID", "", "", "0 rejections", verdict(ok))
    targets.append(("no replica rejects a token another signed with a new primary", verdict(ok),
                    f"{valid}/{checked} VALID" + (f"; {p['cross_first_problem']}"
                                                  if p.get("cross_first_problem") else "")
                    + (f"; probe error: {p['error']}" if p.get("error") else "")))


def render(m, cfg, rows, targets, its, diag):
    out = []
    out.append(f"sessiontoken bench, {m['date']}: {m['cores']} cores, {m['cpu']}"
               + (f" ({m['mhz']:.0f} MHz)" if m.get("mhz") else "")
               + f", Linux {m['kernel']}, load average {m['loadavg'][0]:.2f} at start; "
               f"other processes used {m.get('others_cores', 0):.2f} of {m['cores']} cores "
               "on average during the bench")
    out.append(f"commit {m['commit']}; {cfg['runs']} rounds; values are medians over rounds, "
               "ratios are medians of each round's ratio; load "
               f"{cfg['duration']:g} s (+{cfg['warmup']:g} s warm-up) per point, "
               f"{cfg['channels']} connections x {cfg['inflight']} calls in flight, loopback, "
               f"ours and the floor alternating in {cfg['slices']} slices"
               + ("; server pinned to CPU 0, loadgen to CPU 1" if cfg["pin"] else
                  "; server and loadgen share the cores")
               + (f"; itsdangerous {its['version']} on Python {its['python']}" if its else ""))
    out.append("")
    hdr = ("area", "measure", "ours", "reference", "ratio", "target", "result")
    widths = [max(len(str(r[i])) for r in rows + [hdr]) for i in range(len(hdr))]
    line = lambda r: "| " + " | ".join(str(v).ljust(widths[i]) for i, v in enumerate(r)) + " |"
    out.append(line(hdr))
    out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        out.append(line(r))
    if diag:
        out.append("")
        out.append("Diagnostics (median; single-thread unless stated; see docs/performance.md):")
        w0 = max(len(d[0]) for d in diag)
        w1 = max(len(d[1]) for d in diag)
        for name, val, note in diag:
            out.append(f"  {name.ljust(w0)}  {val.rjust(w1)}  {note}")
    out.append("")
    out.append("Targets:")
    for name, res, detail in targets:
        out.append(f"  {res:4}  {name}: {detail}")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build_dir", default=os.path.join(ROOT, "build", "release"))
    ap.add_argument("--skip", default="", help="comma list of: core,itsdangerous,load,keyrings,ha")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    build_dir = os.path.abspath(args.build_dir)
    # tmpfs when there is one: the store fsyncs every keyring file it writes, and the
    # 10,000-keyring directory is written once per bench.
    tmp = os.environ.get("BENCH_TMPDIR") or ("/dev/shm" if os.access("/dev/shm", os.W_OK)
                                             else None)
    workdir = tempfile.mkdtemp(prefix="sessiontoken-bench-", dir=tmp)
    t_start = time.time()
    bench = Bench(build_dir, workdir)
    cfg = {"runs": bench.runs, "duration": bench.duration, "warmup": bench.warmup,
           "channels": bench.channels, "inflight": bench.inflight, "keyrings": bench.keyrings,
           "slices": bench.slices,
           "pin": bench.pin}
    m = machine()
    busy0, ours0, wall0 = cpu_busy_seconds(), our_cpu_seconds(), time.time()
    core = its = krss = ha = None
    rounds = []
    try:
        if "core" not in skip:
            core = bench.core()
        if "itsdangerous" not in skip:
            its = bench.itsdangerous()
        if "load" not in skip:
            rounds = bench.service()
        if "keyrings" not in skip:
            krss = bench.keyring_rss()
        if "ha" not in skip:
            ha = bench.ha()
    finally:
        bench.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    wall = time.time() - wall0
    m["others_cores"] = max(0.0, (cpu_busy_seconds() - busy0) - (our_cpu_seconds() - ours0)) / wall
    rows, targets, diag = build_table(m, cfg, core, its, rounds, krss, ha)
    text = render(m, cfg, rows, targets, its, diag)
    print(text)
    print(f"\n(bench took {time.time() - t_start:.0f} s)")
    outdir = os.path.join(build_dir, "bench")
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "table.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(outdir, "results.json"), "w") as f:
        json.dump({"machine": m, "config": cfg, "core": core, "itsdangerous": its,
                   "rounds": rounds, "keyring_rss": krss, "replicas": ha}, f, indent=1)
    log(f"raw results: {outdir}/results.json")


if __name__ == "__main__":
    main()
