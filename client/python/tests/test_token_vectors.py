#!/usr/bin/python3
"""The package's pure-Python token parsers against the shared vectors in tests/vectors
(native_v1.json, native_v2.json, flask_v1.json): public fields only, no service needed."""

import base64
import hashlib
import hmac
import json
import os
import struct
import unittest

import harness  # noqa: F401  (sys.path)
from sessiontoken import token as tk


def load(name):
    with open(os.path.join(harness.VECTORS, name)) as f:
        return json.load(f)


def b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class NativeVectors(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        doc = load("native_v1.json")
        assert doc["format"] == "st1"
        cls.vectors = doc["vectors"]

    def test_there_are_vectors(self):
        self.assertGreaterEqual(len(self.vectors), 5)

    def test_public_fields(self):
        for v in self.vectors:
            with self.subTest(v["name"]):
                h = tk.parse_native_header(v["token"])
                self.assertEqual(h.key_id, v["key_id"])
                self.assertEqual(h.issued_at, v["issued_at"])
                self.assertEqual(h.expires_at, v["expires_at"])
                self.assertEqual(h.payload.hex(), v["payload_hex"])
                self.assertTrue(h.audience_matches(bytes.fromhex(v["audience_hex"])))
                self.assertFalse(h.audience_matches(bytes.fromhex(v["audience_hex"]) + b"?"))
                self.assertEqual(len(h.mac), 32)
                self.assertTrue(tk.is_native(v["token"]))

    def test_strict_parsing_rejects_near_misses(self):
        tok = next(v["token"] for v in self.vectors if v["name"] == "hello")
        body = base64.urlsafe_b64decode(tok[4:] + "=" * (-len(tok[4:]) % 4))
        bad = {
            "no prefix": tok[4:],
            "other version": "st2." + tok[4:],
            "padding": tok + "=" * (-len(tok[4:]) % 4 or 4),
            "std alphabet": tok[:10] + "+" + tok[11:],
            "trailing dot": tok + ".",
            "whitespace": tok + " ",
            "short body": "st1." + b64(body[:55]),
            "payload too long": "st1." + b64(body[:24] + b"x" * 3001 + body[-32:]),
            "expires before issued": "st1." + b64(body[:4] + (10).to_bytes(8, "big")
                                                  + (9).to_bytes(8, "big") + body[20:]),
            "negative issued_at": "st1." + b64(body[:4] + b"\xff" * 8 + body[12:]),
            "too long": "st1." + "A" * 4092,
        }
        # Unused low bits of the last character set: a second encoding of the same body.
        last = tok[-1]
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        if len(tok[4:]) % 4:
            bad["non-canonical last char"] = tok[:-1] + alphabet[alphabet.index(last) | 1]
        for name, s in bad.items():
            with self.subTest(name):
                self.assertNotEqual(s, tok)
                with self.assertRaises(tk.MalformedToken):
                    tk.parse_native_header(s)
        self.assertEqual(tk.parse_native_header(tok).key_id, 0x01020304)


class NativeV2Vectors(unittest.TestCase):
    """tests/vectors/native_v2.json (tests/vectors/native_v2.py): subject, token id, sealed."""

    @classmethod
    def setUpClass(cls):
        doc = load("native_v2.json")
        assert doc["format"] == "st2"
        cls.vectors = doc["vectors"]

    def test_public_fields_and_mac(self):
        self.assertGreaterEqual(sum(v["sealed"] for v in self.vectors), 4)
        for v in self.vectors:
            with self.subTest(v["name"]):
                h = tk.parse_native_header(v["token"])
                self.assertEqual(h.version, 2)
                self.assertEqual(h.key_id, v["key_id"])
                self.assertEqual((h.issued_at, h.expires_at), (v["issued_at"], v["expires_at"]))
                self.assertEqual(h.subject.hex(), v["subject_hex"])
                self.assertEqual(h.token_id, v["token_id"])
                self.assertEqual(h.sealed, v["sealed"])
                aud = bytes.fromhex(v["audience_hex"])
                self.assertTrue(h.audience_matches(aud))
                body = base64.urlsafe_b64decode(v["token"][4:] + "=" * (-len(v["token"][4:]) % 4))
                mac = hmac.new(bytes.fromhex(v["key_hex"]),
                               b"st2." + struct.pack(">I", len(aud)) + aud + body[:-32],
                               hashlib.sha256).digest()
                self.assertEqual(h.mac, mac)
                if v["sealed"]:
                    self.assertEqual(len(h.payload), len(v["payload_hex"]) // 2 + 28)
                    self.assertEqual(h.payload[:12].hex(), v["nonce_hex"])
                    if len(v["payload_hex"]) >= 16:
                        self.assertNotIn(bytes.fromhex(v["payload_hex"])[:8], body)
                else:
                    self.assertEqual(h.payload.hex(), v["payload_hex"])

    def test_sealed_payloads_open_with_the_documented_key(self):
        try:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
            from cryptography.hazmat.primitives.kdf.hkdf import HKDF
            from cryptography.hazmat.primitives import hashes
        except ImportError:  # Debian: python3-cryptography
            self.skipTest("python3-cryptography is not installed")
        for v in (v for v in self.vectors if v["sealed"]):
            with self.subTest(v["name"]):
                h = tk.parse_native_header(v["token"])
                key = HKDF(hashes.SHA256(), 32, None, b"sessiontoken st2 payload seal").derive(
                    bytes.fromhex(v["key_hex"]))
                aud = bytes.fromhex(v["audience_hex"])
                body = base64.urlsafe_b64decode(v["token"][4:] + "=" * (-len(v["token"][4:]) % 4))
                header = body[:len(body) - 32 - len(h.payload)]
                aad = b"st2." + struct.pack(">I", len(aud)) + aud + header
                plain = AESGCM(key).decrypt(h.payload[:12], h.payload[12:], aad)
                self.assertEqual(plain.hex(), v["payload_hex"])

    def test_strict_parsing_rejects_near_misses(self):
        tok = next(v["token"] for v in self.vectors if v["name"] == "subject")
        body = base64.urlsafe_b64decode(tok[4:] + "=" * (-len(tok[4:]) % 4))

        def with_byte(i, value):
            return "st2." + b64(body[:i] + bytes([value]) + body[i + 1:])

        bad = {
            "unknown version": "st3." + tok[4:],
            "unknown flag": with_byte(24, 0x02),
            "sealed flag, too short for nonce and tag": with_byte(24, 0x01),
            "subject over 128 bytes": with_byte(41, 129),
            "subject past the end": with_byte(41, 120),
            "body under 74 bytes": "st2." + b64(body[:73]),
            "too long": "st2." + "A" * 4092,
        }
        for name, s in bad.items():
            with self.subTest(name):
                with self.assertRaises(tk.MalformedToken):
                    tk.parse_native_header(s)
        self.assertEqual(tk.parse_native_header(tok).subject, b"user-42")
        self.assertTrue(tk.is_native(tok))


class FlaskVectors(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        doc = load("flask_v1.json")
        assert doc["format"] == "flask-securecookie"
        cls.vectors = doc["vectors"]

    def test_public_fields(self):
        self.assertTrue(any(v["compressed"] for v in self.vectors))
        for v in self.vectors:
            with self.subTest(v["name"]):
                h = tk.parse_flask_header(v["cookie"])
                self.assertEqual(h.timestamp, v["timestamp"])
                self.assertEqual(h.payload.hex(), v["payload_hex"])
                self.assertEqual(h.compressed, v["compressed"])
                self.assertEqual(len(h.signature), 20)
                self.assertFalse(tk.is_native(v["cookie"]))
                with self.assertRaises(tk.MalformedToken):
                    tk.parse_native_header(v["cookie"])

    def test_rejects_near_misses(self):
        c = next(v["cookie"] for v in self.vectors if v["name"] == "small")
        body, ts, sig = c.split(".")
        ts_zero = b64(b"\0" + base64.urlsafe_b64decode(ts + "=" * (-len(ts) % 4)))
        for name, s in {
            "extra dot": c + ".",
            "short signature": f"{body}.{ts}.{sig[:-2]}",
            "padded": f"{body}=.{ts}.{sig}",
            "leading zero timestamp": f"{body}.{ts_zero}.{sig}",
            "compressed marker on plain body": "." + c,
        }.items():
            with self.subTest(name):
                with self.assertRaises(tk.MalformedToken):
                    tk.parse_flask_header(s)

    def test_signature_not_checked_here(self):
        # The parser reads public fields only: a wrong signature parses (the service is
        # what rejects it). Guards against the parser pretending to authenticate.
        c = next(v["cookie"] for v in self.vectors if v["name"] == "small")
        body, ts, sig = c.split(".")
        forged = f"{body}.{ts}.{b64(bytes(20))}"
        self.assertEqual(tk.parse_flask_header(forged).payload,
                         tk.parse_flask_header(c).payload)


if __name__ == "__main__":
    harness.run(__name__)
