"""Shared test fixtures: the real sessiontoken-server binary, a real Flask app served over
HTTP by werkzeug, and a cookie-keeping HTTP client. Everything binds to 127.0.0.1 only.

Binaries come from the environment (set by CTest, see tests/e2e/python.cmake):
  SESSIONTOKEN_SERVER  path of sessiontoken-server   (default: build/dev/server/...)
  SESSIONTOKEN_CLI     path of the sessiontoken CLI   (default: build/dev/client/cpp/...)
  SESSIONTOKEN_PY_STUBS  generated stubs (default: build/dev/python if present, else the
                         package generates them into its cache)
"""

import datetime
import http.cookiejar
import json
import logging
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
PKG_ROOT = os.path.dirname(HERE)                      # client/python
REPO = os.path.dirname(os.path.dirname(PKG_ROOT))
VECTORS = os.path.join(REPO, "tests", "vectors")
LOOPBACK = "127.0.0.1"

# Never send test traffic through a proxy.
for _v in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "grpc_proxy",
           "all_proxy", "ALL_PROXY"):
    os.environ.pop(_v, None)
os.environ["no_proxy"] = os.environ["NO_PROXY"] = "127.0.0.1,localhost"

if PKG_ROOT not in sys.path:
    sys.path.insert(0, PKG_ROOT)
sys.path.insert(0, os.path.join(REPO, "scripts"))
from localproc import free_port  # noqa: E402,F401 (for tests that pick a server's port)
_default_stubs = os.path.join(REPO, "build", "dev", "python")
if "SESSIONTOKEN_PY_STUBS" not in os.environ and os.path.isdir(
        os.path.join(_default_stubs, "sessiontoken", "v1")):
    os.environ["SESSIONTOKEN_PY_STUBS"] = _default_stubs

SERVER_BIN = os.environ.get("SESSIONTOKEN_SERVER") or os.path.join(
    REPO, "build", "dev", "server", "sessiontoken-server")
CLI_BIN = os.environ.get("SESSIONTOKEN_CLI") or os.path.join(
    REPO, "build", "dev", "client", "cpp", "sessiontoken")

_LISTEN_RE = re.compile(r"^sessiontoken-server listening on 127\.0\.0\.1:(\d+)$")


