"""Finds (or generates) the protoc-generated modules sessiontoken.v1.*_pb2[_grpc].

Generated code is never committed. protoc names the modules after the proto paths
(sessiontoken/v1/tokens.proto -> sessiontoken.v1.tokens_pb2), i.e. inside this package, so a
directory holding them is grafted onto this package's __path__. Where they come from, first
match wins:

1. $SESSIONTOKEN_PY_STUBS: a directory containing sessiontoken/v1/*_pb2.py, e.g. the CMake
   build tree's `build/dev/python` (target sessiontoken_python_stubs, part of `all`).
2. A `v1` directory inside this package (an installed distribution that ships them).
3. Generated once with protoc + grpc_python_plugin from the .proto files
   ($SESSIONTOKEN_PROTO_DIR, default: the repository's proto/ next to client/python) into a
   cache directory ($SESSIONTOKEN_STUB_CACHE, default ~/.cache/sessiontoken/python-stubs),
   keyed by a hash of the .proto files, written atomically.

The gRPC service config shared by all clients (deadlines and retries per method,
sessiontoken/v1/service_config.json) is found the same way: the package's `v1` directory,
else $SESSIONTOKEN_PROTO_DIR, else the repository's proto/.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import subprocess
import tempfile
import threading

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))
_PROTOS = ("common", "tokens", "admin")
_loaded = None
_lock = threading.Lock()


class StubsUnavailable(ImportError):
    pass


def _has_stubs(root: str) -> bool:
    d = os.path.join(root, "sessiontoken", "v1")
    return all(os.path.isfile(os.path.join(d, f"{p}_pb2.py")) for p in _PROTOS) and all(
        os.path.isfile(os.path.join(d, f"{p}_pb2_grpc.py")) for p in ("tokens", "admin"))


def _find_tool(env: str, name: str, fallback: str) -> str | None:
    return os.environ.get(env) or shutil.which(name) or (
        fallback if os.path.exists(fallback) else None)


def _proto_dir() -> str:
    return os.environ.get("SESSIONTOKEN_PROTO_DIR") or os.path.normpath(
        os.path.join(_PKG_DIR, "..", "..", "..", "proto"))


def service_config() -> str:
    """The text of service_config.json (JSON with a methodConfig list)."""
    candidates = [os.path.join(_PKG_DIR, "v1", "service_config.json"),
                  os.path.join(_proto_dir(), "sessiontoken", "v1", "service_config.json")]
    path = next((c for c in candidates if os.path.isfile(c)), None)
    if path is None:
        raise StubsUnavailable("sessiontoken: service_config.json not found (looked in "
                               + ", ".join(candidates) + "); set SESSIONTOKEN_PROTO_DIR to "
                               "the proto/ directory")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if not isinstance(json.loads(text).get("methodConfig"), list):
        raise StubsUnavailable(f"sessiontoken: {path} has no methodConfig list")
    return text


def _generate() -> str:
    proto_dir = _proto_dir()
    files = [os.path.join(proto_dir, "sessiontoken", "v1", f"{p}.proto") for p in _PROTOS]
    if not all(os.path.isfile(f) for f in files):
        raise StubsUnavailable(
            "sessiontoken: generated gRPC stubs not found. Set SESSIONTOKEN_PY_STUBS to a "
            "directory made by the CMake target sessiontoken_python_stubs, or "
            f"SESSIONTOKEN_PROTO_DIR to the proto/ directory (looked in {proto_dir})")
    protoc = _find_tool("SESSIONTOKEN_PROTOC", "protoc", "/usr/bin/protoc")
    plugin = _find_tool("SESSIONTOKEN_GRPC_PYTHON_PLUGIN", "grpc_python_plugin",
                        "/usr/bin/grpc_python_plugin")
    if not protoc or not plugin:
        raise StubsUnavailable("sessiontoken: protoc and grpc_python_plugin are needed to "
                               "generate the gRPC stubs (Debian: protobuf-compiler-grpc)")
    h = hashlib.sha256()
    for f in files:
        with open(f, "rb") as fh:
            h.update(f.encode() + b"\0" + fh.read() + b"\0")
    from google.protobuf import __version__ as pb_version
    h.update(pb_version.encode())
    cache = os.environ.get("SESSIONTOKEN_STUB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "sessiontoken", "python-stubs")
    final = os.path.join(cache, h.hexdigest()[:16])
    if _has_stubs(final):
        return final
    os.makedirs(cache, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".gen-", dir=cache)
    try:
        cmd = [protoc, f"--python_out={tmp}", f"--grpc_python_out={tmp}",
               f"--plugin=protoc-gen-grpc_python={plugin}", f"-I{proto_dir}"]
        if os.path.isfile("/usr/include/google/protobuf/timestamp.proto"):
            cmd.append("-I/usr/include")
        subprocess.run(cmd + files, check=True, capture_output=True, timeout=60)
        try:
            os.rename(tmp, final)   # atomic; another process may have won the race
        except OSError:
            if not _has_stubs(final):
                raise
    except subprocess.CalledProcessError as e:
        raise StubsUnavailable("sessiontoken: protoc failed: "
                               + e.stderr.decode(errors="replace")) from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def load():
    """Returns a namespace with the generated modules: common_pb2, tokens_pb2, admin_pb2,
    tokens_pb2_grpc, admin_pb2_grpc."""
    with _lock:
        return _load_locked()


def _load_locked():
    global _loaded
    if _loaded is not None:
        return _loaded
    import sessiontoken
    root = None
    env = os.environ.get("SESSIONTOKEN_PY_STUBS")
    if env:
        if not _has_stubs(env):
            raise StubsUnavailable(f"SESSIONTOKEN_PY_STUBS={env} holds no sessiontoken/v1 "
                                   "stubs (build the CMake target sessiontoken_python_stubs)")
        root = env
    elif not os.path.isdir(os.path.join(_PKG_DIR, "v1")):
        root = _generate()
    if root is not None:
        portion = os.path.join(os.path.abspath(root), "sessiontoken")
        if portion not in sessiontoken.__path__:
            sessiontoken.__path__.append(portion)

    class _Mods:
        pass
    mods = _Mods()
    for name in ("common_pb2", "tokens_pb2", "admin_pb2", "tokens_pb2_grpc", "admin_pb2_grpc"):
        setattr(mods, name, importlib.import_module(f"sessiontoken.v1.{name}"))
    _loaded = mods
    return mods
