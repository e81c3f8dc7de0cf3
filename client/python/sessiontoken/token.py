"""Pure-Python parsing of the public parts of session tokens (no gRPC, no key).

Only the service can *verify* a token; these helpers read what a token openly carries, e.g.
to log which key issued a cookie or to check a test's expectations. The native formats `st2`
(what Sign issues: subject, token id, payload in clear or sealed) and `st1` (older tokens)
are specified in docs/token-format.md; parsing here is as strict as the spec's "Strict
parsing" rules, so anything accepted here is well-formed (not necessarily authentic). A
sealed payload cannot be read here: only the service holds the key that opens it.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import struct

NATIVE_PREFIX = "st1."
NATIVE_V2_PREFIX = "st2."
MAX_TOKEN_CHARS = 4095
MAC_SIZE = 32
HEADER_SIZE = 4 + 8 + 8 + 4            # key_id, issued_at, expires_at, aud_tag
MIN_BODY_SIZE = HEADER_SIZE + MAC_SIZE  # 56
MAX_PAYLOAD_SIZE = 3000                # v1
TOKEN_ID_SIZE = 16
MAX_SUBJECT_SIZE = 128
V2_FIXED_HEADER_SIZE = HEADER_SIZE + 1 + TOKEN_ID_SIZE + 1  # + flags, token id, subject length
V2_MIN_BODY_SIZE = V2_FIXED_HEADER_SIZE + MAC_SIZE         # 74
FLAG_SEALED = 0x01
SEAL_OVERHEAD = 12 + 16                # AES-GCM nonce + tag
_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class MalformedToken(ValueError):
    """The string is not a well-formed token of the format asked for."""


@dataclasses.dataclass(frozen=True)
class NativeHeader:
    """Public fields of an `st1`/`st2` token. Nothing here is authenticated."""
    key_id: int
    issued_at: int    # Unix seconds
    expires_at: int   # Unix seconds, exclusive
    aud_tag: bytes    # SHA-256(audience)[0:4]
    payload: bytes    # in clear; for a sealed token: nonce | ciphertext | GCM tag
    mac: bytes
    version: int = 1
    sealed: bool = False  # v2: the payload is encrypted (only the service can open it)
    token_id: str = ""    # v2: the random token id, base64url (22 characters)
    subject: bytes = b""  # v2: the subject given at Sign (UTF-8 by the API)

    def audience_matches(self, audience: str | bytes) -> bool:
        """True when the token's audience tag is that of `audience` (a diagnosis only)."""
        return self.aud_tag == audience_tag(audience)


def audience_tag(audience: str | bytes) -> bytes:
    if isinstance(audience, str):
        audience = audience.encode("utf-8")
    return hashlib.sha256(audience).digest()[:4]


def is_native(token: str) -> bool:
    return isinstance(token, str) and token.startswith((NATIVE_PREFIX, NATIVE_V2_PREFIX))


def _b64url_decode_strict(s: str) -> bytes:
    if not s or any(c not in _B64URL for c in s) or len(s) % 4 == 1:
        raise MalformedToken("not canonical unpadded base64url")
    try:
        raw = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    except (binascii.Error, ValueError) as e:
        raise MalformedToken("not base64url") from e
    # Canonical: the unused low bits of the last character are zero, i.e. re-encoding
    # gives back exactly the input.
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != s:
        raise MalformedToken("non-canonical base64url (unused bits set)")
    return raw


def _v2_fields(body: bytes) -> dict:
    """The v2 fields after the v1 header; raises MalformedToken."""
    if len(body) < V2_MIN_BODY_SIZE:
        raise MalformedToken("body too short")
    flags = body[HEADER_SIZE]
    if flags & ~FLAG_SEALED:
        raise MalformedToken("unknown flags")
    subject_size = body[V2_FIXED_HEADER_SIZE - 1]
    if subject_size > MAX_SUBJECT_SIZE:
        raise MalformedToken("subject too long")
    start = V2_FIXED_HEADER_SIZE + subject_size
    sealed = bool(flags & FLAG_SEALED)
    if len(body) < start + MAC_SIZE + (SEAL_OVERHEAD if sealed else 0):
        raise MalformedToken("body too short")
    token_id = body[HEADER_SIZE + 1:HEADER_SIZE + 1 + TOKEN_ID_SIZE]
    return dict(version=2, sealed=sealed, subject=body[V2_FIXED_HEADER_SIZE:start],
                token_id=base64.urlsafe_b64encode(token_id).rstrip(b"=").decode("ascii"),
                payload=body[start:-MAC_SIZE])


