#!/usr/bin/env python3
"""Regenerates the committed seed corpus of the fuzz targets (tests/fuzz/corpus/<target>/).

    python3 tests/fuzz/make_corpus.py

Seeds: real tokens from tests/vectors/native_v1.json and flask_v1.json, configs in the
style of docs/operations.md, base64url strings, and StoredKeyring plaintexts plus two blobs
sealed with the fixed KEK of sealer_fuzzer.cc. Only the sealed blobs need a third-party
module (python3-cryptography, for AES-GCM); without it they are left as they are.
Deterministic: the blobs use a fixed nonce.
"""
import hashlib
import hmac
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
KEK = b"sessiontoken-fuzz-kek-0123456789"  # sealer_fuzzer.cc: kKek
NONCE = b"seed-nonce-1"                    # 12 bytes


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def vectors(name):
    with open(os.path.join(ROOT, "tests", "vectors", name)) as f:
        return {v["name"]: v for v in json.load(f)["vectors"]}


# --- protobuf wire format, enough for StoredKeyring (proto/sessiontoken/v1/keyring.proto)
def varint(n):
    n &= (1 << 64) - 1
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, value):
    if isinstance(value, int):
        return varint(num << 3) + varint(value)
    return varint(num << 3 | 2) + varint(len(value)) + value


def stored_key(kid, algorithm, state, created, material):
    return b"".join([field(1, kid), field(2, algorithm), field(3, state), field(4, created),
                     field(5, created), field(6, material) if material else b""])


def stored_keyring(name, revision, created, keys, policy=b""):
    return b"".join([field(1, name.encode()), field(2, revision), field(3, created)] +
                    [field(4, k) for k in keys] + ([field(5, policy)] if policy else []))


HMAC_SHA256, HMAC_SHA1_FLASK = 1, 2
STAGED, PRIMARY, ACTIVE, DISABLED, DESTROYED = 1, 2, 3, 4, 5


def main():
    native = vectors("native_v1.json")
    flask = vectors("flask_v1.json")

    # native: every native vector, plus one Flask cookie (Verify routes both formats).
    for n in ["empty-payload", "hello", "json-session", "binary-payload", "one-byte",
              "two-bytes", "max-payload"]:
        write("native", n, native[n]["token"])
    write("native", "flask-small", flask["small"]["cookie"])
    # st2 (tests/vectors/native_v2.json): subject, token id, clear and sealed payloads.
    for n, v in vectors("native_v2.json").items():
        write("native", "v2-" + n, v["token"])

    # flask: plain, compressed, other salt, odd timestamps, high ratio; plus one native token.
    for n in ["small", "empty-dict", "large-repetitive", "non-default-salt",
              "bytes-secret-non-ascii", "str-secret-non-ascii", "small-timestamp",
              "timestamp-zero", "compress-saves-2-bytes", "compressed-high-ratio"]:
        write("flask", n, flask[n]["cookie"])
    write("flask", "native-hello", native["hello"]["token"])

    # base64url: token sections and edge lengths.
    write("base64url", "empty", "")
    write("base64url", "two-chars", "AA")
    write("base64url", "three-chars", "AAE")
    write("base64url", "four-chars", "_-8A")
    write("base64url", "native-body", native["hello"]["token"][4:])
    cookie = flask["large-repetitive"]["cookie"]
    write("base64url", "flask-compressed-body", cookie[1:].split(".")[0])
    write("base64url", "flask-signature", cookie.rsplit(".", 1)[1])

    # config: the documented example, a minimal one, a Flask keyring, an invalid one.
    write("config", "operations-example", """\
listen: "0.0.0.0:50051"
data_dir: "/var/lib/sessiontoken"
kek_file: "/run/secrets/sessiontoken-kek"
audit_log: "/var/log/sessiontoken/audit.jsonl"
limits { max_payload_bytes: 2048 max_ttl { seconds: 2678400 } max_batch_items: 500 }
keyrings {
  name: "shop"
  policy {
    rotation_period { seconds: 2592000 }   # 30 days
    verify_window { seconds: 2764800 }     # 32 days >= max_ttl (31 days)
    destroy_after { seconds: 604800 }      # 7 days
  }
}
""")
    write("config", "minimal", 'listen: "127.0.0.1:50051"\n')
    write("config", "full", """\
listen: "127.0.0.1:7000"
data_dir: "data"
kek_env: "SESSIONTOKEN_KEK"
audit_log: "-"
default_keyring: "web"
scheduler_interval { seconds: 60 }
shutdown_grace { seconds: 10 nanos: 500000000 }
limits { max_payload_bytes: 1024 max_ttl { seconds: 86400 } max_clock_skew { seconds: 30 } max_batch_items: 50 }
keyrings {
  name: "web"
  algorithm: HMAC_SHA256
  policy { rotation_period { seconds: 604800 } stage_lead_time { seconds: 3600 }
           verify_window { seconds: 86400 } destroy_after { seconds: 604800 } max_token_ttl { seconds: 3600 } }
}
keyrings { name: "legacy-flask" algorithm: HMAC_SHA1_FLASK }
""")
    write("config", "invalid-policy", """\
keyrings {
  name: "a"
  policy { verify_window { seconds: 60 } max_token_ttl { seconds: 120 } }
}
""")

    # sealer: StoredKeyring plaintexts (the harness seals inputs itself) and genuine blobs.
    dev = native["hello"]["key_hex"]
    native_only = stored_keyring("default", 3, 1767225600, [
        stored_key(16909060, HMAC_SHA256, PRIMARY, 1767225600, bytes.fromhex(dev)),
        stored_key(7, HMAC_SHA256, ACTIVE, 1767000000, b"\xff" * 32),
        stored_key(8, HMAC_SHA256, DISABLED, 1766000000, b"\x01" * 32),
        stored_key(9, HMAC_SHA256, DESTROYED, 1765000000, b""),
    ], policy=field(1, field(1, 2592000)) + field(3, field(1, 2764800)))
    mixed = stored_keyring("shop", 1, 1767225600, [
        stored_key(0xF1000001, HMAC_SHA1_FLASK, PRIMARY, 1767225600, b"dev-secret"),
        stored_key(3735928559, HMAC_SHA256, STAGED, 1767225601, b"K" * 32),
    ])
    write("sealer", "plain-native", native_only)
    write("sealer", "plain-mixed", mixed)
    write("sealer", "plain-no-primary", stored_keyring("default", 1, 0, [
        stored_key(1, HMAC_SHA256, ACTIVE, 0, b"\x00" * 32)]))
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:
        print("make_corpus: python3-cryptography missing, sealed blobs not regenerated")
    else:
        fp = hmac.new(KEK, b"sessiontoken kek fingerprint v1", hashlib.sha256).digest()[:8]
        for blob_name, keyring_name, plain in [("sealed-default", "default", native_only)]:
            aad = b"STK1" + fp + b"keyring:" + keyring_name.encode()
            ct = AESGCM(KEK).encrypt(NONCE, plain, aad)
            write("sealer", blob_name, b"STK1" + fp + NONCE + ct)
        # Same plaintext sealed for another keyring name: Open("default", .) must refuse it.
        aad = b"STK1" + fp + b"keyring:shop"
        write("sealer", "sealed-shop", b"STK1" + fp + NONCE + AESGCM(KEK).encrypt(NONCE, mixed, aad))
        # A different KEK's fingerprint.
        write("sealer", "blob-foreign-fingerprint", b"STK1" + b"\x00" * 8 + NONCE + b"\x00" * 32)


if __name__ == "__main__":
    main()
