"""Python client for the sessiontoken service (see client/python/README.md).

    import sessiontoken
    client = sessiontoken.Client("127.0.0.1:50051")
    t = client.sign(b"user=42", ttl=3600, audience="web")
    r = client.verify(t.token, audience="web")   # r.result == sessiontoken.Result.VALID

Flask: `sessiontoken.flask.SessionTokenInterface`. Public token fields without the service:
`sessiontoken.token.parse_native_header`.
"""

import os as _os
import sys as _sys

# gRPC channels do not survive fork(), and without gRPC's fork support a channel created in
# a forked child can crash or hang (pre-forking servers: gunicorn --preload, uwsgi without
# lazy-apps). Enable it unless the environment decides; it only takes effect when grpc is
# first imported here. sessiontoken.flask then creates one Client per process.
if "grpc" not in _sys.modules:
    _os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "1")
FORK_SUPPORT = _os.environ.get("GRPC_ENABLE_FORK_SUPPORT", "").lower() in ("1", "true", "yes")

from .client import (  # noqa: E402,F401
    DEFAULT_KEYRING,
    Algorithm,
    BatchItem,
    Client,
    ImportResult,
    KeyInfo,
    KeyringInfo,
    KeyringPolicy,
    KeyringSummary,
    KeyringUsage,
    KeyState,
    KeyUsage,
    Result,
    RevokeResult,
    RotateResult,
    ServiceError,
    SignItem,
    SignResult,
    VerifyItem,
    VerifyResult,
    WeakSecretWarning,
)
from .token import MalformedToken, NativeHeader, parse_native_header  # noqa: F401

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_KEYRING", "Algorithm", "BatchItem", "Client", "ImportResult", "KeyInfo",
    "KeyringInfo", "KeyringPolicy", "KeyringSummary", "KeyringUsage", "KeyUsage", "KeyState", "MalformedToken",
    "NativeHeader", "Result", "RevokeResult", "RotateResult", "ServiceError", "SignItem", "SignResult",
    "VerifyItem", "VerifyResult", "WeakSecretWarning", "parse_native_header",
]
