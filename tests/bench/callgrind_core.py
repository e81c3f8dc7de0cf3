#!/usr/bin/python3
"""Instructions per operation of core_bench benchmarks, counted by valgrind's callgrind.

Wall-clock numbers on a shared machine drift by 20-40% between runs; instruction counts do
not. For each case this runs core_bench under callgrind with collection limited to the
benchmark function, counts how many times the measured function was called, and divides.

    tests/bench/callgrind_core.py [--build_dir=build/release]

Caveats: valgrind has no SHA-NI, so BoringSSL takes its AVX SHA-256 path (more instructions
than the hardware runs); kernel work (page faults, e.g. those of the fresh deflate state
that compress2 allocates per call) is invisible to callgrind.
"""
import argparse
import os
import re
import shutil
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# (benchmark regex, function to collect in, measured callee: a regex on the demangled name).
# Calls to the callee are counted from any caller: only the collect function's time is
# collected, so it should hold the timed loop and little else (HmacComputeLoop is the HMAC
# benchmarks' loop alone, without their test-vector and allocation checks).
CASES = [
    ("BM_NativeVerify/64$", "BM_NativeVerify", r"keyring::Keyring::Verify\("),
    ("BM_NativeSign/64$", "BM_NativeSign", r"keyring::Keyring::Sign\("),
    ("BM_NativeCodecVerify/64$", "BM_NativeCodecVerify", r"token::ParseNative\("),
    ("BM_EngineVerify/real_time/threads:1$", "BM_EngineVerify", r"engine::Engine::Verify\("),
    ("BM_EngineSign/real_time/threads:1$", "BM_EngineSign", r"engine::Engine::Sign\("),
    ("BM_FlaskSign/64$", "BM_FlaskSign", r"token::SignFlask(\[abi:cxx11\])?\("),
    ("BM_FlaskVerify/64$", "BM_FlaskVerify", r"token::ParseFlask\("),
    ("BM_HmacSha256$", "HmacComputeLoop", r"HmacImpl<sha256_state_st.*>::Compute\("),
    ("BM_HmacSha1$", "HmacComputeLoop", r"HmacImpl<sha_state_st.*>::Compute\("),
    ("BM_BatchVerifyProto_heap$", "BM_BatchVerifyProto_heap", r"ParseFromString\("),
    ("BM_BatchVerifyProto_arena$", "BM_BatchVerifyProto_arena", r"ParseFromString\("),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build_dir", default=os.path.join(ROOT, "build", "release"))
    args = ap.parse_args()
    core = os.path.join(os.path.abspath(args.build_dir), "tests", "bench", "core_bench")
    work = tempfile.mkdtemp(prefix="sessiontoken-callgrind-core-")
    print(f"{'benchmark':38} {'Ir/op':>10}  {'calls':>8}")
    try:
        run_cases(core, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_cases(core, work):
    for flt, fn, callee in CASES:
        out = os.path.join(work, re.sub(r"\W", "_", flt))
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                        f"--toggle-collect=*{fn}*", core, f"--benchmark_filter={flt}",
                        # Under valgrind an iteration is ~50x slower. Too short a minimum
                        # time can stop Google Benchmark after one cold iteration (setup
                        # included); the batch cases need more time still.
                        "--benchmark_min_time=" + ("2" if "Batch" in fn else "0.1")],
                       capture_output=True, check=True)
        total, calls = count(out, "", callee)
        per = total / calls if (total and calls) else float("nan")
        warn = "  (too few calls: setup dominates)" if calls < 20 else ""
        print(f"{flt.rstrip('$'):38} {per:10,.0f}  {calls:8,}{warn}", flush=True)


def count(path, caller, callee):
    """(total Ir, calls from `caller` to `callee`) from a raw callgrind dump."""
    names = {}
    total = 0
    fn = cfn = ""
    pending = False
    calls = 0

    def name(v):
        m = re.match(r"\((\d+)\)(?: (.*))?$", v)
        if not m:
            return v
        if m.group(2):
            names[m.group(1)] = m.group(2)
        return names.get(m.group(1), "")

    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("totals:") or line.startswith("summary:"):
                total = int(line.split()[1])
            elif line.startswith("fn="):
                fn = name(line[3:])
            elif line.startswith("cfn="):
                cfn = name(line[4:])
            elif line.startswith("calls="):
                if caller in fn and re.search(callee, cfn):
                    calls += int(line[6:].split()[0])
    return total, calls


if __name__ == "__main__":
    main()
