#!/usr/bin/python3
"""Independent reference implementation of the native token format v2 (docs/token-format.md):
subject, random token id and sealed payloads. Python's standard library for the encoding and
the HMAC, HKDF-SHA256 written out from RFC 5869 with `hmac`, and AES-256-GCM from Debian's
python3-cryptography (pyca/cryptography over OpenSSL, not BoringSSL: an independent AEAD).
Run as a script it regenerates native_v2.json; the C++ codec must produce byte-identical
tokens for the same token id and nonce, and every client must parse them."""
import base64
import hashlib
import hmac
import json
import os
import struct
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = b"st2."
FLAG_SEALED = 0x01
SEAL_LABEL = b"sessiontoken st2 payload seal"


def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode("ascii")


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    prk = hmac.new(salt or b"\0" * 32, ikm, hashlib.sha256).digest()  # RFC 5869 2.2
    okm, block = b"", b""
    for i in range((length + 31) // 32):  # RFC 5869 2.3
        block = hmac.new(prk, block + info + bytes([i + 1]), hashlib.sha256).digest()
        okm += block
    return okm[:length]


def sign(key: bytes, key_id: int, iat: int, exp: int, audience: bytes, subject: bytes,
         token_id: bytes, payload: bytes, nonce: bytes = None) -> str:
    """A v2 token; `nonce` given = the payload is sealed with it."""
    assert len(token_id) == 16 and len(subject) <= 128
    flags = FLAG_SEALED if nonce is not None else 0
    header = (struct.pack(">IQQ", key_id, iat, exp) + hashlib.sha256(audience).digest()[:4] +
              bytes([flags]) + token_id + bytes([len(subject)]) + subject)
    bound = PREFIX + struct.pack(">I", len(audience)) + audience  # MAC and AAD both start so
    if nonce is not None:
        seal_key = hkdf_sha256(key, b"", SEAL_LABEL, 32)
        payload = nonce + AESGCM(seal_key).encrypt(nonce, payload, bound + header)
    signed = header + payload
    mac = hmac.new(key, bound + signed, hashlib.sha256).digest()
    return PREFIX.decode() + b64url(signed + mac)


CASES = [
    # name, key hex, key_id, iat, exp, audience, subject, token id hex, payload, nonce hex
    ("empty", "00" * 32, 1, 0, 1, b"", b"", "00" * 16, b"", None),
    ("subject", bytes(range(32)).hex(), 0x01020304, 1767225600, 1767229200, b"web", b"user-42",
     bytes(range(16)).hex(), b"hello", None),
    ("json-session", "4b" * 32, 0xDEADBEEF, 1800000000, 1800086400, b"shop:session",
     b"alice@example.com", "a5" * 16, b'{"user_id":42,"cart":[1,2,3]}', None),
    ("max-subject", "ff" * 32, 0xFFFFFFFF, 1700000000, 1700000001, b"a" * 256,
     b"s" * 128, "ff" * 16, bytes(range(256)), None),
    ("utf8-subject", "01" * 48, 8, 1, 2, b"\xf0\x9f\x8d\xaa", "Zoë".encode(), "11" * 16,
     b"\xff\xfe", None),
    ("sealed-empty", "00" * 32, 1, 0, 1, b"", b"", "00" * 16, b"", "00" * 12),
    ("sealed-64", bytes(range(32)).hex(), 0x01020304, 1767225600, 1767229200, b"web", b"user-42",
     bytes(range(16)).hex(), b"S" * 64, bytes(range(12)).hex()),
    ("sealed-json", "4b" * 32, 0xDEADBEEF, 1800000000, 1800086400, b"shop:session", b"",
     "5a" * 16, b'{"user_id":42,"secret":"do not show"}', "c3" * 12),
    ("sealed-long-key", "01" * 48, 8, 1, 2, b"x", b"\x00\x01", "11" * 16, b"\x00" * 3, "ff" * 12),
    # The largest payload a 4095-character token holds with a 128-byte subject, sealed.
    ("sealed-max", "a5" * 32, 123456789, 1767225600, 1769817600, b"api", b"u" * 128,
     "77" * 16, b"Z" * (3068 - 74 - 128 - 28), "01" * 12),
]


def main() -> None:
    out = []
    for name, key_hex, key_id, iat, exp, aud, subject, tid_hex, payload, nonce_hex in CASES:
        nonce = bytes.fromhex(nonce_hex) if nonce_hex is not None else None
        token = sign(bytes.fromhex(key_hex), key_id, iat, exp, aud, subject,
                     bytes.fromhex(tid_hex), payload, nonce)
        assert len(token) <= 4095, (name, len(token))
        out.append({
            "name": name,
            "key_hex": key_hex,
            "key_id": key_id,
            "issued_at": iat,
            "expires_at": exp,
            "audience_hex": aud.hex(),
            "subject_hex": subject.hex(),
            "token_id_hex": tid_hex,
            "token_id": b64url(bytes.fromhex(tid_hex)),
            "payload_hex": payload.hex(),
            "sealed": nonce is not None,
            "nonce_hex": nonce_hex or "",
            "token": token,
        })
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "native_v2.json")
    with open(path, "w") as f:
        json.dump({"format": "st2", "vectors": out}, f, indent=1)
        f.write("\n")
    print(f"wrote {len(out)} vectors to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
