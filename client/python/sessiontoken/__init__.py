"""Python client for the sessiontoken service (see client/python/README.md).

    import sessiontoken
    client = sessiontoken.Client("127.0.0.1:50051")
    t = client.sign(b"user=42", ttl=3600, audience="web")
    r = client.verify(t.token, audience="web")   # r.result == sessiontoken.Result.VALID

Flask: `sessiontoken.flask.SessionTokenInterface`. Public token fields without the service:
`sessiontoken.token.parse_native_header`.
"""

from .client import (  # noqa: F401
    DEFAULT_KEYRING,
    Algorithm,
    BatchItem,
    Client,
    ImportResult,
    KeyInfo,
    KeyringInfo,
    KeyringPolicy,
    KeyringSummary,
    KeyState,
    Result,
    RotateResult,
    ServiceError,
    SignItem,
    SignResult,
    VerifyItem,
    VerifyResult,
)
from .token import MalformedToken, NativeHeader, parse_native_header  # noqa: F401

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_KEYRING", "Algorithm", "BatchItem", "Client", "ImportResult", "KeyInfo",
    "KeyringInfo", "KeyringPolicy", "KeyringSummary", "KeyState", "MalformedToken",
    "NativeHeader", "Result", "RotateResult", "ServiceError", "SignItem", "SignResult",
    "VerifyItem", "VerifyResult", "parse_native_header",
]
