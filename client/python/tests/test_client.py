#!/usr/bin/python3
"""sessiontoken.Client against the real server binary (typed results, errors, deadlines,
reconnecting after a restart) and against a scripted grpcio server on 127.0.0.1 (retries of
UNAVAILABLE and none for keyring changes, default deadlines: what the shared service config
proto/sessiontoken/v1/service_config.json says), and the lazy stub generation path."""

import copy
import datetime
import json
import os
import subprocess
import sys
import shutil
import tempfile
import threading
import time
import unittest
from concurrent import futures

import grpc

import harness
import sessiontoken
from sessiontoken import Algorithm, KeyState, Result
from sessiontoken import _stubs
from sessiontoken import token as tk


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

    def test_subject_and_token_id(self):
        c = self.client
        s = c.sign("cart=3", 60, audience="web", subject="user-42")
        self.assertEqual(len(s.token_id), 22)
        h = tk.parse_native_header(s.token)
        self.assertEqual((h.version, h.subject, h.token_id), (2, b"user-42", s.token_id))
        v = c.verify(s.token, audience="web")
        self.assertIs(v.result, Result.VALID)
        self.assertEqual((v.subject, v.token_id), ("user-42", s.token_id))
        self.assertNotEqual(c.sign("cart=3", 60, audience="web").token_id, s.token_id)
        w = c.verify(s.token, audience="api")
        self.assertEqual((w.subject, w.token_id), ("", ""))
        with self.assertRaises(sessiontoken.ServiceError) as cm:
            c.sign("x", 60, subject="s" * 129)
        self.assertEqual(cm.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("subject", cm.exception.details)

    def test_sealed_keyring(self):
        c = self.client
        secret = b'{"user":42,"iban":"DE89370400440532013000"}'
        info = c.create_keyring("sealed-typed",
                                policy=sessiontoken.KeyringPolicy(seal_payloads=True))
        self.assertTrue(info.policy.seal_payloads)
        s = c.sign(secret, 60, keyring="sealed-typed", subject="u42")
        h = tk.parse_native_header(s.token)
        self.assertTrue(h.sealed)
        self.assertNotIn(b"DE89", h.payload)
        v = c.verify(s.token, keyring="sealed-typed")
        self.assertEqual((v.result, v.payload, v.subject), (Result.VALID, secret, "u42"))
        # Switching sealing off keeps the sealed token verifying; new tokens are in clear.
        c.set_policy(sessiontoken.KeyringPolicy(seal_payloads=False), "sealed-typed")
        self.assertEqual(c.verify(s.token, keyring="sealed-typed").payload, secret)
        self.assertFalse(tk.parse_native_header(c.sign(secret, 60, keyring="sealed-typed").token).sealed)

    def test_keys_typed(self):
        info = self.client.list_keys()
        self.assertEqual(info.name, "default")
        p = info.key(info.primary_key_id)
        self.assertIs(p.state, KeyState.PRIMARY)
        self.assertIs(p.algorithm, Algorithm.HMAC_SHA256)

    def test_policy_round_trip(self):
        day = datetime.timedelta(days=1)
        policy = sessiontoken.KeyringPolicy(verify_window=31 * day, destroy_after=7 * day,
                                            tombstone_retention=90 * day)
        info = self.client.create_keyring("policy-typed", policy=policy)
        self.assertEqual(info.policy, policy)
        self.assertEqual(self.client.get_keyring("policy-typed").policy, policy)
        with self.assertRaises(sessiontoken.ServiceError) as cm:
            self.client.set_policy(sessiontoken.KeyringPolicy(
                tombstone_retention=datetime.timedelta(seconds=-1)), "policy-typed")
        self.assertEqual(cm.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("tombstone_retention", cm.exception.details)

    def test_key_usage_typed(self):
        c = self.client
        before = c.get_key_usage().key(c.list_keys().primary_key_id)
        s = c.sign(b"u", ttl=60, audience="web")
        c.verify(s.token, audience="web")
        c.verify(s.token, audience="web")
        u = c.get_key_usage()
        self.assertEqual(u.keyring, "default")
        self.assertIsNotNone(u.counting_since)
        k = u.key(s.key_id)
        self.assertIs(k.state, KeyState.PRIMARY)
        self.assertEqual(k.verified_last_hour, before.verified_last_hour + 2)
        self.assertEqual(k.signed_last_day, before.signed_last_day + 1)
        self.assertIsNotNone(k.last_verified_at)

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


MUTATIONS = ("Rotate", "ImportKey", "CreateKeyring", "PromoteKey", "DisableKey", "EnableKey",
             "DestroyKey", "SetPolicy")
ADMIN_READS = ("ListKeys", "ListKeyrings", "GetKeyring")
SHARED_CONFIG = json.loads(_stubs.service_config())


def method_config(config, service, method):
    """The methodConfig entry that applies to service/method (exact name, then service)."""
    full = f"sessiontoken.v1.{service}"
    for want in (method, ""):
        for entry in config["methodConfig"]:
            if any(n["service"] == full and n.get("method", "") == want for n in entry["name"]):
                return entry
    return None


class ScriptedServer:
    """SessionTokens and KeyAdmin in this process: each call is recorded, then answered by
    behaviour[method](n) (n: 1-based count of that method's calls) with a StatusCode to fail
    with, "hang" (until the client gives up), or None for an empty response."""

    def __init__(self):
        pb = _stubs.load()
        self.calls = []
        self.behaviour = {}
        self._release = threading.Event()
        self.server = grpc.server(futures.ThreadPoolExecutor(8))
        handlers = {}
        for service, mod in (("SessionTokens", pb.tokens_pb2), ("KeyAdmin", pb.admin_pb2)):
            desc = mod.DESCRIPTOR.services_by_name[service]
            methods = {}
            for m in desc.methods:
                out = _message_class(pb, m.output_type.full_name)
                inp = _message_class(pb, m.input_type.full_name)
                methods[m.name] = grpc.unary_unary_rpc_method_handler(
                    self._handler(m.name, out), request_deserializer=inp.FromString,
                    response_serializer=out.SerializeToString)
            handlers[desc.full_name] = methods
        self.server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler(n, h) for n, h in handlers.items()])
        self.port = self.server.add_insecure_port(f"{harness.LOOPBACK}:0")
        self.target = f"{harness.LOOPBACK}:{self.port}"
        self.server.start()

    def _handler(self, name, out):
        def handle(request, context):
            self.calls.append(name)
            n = self.calls.count(name)
            b = self.behaviour.get(name, lambda n: None)(n)
            if b == "hang":
                self._release.wait(30)
                context.abort(grpc.StatusCode.ABORTED, "released")
            if isinstance(b, grpc.StatusCode):
                context.abort(b, f"scripted {name} failure {n}")
            return out()
        return handle

    def reset(self):
        self.calls.clear()
        self.behaviour.clear()

    def close(self):
        self._release.set()
        self.server.stop(None)


