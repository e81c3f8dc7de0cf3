"""Helpers for scripts and tests that start local processes (servers, etcd) on 127.0.0.1:
a free port, a child environment without proxies or a KEK, a fresh KEK file. Standard
library only; imported by scripts/run_ha.py and tests/integration/harness.py."""

import os
import random
import socket

_DROPPED = ("SESSIONTOKEN_KEK", "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY",
            "grpc_proxy", "all_proxy", "ALL_PROXY")


def _ephemeral_start():
    """The first port of the range the kernel hands out for outgoing connections and bind(0)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now, for a child to listen on.
    Taken below the ephemeral range when it can: a port from bind(0) is closed before the
    child binds it, and in that window any outgoing connection on the machine (other tests'
    clients) may take it as its local port, so the child fails with "address already in use"
    (seen with etcd under CI load)."""
    low = _ephemeral_start()
    for _ in range(100):
        port = random.randrange(10000, low) if low > 11000 else 0
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise OSError("no free port on 127.0.0.1")


def free_ports(n):
    """n different free ports (free_port's)."""
    ports = set()
    while len(ports) < n:
        ports.add(free_port())
    return sorted(ports)


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
