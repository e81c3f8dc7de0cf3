#!/usr/bin/python3
"""The baseline: sign/verify with itsdangerous (what Flask uses), one thread.

Prints one JSON object: {"<name>/<size>": ops_per_second (median of --reps), ...,
"version": ...}. Names:
  TimestampSigner.sign / .unsign    opaque bytes + timestamp + HMAC (the closest match to a
                                    native token: no serialization, no compression)
  FlaskSerializer.dumps / .loads    URLSafeTimedSerializer configured exactly like Flask's
                                    session interface (salt "cookie-session", HMAC-SHA1,
                                    key derivation "hmac", JSON, zlib when it helps): the
                                    Flask cookie format that token::SignFlask reproduces
The payload is the same JSON text as core_bench.cc builds: {"csrf":"<hex>"} of N bytes.
"""
import argparse
import hashlib
import json
import statistics
import sys
import time
from importlib import metadata

import itsdangerous


def payload(n):
    hexd = "0123456789abcdef"
    s = '{"csrf":"'
    while len(s) + 2 < n:
        i = len(s)
        s += hexd[((i * 2654435761) & 0xFFFFFFFF) >> 28]
    s += '"}'
    return (s + " " * n)[:n]


def rate(fn, seconds):
    """Calls fn in batches until `seconds` have passed; returns calls per second."""
    n, batch = 0, 64
    start = time.perf_counter()
    while True:
        for _ in range(batch):
            fn()
        n += batch
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="64,1024")
    ap.add_argument("--seconds", type=float, default=0.4)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    secret = "bench-flask-secret-key"
    out = {"version": metadata.version("itsdangerous"), "python": sys.version.split()[0]}
    for n in [int(x) for x in args.sizes.split(",")]:
        text = payload(n)
        data = text.encode()
        signer = itsdangerous.TimestampSigner(secret)
        signed = signer.sign(data)
        assert signer.unsign(signed, max_age=3600) == data
        flask = itsdangerous.URLSafeTimedSerializer(
            secret, salt="cookie-session",
            signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha1})
        obj = json.loads(text)
        cookie = flask.dumps(obj)
        assert flask.loads(cookie, max_age=3600) == obj
        cases = {
            "TimestampSigner.sign": lambda: signer.sign(data),
            "TimestampSigner.unsign": lambda: signer.unsign(signed, max_age=3600),
            "FlaskSerializer.dumps": lambda: flask.dumps(obj),
            "FlaskSerializer.loads": lambda: flask.loads(cookie, max_age=3600),
        }
        for name, fn in cases.items():
            rate(fn, 0.05)  # warm up
            out[f"{name}/{n}"] = statistics.median(rate(fn, args.seconds) for _ in range(args.reps))
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