def parse_native_header(token: str) -> NativeHeader:
    """Parses an `st1`/`st2` token's public fields; raises MalformedToken per the strict
    rules."""
    if not isinstance(token, str):
        raise MalformedToken("token must be a str")
    if not is_native(token):
        raise MalformedToken("missing st1./st2. prefix")
    if len(token) > MAX_TOKEN_CHARS:
        raise MalformedToken("token too long")
    body = _b64url_decode_strict(token[len(NATIVE_PREFIX):])
    if token.startswith(NATIVE_V2_PREFIX):
        fields = _v2_fields(body)
    elif len(body) < MIN_BODY_SIZE:
        raise MalformedToken("body too short")
    elif len(body) - MIN_BODY_SIZE > MAX_PAYLOAD_SIZE:
        raise MalformedToken("payload too long")
    else:
        fields = dict(payload=body[HEADER_SIZE:-MAC_SIZE])
    key_id, issued_at, expires_at = struct.unpack(">Iqq", body[:20])
    if issued_at < 0 or expires_at < issued_at:
        raise MalformedToken("bad times")
    return NativeHeader(key_id=key_id, issued_at=issued_at, expires_at=expires_at,
                        aud_tag=body[20:24], mac=body[-MAC_SIZE:], **fields)


# --- Flask (itsdangerous URLSafeTimedSerializer) cookies -------------------------------

FLASK_SIGNATURE_SIZE = 20          # HMAC-SHA1
FLASK_MAX_PAYLOAD_SIZE = 64 * 1024


@dataclasses.dataclass(frozen=True)
class FlaskHeader:
    """Public fields of a Flask session cookie. Nothing here is authenticated."""
    timestamp: int       # Unix seconds: when it was signed (the format has no expiry)
    payload: bytes       # the session's JSON text, decompressed
    compressed: bool
    signature: bytes


def parse_flask_header(cookie: str) -> FlaskHeader:
    """Parses a cookie of Flask's default session interface ("[.]body.ts.sig", unpadded
    base64url, zlib when the body starts with "."), as strictly as the service does."""
    import zlib
    if not isinstance(cookie, str) or len(cookie) > MAX_TOKEN_CHARS:
        raise MalformedToken("not a Flask cookie")
    compressed = cookie.startswith(".")
    parts = (cookie[1:] if compressed else cookie).split(".")
    if len(parts) != 3:
        raise MalformedToken("not a Flask cookie (dots)")
    body_s, ts_s, sig_s = parts
    body = _b64url_decode_strict(body_s)
    ts_raw = _b64url_decode_strict(ts_s) if ts_s else b""
    sig = _b64url_decode_strict(sig_s)
    if len(sig) != FLASK_SIGNATURE_SIZE:
        raise MalformedToken("bad signature size")
    if len(ts_raw) > 8 or ts_raw[:1] == b"\0" or (len(ts_raw) == 8 and ts_raw[0] & 0x80):
        raise MalformedToken("bad timestamp")
    if compressed:
        d = zlib.decompressobj()
        try:
            payload = d.decompress(body, FLASK_MAX_PAYLOAD_SIZE + 1)
        except zlib.error as e:
            raise MalformedToken("bad zlib body") from e
        if (not d.eof or d.unused_data or d.unconsumed_tail
                or len(payload) > FLASK_MAX_PAYLOAD_SIZE):
            raise MalformedToken("bad zlib body")
    else:
        payload = body
    return FlaskHeader(timestamp=int.from_bytes(ts_raw, "big"), payload=payload,
                       compressed=compressed, signature=sig)
