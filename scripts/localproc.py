"""Helpers for scripts and tests that start local processes (servers, etcd) on 127.0.0.1:
a free port, a child environment without proxies or a KEK, a fresh KEK file. Standard
library only; imported by scripts/run_ha.py and tests/integration/harness.py."""

import os
import socket

_DROPPED = ("SESSIONTOKEN_KEK", "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY",
            "grpc_proxy", "all_proxy", "ALL_PROXY")


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env():
    """This environment minus proxies (children talk to loopback only) and any KEK."""
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
    env["no_proxy"] = env["NO_PROXY"] = "127.0.0.1,localhost"
    return env


def write_kek(path):
    """A new random 32-byte KEK, hex, in a file only its owner can read; returns the path."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    return path
