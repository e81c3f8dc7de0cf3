#!/usr/bin/python3
"""The package's pure-Python token parsers against the shared vectors in tests/vectors
(native_v1.json, flask_v1.json): public fields only, no service needed."""

import base64
import json
import os
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