def _message_class(pb, full_name):
    name = full_name.rsplit(".", 1)[1]
    for mod in (pb.tokens_pb2, pb.admin_pb2, pb.common_pb2):
        if hasattr(mod, name):
            return getattr(mod, name)
    raise KeyError(full_name)


class Retries(unittest.TestCase):
    """What the shared service config says, done by the Python client."""

    @classmethod
    def setUpClass(cls):
        cls.fake = ScriptedServer()
        cls.client = sessiontoken.Client(cls.fake.target)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.fake.close()

    def setUp(self):
        self.fake.reset()

    def test_unavailable_is_retried_other_codes_are_not(self):
        self.fake.behaviour["Verify"] = lambda n: grpc.StatusCode.UNAVAILABLE if n <= 2 else None
        self.fake.behaviour["Sign"] = lambda n: grpc.StatusCode.INTERNAL
        self.assertEqual(self.client.verify("t").result, Result.RESULT_UNSPECIFIED)
        self.assertEqual(self.fake.calls.count("Verify"), 3)
        with self.assertRaises(sessiontoken.ServiceError) as cm:
            self.client.sign(b"x", 5)
        self.assertEqual(cm.exception.code, grpc.StatusCode.INTERNAL)
        self.assertEqual(self.fake.calls.count("Sign"), 1)

    def test_attempts_are_bounded_by_the_shared_config(self):
        self.fake.behaviour["Verify"] = lambda n: grpc.StatusCode.UNAVAILABLE
        with self.assertRaises(sessiontoken.ServiceError) as cm:
            self.client.verify("t")
        self.assertEqual(cm.exception.code, grpc.StatusCode.UNAVAILABLE)
        want = method_config(SHARED_CONFIG, "SessionTokens", "Verify")["retryPolicy"]
        self.assertEqual(self.fake.calls.count("Verify"), want["maxAttempts"])

    def test_the_call_deadline_covers_the_retries(self):
        self.fake.behaviour["Verify"] = lambda n: grpc.StatusCode.UNAVAILABLE if n == 1 else "hang"
        with self.assertRaises(sessiontoken.ServiceError) as cm:
            self.client.verify("t", timeout=0.5)
        self.assertEqual(cm.exception.code, grpc.StatusCode.DEADLINE_EXCEEDED)
        self.assertEqual(self.fake.calls.count("Verify"), 2)

    def test_admin_mutations_are_never_retried_admin_reads_are(self):
        for name in MUTATIONS + ADMIN_READS:
            self.fake.behaviour[name] = lambda n: grpc.StatusCode.UNAVAILABLE
        c = self.client
        policy = sessiontoken.KeyringPolicy()
        calls = [c.rotate, lambda: c.import_key(b"k" * 32), lambda: c.create_keyring("x"),
                 lambda: c.promote_key(1), lambda: c.disable_key(1), lambda: c.enable_key(1),
                 lambda: c.destroy_key(1), lambda: c.set_policy(policy)]
        for call in calls:
            with self.assertRaises(sessiontoken.ServiceError) as cm:
                call()
            self.assertEqual(cm.exception.code, grpc.StatusCode.UNAVAILABLE)
        self.assertEqual(self.fake.calls, list(MUTATIONS))
        for name in MUTATIONS:
            self.assertNotIn("retryPolicy", method_config(SHARED_CONFIG, "KeyAdmin", name), name)
        self.fake.reset()
        for name in ADMIN_READS:
            self.fake.behaviour[name] = lambda n: grpc.StatusCode.UNAVAILABLE
        for call in (c.list_keys, c.list_keyrings, c.get_keyring):
            with self.assertRaises(sessiontoken.ServiceError):
                call()
        for name in ADMIN_READS:
            want = method_config(SHARED_CONFIG, "KeyAdmin", name)["retryPolicy"]["maxAttempts"]
            self.assertEqual(self.fake.calls.count(name), want, name)

    def test_the_client_loads_proto_service_config_json(self):
        # A copy of proto/ whose service_config.json differs (2 attempts, 1 s timeout), found
        # through SESSIONTOKEN_PROTO_DIR by a fresh interpreter.
        config = copy.deepcopy(SHARED_CONFIG)
        verify = method_config(config, "SessionTokens", "Verify")
        verify["retryPolicy"]["maxAttempts"] = 2
        verify["timeout"] = "1s"
        self.fake.behaviour["Verify"] = lambda n: grpc.StatusCode.UNAVAILABLE if n <= 2 else "hang"
        with tempfile.TemporaryDirectory() as d:
            shutil.copytree(os.path.normpath(os.path.join(harness.PKG_ROOT, "..", "..",
                                                          "proto")), d, dirs_exist_ok=True)
            with open(os.path.join(d, "sessiontoken", "v1", "service_config.json"), "w") as f:
                json.dump(config, f)
            code = ("import sys, sessiontoken\n"
                    "c = sessiontoken.Client(sys.argv[1])\n"
                    "for _ in range(2):\n"
                    "    try:\n"
                    "        c.verify('t')\n"
                    "    except sessiontoken.ServiceError as e:\n"
                    "        print(e.code.name)\n")
            env = dict(os.environ, SESSIONTOKEN_PROTO_DIR=d)
            out = subprocess.run([sys.executable, "-c", code, self.fake.target], env=env,
                                 text=True, capture_output=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.split(), ["UNAVAILABLE", "DEADLINE_EXCEEDED"])
        self.assertEqual(self.fake.calls.count("Verify"), 3)   # 2 attempts, then 1


class Restart(unittest.TestCase):
    def test_the_same_client_reaches_a_restarted_server(self):
        port = harness.free_port()
        server = harness.ServerProcess(port=port)
        c = sessiontoken.Client(f"{harness.LOOPBACK}:{port}")
        try:
            self.assertEqual(c.health(), "SERVING")
            self.assertEqual(server.stop(), 0)
            with self.assertRaises(sessiontoken.ServiceError) as cm:
                c.health()
            self.assertIn(cm.exception.code, (grpc.StatusCode.UNAVAILABLE,
                                              grpc.StatusCode.DEADLINE_EXCEEDED))
            server.close()
            server = harness.ServerProcess(port=port)
            grpc.channel_ready_future(c._channel).result(timeout=10)
            self.assertEqual(c.health(), "SERVING")
        finally:
            c.close()
            server.close()


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
