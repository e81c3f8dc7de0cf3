#!/usr/bin/python3
"""Instructions per call, server side, counted by valgrind --tool=callgrind.

A shared 2-core machine makes QPS noisy; instruction counts are not. This runs each server
under callgrind, sends a fixed-rate open-loop load with loadgen, zeroes the counters after
the warm-up (callgrind_control -z), dumps them after the window (-d), and divides by the
number of calls. Also prints where the instructions go, grouped by library.

    tests/bench/callgrind_service.py [--build_dir=build/release] [--qps=200] [--seconds=5]

Not part of `make bench` (it takes about a minute per case). Loopback only.
"""
import argparse
import glob
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def start(argv, banner, workdir, name):
    out = open(os.path.join(workdir, name + ".out"), "w+")
    err = open(os.path.join(workdir, name + ".err"), "w")
    p = subprocess.Popen(["valgrind", "--tool=callgrind",
                          f"--callgrind-out-file={workdir}/cg.{name}.%p"] + argv,
                         stdout=out, stderr=err)
    for _ in range(240):
        out.seek(0)
        m = re.search(re.escape(banner) + r" listening on (127\.0\.0\.1:\d+)", out.read())
        if m:
            return p, m.group(1)
        time.sleep(0.25)
    p.terminate()
    raise RuntimeError(f"{name} did not start under valgrind")


def totals(path):
    with open(path) as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                return int(line.split()[1])
    return None


def by_object(path):
    """Self Ir per shared object, parsed from the callgrind dump (call-cost lines, which
    repeat the callee's inclusive cost, are skipped)."""
    names = {}
    objs = {}
    ob = "?"
    after_calls = False
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                if after_calls:
                    after_calls = False
                    continue
                parts = line.split()
                if len(parts) >= 2:
                    objs[ob] = objs.get(ob, 0) + int(parts[1])
                continue
            after_calls = line.startswith("calls=")
            if line.startswith("ob="):
                v = line[3:]
                m = re.match(r"\((\d+)\)(?: (.*))?$", v)
                if m:
                    if m.group(2):
                        names[m.group(1)] = os.path.basename(m.group(2))
                    ob = names.get(m.group(1), "?")
                else:
                    ob = os.path.basename(v)
            elif line.startswith("cob="):
                m = re.match(r"\((\d+)\) (.*)$", line[4:])
                if m:
                    names[m.group(1)] = os.path.basename(m.group(2))
    return objs


def run_case(b, name, server_argv, banner, mode, qps, seconds, warmup, workdir):
    p, target = start(server_argv, banner, workdir, name)
    try:
        lg = subprocess.Popen([b["loadgen"], f"--target={target}", f"--mode={mode}",
                               f"--qps={qps}", f"--duration={seconds}s", f"--warmup={warmup}s",
                               "--channels=4", "--inflight=16"],
                              stdout=subprocess.PIPE, text=True)
        time.sleep(warmup)
        subprocess.run(["callgrind_control", "-z", str(p.pid)], capture_output=True)
        time.sleep(seconds)
        subprocess.run(["callgrind_control", "-d", str(p.pid)], capture_output=True)
        out, _ = lg.communicate(timeout=120)
    finally:
        p.terminate()
        p.wait(timeout=60)
    import json
    res = json.loads(out.strip().splitlines()[-1])
    dumps = sorted(glob.glob(f"{workdir}/cg.{name}.{p.pid}*"))
    # The dump taken by -d is the first numbered part (".1"); the last one is the exit dump.
    part = [d for d in dumps if re.search(r"\.1$", d)] or dumps
    ir = totals(part[0])
    calls = qps * seconds  # open loop: the schedule sets the number of calls in the window
    items = calls * (100 if mode.endswith("batch_verify") else 1)
    return {"name": name, "mode": mode, "calls": calls, "ir": ir,
            "ir_per_call": ir / calls if ir else None, "ir_per_item": ir / items if ir else None,
            "objects": by_object(part[0]), "errors": res.get("errors")}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build_dir", default=os.path.join(ROOT, "build", "release"))
    ap.add_argument("--qps", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--warmup", type=float, default=3)
    # floor_*_dd: the floor with absl's mutex deadlock detection left on (the library
    # default; sessiontoken-server and the floor turn it off).
    ap.add_argument("--cases", default="floor_verify,floor_verify_dd,verify,verify_metrics,sign,"
                    "floor_batch_verify,batch_verify")
    args = ap.parse_args()
    bd = os.path.abspath(args.build_dir)
    b = {"server": f"{bd}/server/sessiontoken-server", "loadgen": f"{bd}/tests/bench/loadgen",
         "floor": f"{bd}/tests/bench/floor_server"}
    work = tempfile.mkdtemp(prefix="sessiontoken-callgrind-")
    kek = os.path.join(work, "kek")
    with open(kek, "w") as f:
        f.write(secrets.token_hex(32))
    os.chmod(kek, 0o600)  # the server refuses a KEK file group or others may read
    results = []
    for case in args.cases.split(","):
        if case.startswith("floor_"):
            argv = [b["floor"], "--listen=127.0.0.1:0"]
            mode = case
            if case.endswith("_dd"):
                argv.append("--mutex_deadlock_detection=true")
                mode = case[: -len("_dd")]
            banner = "floor_server"
        else:
            argv = [b["server"], "--listen=127.0.0.1:0", f"--data_dir={work}/data-{case}",
                    f"--kek_file={kek}"]
            mode, banner = case, "sessiontoken-server"
            if case.endswith("_metrics"):  # the same with --metrics_listen (interceptor on)
                argv.append("--metrics_listen=127.0.0.1:0")
                mode = case[: -len("_metrics")]
        qps = args.qps // 4 if "batch" in case else args.qps
        print(f"[callgrind] {case} at {qps} calls/s ...", file=sys.stderr, flush=True)
        results.append(run_case(b, case, argv, banner, mode, qps, args.seconds, args.warmup,
                                work))
    print(f"{'case':22} {'Ir/call':>12} {'Ir/token':>10}  top objects (Ir/call)")
    for r in results:
        objs = sorted(r["objects"].items(), key=lambda kv: -kv[1])[:5]
        top = ", ".join(f"{o} {v / r['calls']:,.0f}" for o, v in objs)
        per_item = f"{r['ir_per_item']:,.0f}" if "batch" in r["mode"] else ""
        print(f"{r['name']:22} {r['ir_per_call'] or 0:12,.0f} {per_item:>10}  {top}")
    print(f"(work dir {work})", file=sys.stderr)


if __name__ == "__main__":
    main()
