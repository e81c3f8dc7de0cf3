"""Shared helpers for the integration tests: start/stop the real sessiontoken-server on
127.0.0.1 (port picked by the server) and run the real CLI. Standard library only."""

import json
import os
import queue
import re
import signal
import subprocess
import threading
import sys
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "scripts"))
from localproc import child_env, free_port, write_kek  # noqa: E402,F401

SERVER_BIN = os.environ.get("SESSIONTOKEN_SERVER", "")
CLI_BIN = os.environ.get("SESSIONTOKEN_CLI", "")
LISTEN_RE = re.compile(r"^sessiontoken-server listening on (127\.\d+\.\d+\.\d+):(\d+)$")
HTTP_LISTEN_RE = re.compile(r"^http gateway listening on 127\.\d+\.\d+\.\d+:(\d+)$")
METRICS_RE = re.compile(r"^sessiontoken-server metrics on (http://127\.\d+\.\d+\.\d+:\d+/metrics)$")


def http_get(url, timeout=10.0):
    """GET `url` directly (never through a proxy); returns the body as bytes."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as r:
        return r.read()


def require_binaries():
    missing = [n for n, p in (("SESSIONTOKEN_SERVER", SERVER_BIN), ("SESSIONTOKEN_CLI", CLI_BIN))
               if not p or not os.access(p, os.X_OK)]
    if missing:
        raise SystemExit("set " + " and ".join(missing) + " to the built binaries (CTest does)")


class Server:
    """A running sessiontoken-server; `port` is read from its first stdout line. `listen`:
    a loopback address (127.x.y.z:port; port 0 lets the server pick)."""

    def __init__(self, data_dir, kek_file, log_path, extra_args=(), timeout=10.0,
                 listen="127.0.0.1:0"):
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [SERVER_BIN, f"--listen={listen}", f"--data_dir={data_dir}",
             f"--kek_file={kek_file}", *extra_args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._log, env=child_env())
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in self.proc.stdout] and None,
                         daemon=True).start()
        try:
            first = lines.get(timeout=timeout).decode().strip()
        except queue.Empty:
            self.kill()
            raise RuntimeError("server did not start; log:\n" + self.log())
        m = LISTEN_RE.match(first)
        if not m:
            self.kill()
            raise RuntimeError(f"unexpected first line {first!r}; log:\n" + self.log())
        self.port = int(m.group(2))
        self.target = f"{m.group(1)}:{self.port}"
        self._lines = lines
        self._pending = []  # lines read ahead while looking for the metrics line
        self.metrics_url = None
        if any(a.startswith("--metrics_listen=") for a in extra_args):
            for _ in range(3):  # after the gateway's line, when that is on too
                try:
                    line = lines.get(timeout=timeout).decode().strip()
                except queue.Empty:
                    line = ""
                mm = METRICS_RE.match(line)
                if mm:
                    self.metrics_url = mm.group(1)
                    break
                self._pending.append(line)
            if self.metrics_url is None:
                self.kill()
                raise RuntimeError(f"no metrics line in {self._pending!r}; log:\n" + self.log())

    def scrape(self):
        """The text of /metrics (the server must run with --metrics_listen)."""
        return http_get(self.metrics_url).decode()

    def next_line(self, timeout=10.0):
        """The server's next stdout line (after the first), e.g. the HTTP gateway's."""
        if self._pending:
            return self._pending.pop(0)
        return self._lines.get(timeout=timeout).decode().strip()

    def http_port(self, timeout=10.0):
        """The HTTP gateway's port, from its line (the server was started with
        --http_listen=127.0.0.1:0)."""
        line = self.next_line(timeout)
        m = HTTP_LISTEN_RE.match(line)
        if not m:
            raise RuntimeError(f"unexpected second line {line!r}; log:\n" + self.log())
        return int(m.group(1))

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._log.close()

    def stop(self, timeout=15.0):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=timeout)
        self._log.close()
        return rc


def cli(target, *args, stdin=None, timeout=15.0):
    """Runs the CLI; returns (exit code, stdout, stderr)."""
    p = subprocess.run([CLI_BIN, f"--server={target}", *args], input=stdin,
                       capture_output=True, timeout=timeout, env=child_env())
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def cli_json(target, *args, stdin=None):
    """Runs the CLI with --json; returns (exit code, parsed JSON or None, stderr)."""
    rc, out, err = cli(target, "--json", *args, stdin=stdin)
    try:
        return rc, json.loads(out) if out.strip() else None, err
    except json.JSONDecodeError:
        return rc, None, err