class ServerProcess:
    """A sessiontoken-server child on 127.0.0.1:<free port> with a fresh data dir and a
    random KEK. stdout is drained by a thread; stderr goes to a file."""

    def __init__(self, extra_args=(), port=0, reuse=None):
        """`reuse`: a stopped ServerProcess whose data dir and KEK this one takes over
        (a restart with the same keys); close() the old one afterwards."""
        if not os.access(SERVER_BIN, os.X_OK):
            if os.environ.get("SESSIONTOKEN_SERVER"):
                raise RuntimeError(f"SESSIONTOKEN_SERVER={SERVER_BIN} is not executable")
            raise unittest.SkipTest(f"server binary not built: {SERVER_BIN}")
        if reuse is not None:
            self.tmp, reuse.tmp = reuse.tmp, None
            self.data_dir, self.kek_file = reuse.data_dir, reuse.kek_file
        else:
            self.tmp = tempfile.TemporaryDirectory(prefix="sessiontoken-py-")
            self.data_dir = os.path.join(self.tmp.name, "data")
            self.kek_file = os.path.join(self.tmp.name, "kek")
            fd = os.open(self.kek_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(os.urandom(32).hex() + "\n")
        self.log_path = os.path.join(self.tmp.name, f"server-{time.monotonic_ns()}.log")
        self._log = open(self.log_path, "wb")
        env = {k: v for k, v in os.environ.items() if k != "SESSIONTOKEN_KEK"}
        self.proc = subprocess.Popen(
            [SERVER_BIN, f"--listen={LOOPBACK}:{int(port)}", f"--data_dir={self.data_dir}",
             f"--kek_file={self.kek_file}", *extra_args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._log, env=env)
        lines = queue.Queue()
        self._drainer = threading.Thread(target=self._drain, args=(lines,), daemon=True)
        self._drainer.start()
        try:
            first = lines.get(timeout=10)
        except queue.Empty:
            self.stop()
            raise RuntimeError("server did not print its listening line:\n" + self.log())
        m = _LISTEN_RE.match(first or "")
        if not m:
            self.stop()
            raise RuntimeError(f"unexpected first line {first!r}:\n" + self.log())
        self.port = int(m.group(1))
        self.target = f"{LOOPBACK}:{self.port}"

    def _drain(self, lines):
        for raw in self.proc.stdout:
            lines.put(raw.decode(errors="replace").rstrip("\n"))
        lines.put(None)

    def log(self) -> str:
        self._log.flush()
        if self.tmp is None:
            return "(log handed over to the restarted server)"
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")[-4000:]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def close(self):
        self.stop()
        self._drainer.join(5)
        self.proc.stdout.close()
        self._log.close()
        if self.tmp is not None:
            self.tmp.cleanup()

    def cli(self, *args, timeout=15):
        """Runs the C++ CLI against this server; returns CompletedProcess (text)."""
        return subprocess.run([CLI_BIN, f"--server={self.target}", *args], text=True,
                              capture_output=True, timeout=timeout)


class FlaskServer:
    """Serves a WSGI app with werkzeug on 127.0.0.1:<free port> in a background thread."""

    def __init__(self, app):
        from werkzeug.serving import make_server
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.httpd = make_server(LOOPBACK, 0, app, threaded=True)
        self.url = f"http://{LOOPBACK}:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.1,),
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


def make_app(session_interface=None, *, secret_key=None, cookie_name="session",
             lifetime=datetime.timedelta(hours=1)):
    """The test app: /login?user=U[&permanent=1], /whoami, /logout, /ping (no session).
    Without `session_interface` it is a plain Flask app with Flask's own signed cookies."""
    import flask
    app = flask.Flask("sessiontoken-test")
    app.config.update(SESSION_COOKIE_NAME=cookie_name, SESSION_COOKIE_SAMESITE="Lax",
                      PERMANENT_SESSION_LIFETIME=lifetime)
    if secret_key is not None:
        app.secret_key = secret_key
    if session_interface is not None:
        app.session_interface = session_interface

    @app.route("/login")
    def login():
        flask.session["user"] = flask.request.args["user"]
        flask.session.permanent = flask.request.args.get("permanent") == "1"
        return {"user": flask.session["user"]}

    @app.route("/whoami")
    def whoami():
        return {"user": flask.session.get("user")}

    @app.route("/logout")
    def logout():
        flask.session.clear()
        return {"user": None}

    @app.route("/ping")
    def ping():
        return {"pong": True}

    return app


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    @property
    def set_cookies(self):
        return self.headers.get_all("Set-Cookie") or []

    def set_cookie(self, name):
        """(value, raw header) of the Set-Cookie for `name`, or None."""
        for h in self.set_cookies:
            n, _, rest = h.partition("=")
            if n.strip() == name:
                return rest.split(";", 1)[0], h
        return None

    @property
    def vary(self):
        return {v.strip().lower() for h in (self.headers.get_all("Vary") or [])
                for v in h.split(",")}


class Browser:
    """urllib with a cookie jar (RFC 6265 handling by http.cookiejar), no proxies."""

    def __init__(self, base_url):
        self.base = base_url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path, timeout=30) -> Response:
        try:
            with self.opener.open(self.base + path, timeout=timeout) as r:
                return Response(r.status, r.headers, r.read())
        except urllib.error.HTTPError as e:
            return Response(e.code, e.headers, e.read())

    def cookie(self, name):
        for c in self.jar:
            if c.name == name:
                return c.value
        return None

    def set_cookie(self, name, value):
        """Replaces the value of cookie `name` (which the server set before)."""
        for c in self.jar:
            if c.name == name:
                c.value = value
                return
        self.jar.set_cookie(http.cookiejar.Cookie(
            0, name, value, None, False, LOOPBACK, False, False, "/", True, False, None,
            False, None, None, {}))


def run(module_name):
    """unittest.main that exits 77 (CTest SKIP_RETURN_CODE) when a test was skipped and
    nothing failed, so that a skip is visible in CTest's summary."""
    prog = unittest.main(module=module_name, exit=False, verbosity=2)
    r = prog.result
    if not r.wasSuccessful():
        sys.exit(1)
    if r.skipped:
        print(f"{len(r.skipped)} test(s) skipped", file=sys.stderr)
        sys.exit(77)
    sys.exit(0)
