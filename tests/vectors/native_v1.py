#!/usr/bin/python3
"""Independent reference implementation of the native token format (docs/token-format.md),
standard library only. Run as a script it regenerates native_v1.json, the vectors the C++
(and client) tests check; the C++ codec must produce byte-identical tokens."""
import base64
import hashlib
import hmac
import json
import os
import struct
import sys

PREFIX = b"st1."


def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode("ascii")


def sign(key: bytes, key_id: int, iat: int, exp: int, audience: bytes, payload: bytes) -> str:
    aud_tag = hashlib.sha256(audience).digest()[:4]
    signed = struct.pack(">IQQ", key_id, iat, exp) + aud_tag + payload
    mac = hmac.new(key, PREFIX + struct.pack(">I", len(audience)) + audience + signed,
                   hashlib.sha256).digest()
    return PREFIX.decode() + b64url(signed + mac)


CASES = [
    # name, key hex, key_id, iat, exp, audience, payload
    ("empty-payload", "00" * 32, 1, 0, 1, b"", b""),
    ("hello", bytes(range(32)).hex(), 0x01020304, 1767225600, 1767229200, b"web", b"hello"),
    ("json-session", "4b" * 32, 0xDEADBEEF, 1800000000, 1800086400, b"shop:session",
     b'{"user_id":42,"cart":[1,2,3]}'),
    ("binary-payload", bytes(range(100, 132)).hex(), 0xFFFFFFFF, 1700000000, 1700000001,
     b"a" * 256, bytes(range(256))),
    ("one-byte", "ff" * 32, 7, 1, 2, b"x", b"\x00"),
    ("two-bytes", "01" * 48, 8, 1, 2, b"\xf0\x9f\x8d\xaa", b"\xff\xfe"),
    ("max-payload", "a5" * 32, 123456789, 1767225600, 1769817600, b"api", b"Z" * 3000),
]


def main() -> None:
    out = []
    for name, key_hex, key_id, iat, exp, aud, payload in CASES:
        out.append({
            "name": name,
            "key_hex": key_hex,
            "key_id": key_id,
            "issued_at": iat,
            "expires_at": exp,
            "audience_hex": aud.hex(),
            "payload_hex": payload.hex(),
            "token": sign(bytes.fromhex(key_hex), key_id, iat, exp, aud, payload),
        })
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "native_v1.json")
    with open(path, "w") as f:
        json.dump({"format": "st1", "vectors": out}, f, indent=1)
        f.write("\n")
    print(f"wrote {len(out)} vectors to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
