#!/usr/bin/python3
"""sessiontoken.Client against the real server binary: typed results, errors, deadlines,
retries of UNAVAILABLE with backoff (and none for keyring changes), and the lazy stub
generation path."""

import datetime
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import grpc

import harness
import sessiontoken
from sessiontoken import Algorithm, KeyState, Result
from sessiontoken import token as tk


def free_port():
    s = socket.socket()
    s.bind((harness.LOOPBACK, 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Typed(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.ServerProcess()
        cls.client = sessiontoken.Client(cls.server.target)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.server.close()

    def test_sign_verify_types(self):
        c = self.client
        self.assertEqual(c.health(), "SERVING")
        s = c.sign("user=42", datetime.timedelta(minutes=5), audience="web")
        self.assertIsInstance(s, sessiontoken.SignResult)
        self.assertEqual(s.issued_at.tzinfo, datetime.timezone.utc)
        self.assertEqual(s.expires_at - s.issued_at, datetime.timedelta(minutes=5))
        h = tk.parse_native_header(s.token)
        self.assertEqual((h.key_id, h.issued_at, h.expires_at),
                         (s.key_id, int(s.issued_at.timestamp()), int(s.expires_at.timestamp())))
        v = c.verify(s.token, audience="web")
        self.assertIs(v.result, Result.VALID)
        self.assertTrue(v.valid)
        self.assertEqual(v.payload, b"user=42")
        self.assertEqual((v.key_id, v.issued_at, v.expires_at),
                         (s.key_id, s.issued_at, s.expires_at))
        self.assertFalse(v.refresh_recommended)
        w = c.verify(s.token, audience="api")
        self.assertIs(w.result, Result.WRONG_AUDIENCE)
        self.assertFalse(w.valid)
        self.assertEqual(w.payload, b"")
        self.assertIs(c.verify("st1.AAAA", audience="web").result, Result.MALFORMED)

    def test_keys_typed(self):
        info = self.client.list_keys()
        self.assertEqual(info.name, "default")
        p = info.key(info.primary_key_id)
        self.assertIs(p.state, KeyState.PRIMARY)
        self.assertIs(p.algorithm, Algorithm.HMAC_SHA256)

    def test_errors(self):
        with self.assertRaises(sessiontoken.ServiceError) as cm:
            self.client.sign(b"x", 60, keyring="no-such-keyring")
        self.assertEqual(cm.exception.code, grpc.StatusCode.NOT_FOUND)
        with self.assertRaises(sessiontoken.ServiceError) as cm:
            self.client.sign(b"x", 0)
        self.assertEqual(cm.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("ttl", cm.exception.details)
        with self.assertRaises(ValueError):
            self.client.sign(b"x", datetime.timedelta(seconds=1.5))
        with self.assertRaises(TypeError):
            self.client.sign(b"x", 1.5)


class Retries(unittest.TestCase):
    def test_unavailable_is_retried_until_the_server_is_up(self):
        port = free_port()
        c = sessiontoken.Client(f"{harness.LOOPBACK}:{port}", timeout=8.0, retries=30,
                                initial_backoff=0.05, max_backoff=0.2)
        box = {}

        def start_later():
            time.sleep(0.7)
            box["server"] = harness.ServerProcess(port=port)
        t = threading.Thread(target=start_later)
        t.start()
        try:
            start = time.monotonic()
            self.assertEqual(c.health(), "SERVING")
            self.assertGreater(time.monotonic() - start, 0.5)   # it did wait and retry
            t.join()
            # Keyring changes are not retried: with the server gone, Rotate fails once,
            # at once, while the retried ListKeys keeps trying for its whole deadline.
            self.assertEqual(box["server"].stop(), 0)
            start = time.monotonic()
            with self.assertRaises(sessiontoken.ServiceError) as cm:
                c.rotate(timeout=3.0)
            self.assertEqual(cm.exception.code, grpc.StatusCode.UNAVAILABLE)
            self.assertLess(time.monotonic() - start, 1.0)
            start = time.monotonic()
            with self.assertRaises(sessiontoken.ServiceError) as cm:
                c.list_keys(timeout=1.0)
            elapsed = time.monotonic() - start
            self.assertIn(cm.exception.code, (grpc.StatusCode.UNAVAILABLE,
                                              grpc.StatusCode.DEADLINE_EXCEEDED))
            self.assertGreater(elapsed, 0.5)
            self.assertLess(elapsed, 1.5)     # the deadline covers the retries
        finally:
            t.join()
            c.close()
            if "server" in box:
                box["server"].close()

    def test_no_retries(self):
        c = sessiontoken.Client(f"{harness.LOOPBACK}:{free_port()}", timeout=5.0, retries=0)
        try:
            start = time.monotonic()
            with self.assertRaises(sessiontoken.ServiceError) as cm:
                c.verify("x")
            self.assertEqual(cm.exception.code, grpc.StatusCode.UNAVAILABLE)
            self.assertLess(time.monotonic() - start, 2.0)
        finally:
            c.close()


class LazyStubs(unittest.TestCase):
    def test_generates_stubs_into_the_cache_when_none_are_given(self):
        with tempfile.TemporaryDirectory() as cache:
            env = {k: v for k, v in os.environ.items() if k != "SESSIONTOKEN_PY_STUBS"}
            env.update(SESSIONTOKEN_STUB_CACHE=cache, PYTHONPATH=harness.PKG_ROOT,
                       PYTHONDONTWRITEBYTECODE="1")
            code = ("import sessiontoken._stubs as s; m = s.load(); "
                    "print(m.tokens_pb2.__file__)")
            out = subprocess.run([sys.executable, "-c", code], env=env, text=True,
                                 capture_output=True, timeout=60)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertTrue(out.stdout.strip().startswith(cache), out.stdout)
            # A wrong SESSIONTOKEN_PY_STUBS is an error, not a silent fallback.
            env["SESSIONTOKEN_PY_STUBS"] = cache + "/nothing-here"
            out = subprocess.run([sys.executable, "-c", code], env=env, text=True,
                                 capture_output=True, timeout=60)
            self.assertNotEqual(out.returncode, 0)
            self.assertIn("SESSIONTOKEN_PY_STUBS", out.stderr)


if __name__ == "__main__":
    harness.run(__name__)
