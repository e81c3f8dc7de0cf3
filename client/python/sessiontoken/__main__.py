"""python3 -m sessiontoken: the admin steps of a Flask migration, from Python.

    python3 -m sessiontoken [--server=H:P] [--keyring=K] COMMAND
      import-flask-secret (--secret-env=VAR | --secret-file=PATH) [--primary]
      keys                         list keys (metadata only)
      rotate [--native]            new primary key (--native: HMAC_SHA256)
      promote|disable|enable KEY_ID
      create-keyring NAME

The secret is read from an environment variable (as UTF-8, like Flask's str SECRET_KEY)
or from a file (bytes; one trailing newline is dropped, as by the C++ CLI's `keys import`),
never from the command line, and is never printed. Exit code 0 ok, 2 usage error, 3 RPC error.
"""

import argparse
import os
import sys
import warnings

from .client import Algorithm, Client, KeyState, ServiceError, WeakSecretWarning


def _print_keys(info) -> None:
    print(f"keyring {info.name} revision {info.revision} primary {info.primary_key_id}")
    for k in info.keys:
        print(f"  {k.key_id:>10}  {k.state.name:<9} {k.algorithm.name}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m sessiontoken",
                                description=__doc__.split("\n")[0])
    p.add_argument("--server", default=os.environ.get("SESSIONTOKEN_SERVER_ADDR",
                                                      "127.0.0.1:50051"))
    p.add_argument("--keyring", default="default")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds (default: the service config's per-method deadline)")
    sub = p.add_subparsers(dest="cmd", required=True)
    imp = sub.add_parser("import-flask-secret")
    src = imp.add_mutually_exclusive_group(required=True)
    src.add_argument("--secret-env", metavar="VAR")
    src.add_argument("--secret-file", metavar="PATH")
    imp.add_argument("--primary", action="store_true",
                     help="sign with it too (Flask-compatible cookies); default verify-only")
    sub.add_parser("keys")
    rot = sub.add_parser("rotate")
    rot.add_argument("--native", action="store_true")
    for name in ("promote", "disable", "enable"):
        sub.add_parser(name).add_argument("key_id", type=int)
    sub.add_parser("create-keyring").add_argument("name")
    a = p.parse_args(argv)

    with Client(a.server, keyring=a.keyring, timeout=a.timeout) as c:
        try:
            if a.cmd == "import-flask-secret":
                if a.secret_env:
                    if not os.environ.get(a.secret_env):
                        p.error(f"environment variable {a.secret_env} is empty or unset")
                    secret = os.environ[a.secret_env].encode("utf-8")
                else:
                    with open(a.secret_file, "rb") as f:
                        secret = f.read()
                    # Like the C++ CLI (keys import): one trailing newline is not part of it.
                    secret = secret[:-1] if secret.endswith(b"\n") else secret
                    secret = secret[:-1] if secret.endswith(b"\r") else secret
                    if not secret:
                        p.error("the secret file is empty")
                with warnings.catch_warnings():  # printed below, once
                    warnings.simplefilter("ignore", WeakSecretWarning)
                    r = c.import_key(secret, algorithm=Algorithm.HMAC_SHA1_FLASK,
                                     state=KeyState.PRIMARY if a.primary else KeyState.ACTIVE)
                del secret
                if r.warning:
                    print(f"WARNING: {r.warning}", file=sys.stderr)
                print(f"imported key {r.key.key_id} ({r.key.state.name}, "
                      f"{r.key.algorithm.name}) into {a.keyring}, revision {r.revision}")
            elif a.cmd == "keys":
                _print_keys(c.list_keys())
            elif a.cmd == "rotate":
                r = c.rotate(algorithm=Algorithm.HMAC_SHA256 if a.native else None)
                print(f"new primary {r.new_key.key_id} (was {r.previous_primary_key_id}), "
                      f"revision {r.revision}")
            elif a.cmd in ("promote", "disable", "enable"):
                _print_keys(getattr(c, f"{a.cmd}_key")(a.key_id))
            elif a.cmd == "create-keyring":
                _print_keys(c.create_keyring(a.name))
        except ServiceError as e:
            print(f"error: {e}", file=sys.stderr)
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
