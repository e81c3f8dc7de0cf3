"""SIGTERM drains: calls in flight when the server receives SIGTERM get their answers, calls
that arrive later are refused with UNAVAILABLE (clients retry them on another replica), no
call is cut off, and the process exits 0. The Kubernetes manifests rely on this contract
(preStop sleep, SIGTERM, terminationGracePeriodSeconds above --shutdown_grace).

Load: several threads send large BatchSign calls back to back while the caller sends
SIGTERM; gRPC's sync server only waits for calls whose handler runs, so the calls must be
long enough (1000 items each) that some are inside the server at that moment."""

import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "client", "python"))


class DrainLoad:
    """Threads calling BatchSign on `target` until the server refuses them."""

    def __init__(self, target, metadata=(), threads=8, items=1000, payload_bytes=100):
        import grpc
        from sessiontoken import _stubs
        self.grpc = grpc
        pb = _stubs.load()
        self._channel = grpc.insecure_channel(target)
        grpc.channel_ready_future(self._channel).result(timeout=30)
        self._call = self._channel.unary_unary(
            "/sessiontoken.v1.SessionTokens/BatchSign",
            request_serializer=pb.tokens_pb2.BatchSignRequest.SerializeToString,
            response_deserializer=pb.tokens_pb2.BatchSignResponse.FromString)
        self._request = pb.tokens_pb2.BatchSignRequest()
        for i in range(items):
            item = self._request.items.add(keyring="default",
                                           payload=(b"%06d" % i) * (payload_bytes // 6))
            item.ttl.seconds = 600
        self._metadata = list(metadata)
        self.sigterm_at = None  # monotonic time the caller sent SIGTERM
        self.answered_after_sigterm = 0  # calls answered OK after SIGTERM was sent
        self.completed = 0
        self.refused = []  # status codes of refused calls
        self.tokens = []  # one token of every answered call
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for t in self._threads:
            t.start()
        while self.completed < threads:  # the load runs before the caller sends SIGTERM
            time.sleep(0.05)

    def _run(self):
        while True:
            try:
                r = self._call(self._request, metadata=self._metadata, timeout=60,
                               wait_for_ready=False)
            except self.grpc.RpcError as e:
                with self._lock:
                    self.refused.append(e.code())
                return
            with self._lock:
                self.completed += 1
                self.tokens.append(r.items[-1].response.token)
                if self.sigterm_at is not None:
                    self.answered_after_sigterm += 1

    def mark_sigterm(self):
        with self._lock:
            self.sigterm_at = time.monotonic()

    def join(self):
        for t in self._threads:
            t.join(90)
        self._channel.close()
