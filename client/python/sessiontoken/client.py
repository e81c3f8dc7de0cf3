"""sessiontoken.Client: a small synchronous client for SessionTokens and KeyAdmin.

* One gRPC channel per Client (thread-safe; share one per process).
* Deadlines and retries come from the service config all clients share
  (proto/sessiontoken/v1/service_config.json), applied by gRPC itself: UNAVAILABLE is
  retried with jittered exponential backoff for calls that are safe to repeat (Sign, Verify,
  the batch calls, reads). Calls that change a keyring (Rotate, ImportKey, CreateKeyring,
  PromoteKey...) are never retried: a lost response must not rotate twice.
* `timeout` (per call, else the Client's, else the method's in the service config) is the
  deadline of the whole call, retries included.
* Results are frozen dataclasses with enums and timezone-aware UTC datetimes. Errors are
  `ServiceError` (an RPC that failed); an invalid token is NOT an error but a
  `VerifyResult` whose `result` is not `Result.VALID`.
* Secrets (ImportKey) are sent as bytes and never logged or kept.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import json
import warnings
from typing import Iterable, Optional, Sequence, Union

import grpc

from . import _stubs

DEFAULT_KEYRING = "default"
Seconds = Union[int, _dt.timedelta]


class Result(enum.IntEnum):
    """VerifyResponse.Result (tokens.proto)."""
    RESULT_UNSPECIFIED = 0
    VALID = 1
    MALFORMED = 2
    UNKNOWN_KEY = 3
    BAD_SIGNATURE = 4
    EXPIRED = 5
    NOT_YET_VALID = 6
    KEY_DISABLED = 7
    WRONG_AUDIENCE = 8
    REVOKED = 9


class Algorithm(enum.IntEnum):
    """common.proto Algorithm."""
    ALGORITHM_UNSPECIFIED = 0
    HMAC_SHA256 = 1
    HMAC_SHA1_FLASK = 2


class KeyState(enum.IntEnum):
    """common.proto KeyState."""
    KEY_STATE_UNSPECIFIED = 0
    STAGED = 1
    PRIMARY = 2
    ACTIVE = 3
    DISABLED = 4
    DESTROYED = 5


class ServiceError(Exception):
    """A failed RPC. `code` is a grpc.StatusCode, `details` the server's message."""

    def __init__(self, method: str, code: grpc.StatusCode, details: str):
        super().__init__(f"{method}: {code.name}: {details}")
        self.method = method
        self.code = code
        self.details = details


@dataclasses.dataclass(frozen=True)
class SignResult:
    token: str
    key_id: int
    issued_at: Optional[_dt.datetime]
    expires_at: Optional[_dt.datetime]
    token_id: str = ""             # the token's random id ("" for Flask-format cookies)


@dataclasses.dataclass(frozen=True)
class VerifyResult:
    result: Result
    payload: bytes                 # only for VALID tokens
    key_id: int                    # 0 when the token names no key
    issued_at: Optional[_dt.datetime]
    expires_at: Optional[_dt.datetime]
    refresh_recommended: bool      # valid, but not signed by the primary: re-issue it
    subject: str = ""              # VALID st2 tokens: the subject given at Sign
    token_id: str = ""             # VALID st2 tokens: the token's random id

    @property
    def valid(self) -> bool:
        return self.result == Result.VALID


@dataclasses.dataclass(frozen=True)
class RevokeResult:
    revoked_at: Optional[_dt.datetime]  # a subject's cutoff: its sessions issued until then
    drop_after: Optional[_dt.datetime]  # the server drops the entry after this


@dataclasses.dataclass(frozen=True)
class SignItem:
    payload: bytes
    ttl: Seconds
    audience: str = ""
    keyring: Optional[str] = None
    subject: str = ""


@dataclasses.dataclass(frozen=True)
class VerifyItem:
    token: str
    audience: str = ""
    max_age: Optional[Seconds] = None
    keyring: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class BatchItem:
    """One item of a batch response: `code` OK and a `response`, or an error."""
    code: grpc.StatusCode
    message: str
    response: Union[SignResult, VerifyResult, None]

    @property
    def ok(self) -> bool:
        return self.code == grpc.StatusCode.OK


@dataclasses.dataclass(frozen=True)
class KeyringPolicy:
    """Whole seconds; 0 disables the step, except tombstone_retention, where 0 means the
    server's default of 30 days (common.proto)."""
    rotation_period: _dt.timedelta = _dt.timedelta(0)
    stage_lead_time: _dt.timedelta = _dt.timedelta(0)
    verify_window: _dt.timedelta = _dt.timedelta(0)
    destroy_after: _dt.timedelta = _dt.timedelta(0)
    max_token_ttl: _dt.timedelta = _dt.timedelta(0)
    tombstone_retention: _dt.timedelta = _dt.timedelta(0)
    # New tokens carry their payload encrypted (AES-256-GCM); verify() still returns it in
    # clear. Not for Flask-format keyrings (FAILED_PRECONDITION).
    seal_payloads: bool = False


@dataclasses.dataclass(frozen=True)
class KeyInfo:
    key_id: int
    algorithm: Algorithm
    state: KeyState
    created_at: Optional[_dt.datetime]
    state_changed_at: Optional[_dt.datetime]


@dataclasses.dataclass(frozen=True)
class KeyringInfo:
    name: str
    keys: tuple          # of KeyInfo, newest first
    primary_key_id: int
    revision: int
    policy: Optional[KeyringPolicy] = None       # not part of ListKeys
    created_at: Optional[_dt.datetime] = None    # not part of ListKeys

    def key(self, key_id: int) -> Optional[KeyInfo]:
        return next((k for k in self.keys if k.key_id == key_id), None)


@dataclasses.dataclass(frozen=True)
class KeyUsage:
    """One key's recent use, counted by the replica that answered (GetKeyUsage)."""
    key_id: int
    state: KeyState
    verified_last_hour: int      # tokens verified as VALID
    verified_last_day: int
    last_verified_at: Optional[_dt.datetime]   # None: not since the replica started
    rejected_disabled_last_day: int            # tokens refused as KEY_DISABLED
    signed_last_day: int


@dataclasses.dataclass(frozen=True)
class KeyringUsage:
    keyring: str
    revision: int
    counting_since: Optional[_dt.datetime]   # the answering replica's counts start here
    keys: tuple                              # of KeyUsage, newest key first

    def key(self, key_id: int) -> Optional[KeyUsage]:
        return next((k for k in self.keys if k.key_id == key_id), None)


@dataclasses.dataclass(frozen=True)
class KeyringSummary:
    name: str
    revision: int
    primary_key_id: int
    key_count: int


@dataclasses.dataclass(frozen=True)
class RotateResult:
    new_key: KeyInfo
    previous_primary_key_id: int
    revision: int


@dataclasses.dataclass(frozen=True)
class ImportResult:
    key: KeyInfo
    revision: int
    # Non-empty when the service found the imported secret weak (why, and what to do:
    # rotate right after importing, shorten the imported key's verify window).
    warning: str = ""


class WeakSecretWarning(UserWarning):
    """import_key imported a secret the service considers weak (ImportResult.warning)."""


# --- conversions -----------------------------------------------------------------------

_CODES = {c.value[0]: c for c in grpc.StatusCode}


def _enum(cls, value):
    try:
        return cls(value)
    except ValueError:
        return cls(0)   # a value newer than this client: treat as unspecified


def _seconds(value: Seconds, what: str) -> int:
    if isinstance(value, _dt.timedelta):
        if value.microseconds:
            raise ValueError(f"{what}: must be whole seconds")
        return int(value.total_seconds())
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what}: int seconds or datetime.timedelta expected")
    return value


def _ts(msg, field: str) -> Optional[_dt.datetime]:
    if not msg.HasField(field):
        return None
    t = getattr(msg, field)
    return _dt.datetime.fromtimestamp(t.seconds + t.nanos / 1e9, tz=_dt.timezone.utc)


def _sign_result(r) -> SignResult:
    return SignResult(token=r.token, key_id=r.key_id, issued_at=_ts(r, "issued_at"),
                      expires_at=_ts(r, "expires_at"), token_id=r.token_id)


def _verify_result(r) -> VerifyResult:
    return VerifyResult(result=_enum(Result, r.result), payload=bytes(r.payload),
                        key_id=r.key_id, issued_at=_ts(r, "issued_at"),
                        expires_at=_ts(r, "expires_at"),
                        refresh_recommended=bool(r.refresh_recommended),
                        subject=r.subject, token_id=r.token_id)


def _key_info(k) -> KeyInfo:
    return KeyInfo(key_id=k.key_id, algorithm=_enum(Algorithm, k.algorithm),
                   state=_enum(KeyState, k.state), created_at=_ts(k, "created_at"),
                   state_changed_at=_ts(k, "state_changed_at"))


def _policy(p) -> KeyringPolicy:
    return KeyringPolicy(seal_payloads=bool(p.seal_payloads),
                         **{f.name: _dt.timedelta(seconds=getattr(p, f.name).seconds)
                            for f in dataclasses.fields(KeyringPolicy) if f.name != "seal_payloads"})


def _keyring_info(r) -> KeyringInfo:
    return KeyringInfo(name=r.name, keys=tuple(_key_info(k) for k in r.keys),
                       primary_key_id=r.primary_key_id, revision=r.revision,
                       policy=_policy(r.policy) if r.HasField("policy") else None,
                       created_at=_ts(r, "created_at"))


_checked = False


def _check_enums(pb) -> None:
    """The enums above mirror the .proto ones; fail loudly if the contract moved."""
    global _checked
    if _checked:
        return
    pairs = [(Result, pb.tokens_pb2.VerifyResponse.Result),
             (Algorithm, pb.common_pb2.Algorithm), (KeyState, pb.common_pb2.KeyState)]
    for cls, wrapper in pairs:
        for name, number in wrapper.items():
            if name not in cls.__members__ or cls[name] != number:
                raise ImportError(f"sessiontoken: {cls.__name__}.{name} = {number} in the "
                                  "protos is not mirrored in sessiontoken/client.py")
    _checked = True


# --- health (grpc.health.v1, hand-encoded: its generated module would clash with `grpc`) -

_HEALTH_STATUS = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


def _health_request(service: str) -> bytes:
    b = service.encode("utf-8")
    if not b:
        return b""
    if len(b) > 127:
        raise ValueError("service name too long")
    return b"\x0a" + bytes([len(b)]) + b


def _health_response(data: bytes) -> str:
    i, status = 0, 0
    while i < len(data):
        tag = data[i]
        i += 1
        if tag != 0x08:   # field 1, varint; nothing else is defined
            break
        shift = value = 0
        while i < len(data):
            byte = data[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        status = value
    return _HEALTH_STATUS.get(status, "UNKNOWN")


# --- service config ----------------------------------------------------------------------

_SERVICES = {"Sign": "sessiontoken.v1.SessionTokens", "Verify": "sessiontoken.v1.SessionTokens",
             "BatchSign": "sessiontoken.v1.SessionTokens",
             "BatchVerify": "sessiontoken.v1.SessionTokens", "Check": "grpc.health.v1.Health"}


def _split_service_config(text: str):
    """Returns (the config without its `timeout`s, {(service, method or ""): seconds}).

    gRPC core 1.51 (Debian's) sets the deadline from a methodConfig `timeout` wrongly (a 2 s
    timeout can end a call after 0.4 s), so the client sets each call's deadline itself from
    the file and gives gRPC the rest (retryPolicy)."""
    config = json.loads(text)
    timeouts = {}
    for entry in config.get("methodConfig", []):
        timeout = entry.pop("timeout", None)
        if timeout is None:
            continue
        if not (isinstance(timeout, str) and timeout.endswith("s")):
            raise ValueError(f"service config: timeout {timeout!r} is not a duration")
        for name in entry.get("name", []):
            timeouts[(name.get("service", ""), name.get("method", ""))] = float(timeout[:-1])
    return json.dumps(config), timeouts


def _method_timeout(timeouts, method: str) -> Optional[float]:
    service = _SERVICES.get(method, "sessiontoken.v1.KeyAdmin")
    found = timeouts.get((service, method))
    return timeouts.get((service, "")) if found is None else found


# --- the client ------------------------------------------------------------------------

class Client:
    """Client(target="127.0.0.1:50051", keyring="default", timeout=None).

    `timeout`: seconds, the deadline of every call (default: the method's timeout in the
    service config; a call's own `timeout` comes first). `service_config`: JSON text replacing the shared service_config.json.
    `credentials`: grpc.ChannelCredentials for TLS (default: plaintext, for loopback or a
    sidecar). `channel`: use an existing grpc.Channel instead of creating one (it carries
    its own service config). `token`: an API token, sent as "authorization: Bearer <token>"
    on every call (servers that require authentication; read it from a file or Secret).
    `target` may be "host:port" or "dns:///name:port": calls are balanced round_robin over
    every address the name resolves to (a Kubernetes headless Service lists its pods).
    """

    def __init__(self, target: str = "127.0.0.1:50051", *, keyring: str = DEFAULT_KEYRING,
                 timeout: Optional[float] = None, service_config: Optional[str] = None,
                 credentials: Optional[grpc.ChannelCredentials] = None,
                 channel: Optional[grpc.Channel] = None, options: Sequence = (),
                 token: Optional[str] = None):
        pb = _stubs.load()
        self._metadata = None if not token else (("authorization", f"Bearer {token}"),)
        _check_enums(pb)
        self._pb = pb
        self.target = target
        self.keyring = keyring
        self.timeout = None if timeout is None else float(timeout)
        grpc_config, self._timeouts = _split_service_config(
            _stubs.service_config() if service_config is None else service_config)
        # Reconnect quickly once the service is back (gRPC's default backoff grows to 120 s).
        opts = [("grpc.initial_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", 2000),
                ("grpc.enable_retries", 1),
                ("grpc.service_config", grpc_config)] + list(options)
        self.connectivity = None
        if channel is not None:
            self._channel, self._owns_channel = channel, False
        else:
            if credentials is not None:
                self._channel = grpc.secure_channel(target, credentials, opts)
            else:
                self._channel = grpc.insecure_channel(target, opts)
            self._owns_channel = True
            # Watching the connectivity keeps a thread polling the channel. Without it an
            # idle Python channel is only serviced by gRPC's 5 s backup poller: reconnects
            # after an outage and the server's GOAWAY on shutdown then take ~5 s.
            self._channel.subscribe(self._on_connectivity)
        self._tokens = pb.tokens_pb2_grpc.SessionTokensStub(self._channel)
        self._admin = pb.admin_pb2_grpc.KeyAdminStub(self._channel)
        self._health = self._channel.unary_unary(
            "/grpc.health.v1.Health/Check", request_serializer=_health_request,
            response_deserializer=_health_response)

    # context manager / lifecycle
    def _on_connectivity(self, state) -> None:
        self.connectivity = state

    def close(self) -> None:
        if self._owns_channel:
            self._channel.unsubscribe(self._on_connectivity)
            self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"sessiontoken.Client({self.target!r}, keyring={self.keyring!r})"

    def _call(self, name: str, fn, request, timeout: Optional[float]):
        if timeout is None:
            timeout = self.timeout
        if timeout is None:
            timeout = _method_timeout(self._timeouts, name.split(".")[-1])
        try:
            return fn(request, timeout=timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            code = e.code() if hasattr(e, "code") else grpc.StatusCode.UNKNOWN
            details = (e.details() if hasattr(e, "details") else "") or ""
            raise ServiceError(name, code, details) from None

    def _kr(self, keyring: Optional[str]) -> str:
        return self.keyring if keyring is None else keyring

    # --- SessionTokens -------------------------------------------------------------------

    def _sign_request(self, payload, ttl, audience, keyring, subject=""):
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        req = self._pb.tokens_pb2.SignRequest(keyring=self._kr(keyring), payload=bytes(payload),
                                              audience=audience, subject=subject)
        req.ttl.seconds = _seconds(ttl, "ttl")
        return req

    def _verify_request(self, token, audience, max_age, keyring):
        req = self._pb.tokens_pb2.VerifyRequest(keyring=self._kr(keyring), token=token,
                                                audience=audience)
        if max_age is not None:
            req.max_age.seconds = _seconds(max_age, "max_age")
        return req

    def sign(self, payload: Union[bytes, str], ttl: Seconds, *, audience: str = "",
             keyring: Optional[str] = None, subject: str = "",
             timeout: Optional[float] = None) -> SignResult:
        """Signs `payload` (bytes; str is UTF-8 encoded) with the keyring's primary key.
        `subject` (e.g. the user id, at most 128 bytes) is bound into the token and comes
        back from verify(); revoke(subject=...) ends every session carrying it.
        Flask-format keyrings refuse one (INVALID_ARGUMENT)."""
        req = self._sign_request(payload, ttl, audience, keyring, subject)
        return _sign_result(self._call("Sign", self._tokens.Sign, req, timeout))

    def verify(self, token: str, *, audience: str = "", max_age: Optional[Seconds] = None,
               keyring: Optional[str] = None, timeout: Optional[float] = None) -> VerifyResult:
        """Checks `token`. `max_age` bounds the age of formats that carry only an issue
        time (Flask cookies)."""
        req = self._verify_request(token, audience, max_age, keyring)
        return _verify_result(self._call("Verify", self._tokens.Verify, req, timeout))

    def batch_sign(self, items: Iterable[SignItem], *,
                   timeout: Optional[float] = None) -> list:
        req = self._pb.tokens_pb2.BatchSignRequest()
        for it in items:
            req.items.append(self._sign_request(it.payload, it.ttl, it.audience, it.keyring,
                                                it.subject))
        resp = self._call("BatchSign", self._tokens.BatchSign, req, timeout)
        return [BatchItem(_CODES.get(i.code, grpc.StatusCode.UNKNOWN), i.message,
                          _sign_result(i.response) if i.code == 0 else None)
                for i in resp.items]

    def batch_verify(self, items: Iterable[Union[str, VerifyItem]], *, audience: str = "",
                     max_age: Optional[Seconds] = None, keyring: Optional[str] = None,
                     timeout: Optional[float] = None) -> list:
        """Verifies many tokens in one round trip. A str item uses the given audience,
        max_age and keyring; a VerifyItem carries its own."""
        req = self._pb.tokens_pb2.BatchVerifyRequest()
        for it in items:
            if isinstance(it, str):
                it = VerifyItem(it, audience, max_age, keyring)
            req.items.append(self._verify_request(it.token, it.audience, it.max_age,
                                                  it.keyring))
        resp = self._call("BatchVerify", self._tokens.BatchVerify, req, timeout)
        return [BatchItem(_CODES.get(i.code, grpc.StatusCode.UNKNOWN), i.message,
                          _verify_result(i.response) if i.code == 0 else None)
                for i in resp.items]

    def revoke(self, token: Optional[str] = None, *, subject: Optional[str] = None,
               audience: str = "", keyring: Optional[str] = None,
               timeout: Optional[float] = None) -> RevokeResult:
        """Revokes one session (`token`, which must verify for `audience`) or every session
        of `subject` issued until now ("log out everywhere"). Verify then answers
        Result.REVOKED. Needs SIGN on the keyring (or ADMIN). Raises ServiceError, e.g.
        RESOURCE_EXHAUSTED when the keyring's revocation list is full, INVALID_ARGUMENT when
        the token does not verify."""
        if (token is None) == (subject is None):
            raise ValueError("revoke: give exactly one of token or subject")
        req = self._pb.tokens_pb2.RevokeRequest(keyring=self._kr(keyring), audience=audience)
        if token is not None:
            req.token = token
        else:
            req.subject = subject
        r = self._call("Revoke", self._tokens.Revoke, req, timeout)
        return RevokeResult(revoked_at=_ts(r, "revoked_at"), drop_after=_ts(r, "drop_after"))

    # --- KeyAdmin ------------------------------------------------------------------------

    def rotate(self, keyring: Optional[str] = None, *, promote_now: bool = False,
               algorithm: Optional[Algorithm] = None,
               timeout: Optional[float] = None) -> RotateResult:
        req = self._pb.admin_pb2.RotateRequest(keyring=self._kr(keyring),
                                               promote_now=promote_now,
                                               algorithm=int(algorithm or 0))
        r = self._call("Rotate", self._admin.Rotate, req, timeout)
        return RotateResult(_key_info(r.new_key), r.previous_primary_key_id, r.revision)

    def list_keys(self, keyring: Optional[str] = None, *,
                  timeout: Optional[float] = None) -> KeyringInfo:
        req = self._pb.admin_pb2.ListKeysRequest(keyring=self._kr(keyring))
        r = self._call("ListKeys", self._admin.ListKeys, req, timeout)
        return KeyringInfo(name=r.keyring, keys=tuple(_key_info(k) for k in r.keys),
                           primary_key_id=r.primary_key_id, revision=r.revision)

    def get_key_usage(self, keyring: Optional[str] = None, *,
                      timeout: Optional[float] = None) -> KeyringUsage:
        """How much each key is in use, on the replica that answers (docs/operations.md)."""
        req = self._pb.admin_pb2.GetKeyUsageRequest(keyring=self._kr(keyring))
        r = self._call("GetKeyUsage", self._admin.GetKeyUsage, req, timeout)
        keys = tuple(KeyUsage(k.key_id, _enum(KeyState, k.state), k.verified_last_hour,
                              k.verified_last_day, _ts(k, "last_verified_at"),
                              k.rejected_disabled_last_day, k.signed_last_day)
                     for k in r.keys)
        return KeyringUsage(r.keyring, r.revision, _ts(r, "counting_since"), keys)

    def get_keyring(self, keyring: Optional[str] = None, *,
                    timeout: Optional[float] = None) -> KeyringInfo:
        req = self._pb.admin_pb2.GetKeyringRequest(keyring=self._kr(keyring))
        return _keyring_info(self._call("GetKeyring", self._admin.GetKeyring, req, timeout))

    def list_keyrings(self, *, timeout: Optional[float] = None) -> list:
        req = self._pb.admin_pb2.ListKeyringsRequest()
        r = self._call("ListKeyrings", self._admin.ListKeyrings, req, timeout)
        return [KeyringSummary(e.name, e.revision, e.primary_key_id, e.key_count)
                for e in r.keyrings]

    def _key_op(self, name, key_id, keyring, timeout) -> KeyringInfo:
        req = self._pb.admin_pb2.KeyRequest(keyring=self._kr(keyring), key_id=int(key_id))
        return _keyring_info(self._call(name, getattr(self._admin, name), req, timeout))

    def promote_key(self, key_id: int, keyring: Optional[str] = None, *,
                    timeout: Optional[float] = None) -> KeyringInfo:
        return self._key_op("PromoteKey", key_id, keyring, timeout)

    def disable_key(self, key_id: int, keyring: Optional[str] = None, *,
                    timeout: Optional[float] = None) -> KeyringInfo:
        return self._key_op("DisableKey", key_id, keyring, timeout)

    def enable_key(self, key_id: int, keyring: Optional[str] = None, *,
                   timeout: Optional[float] = None) -> KeyringInfo:
        return self._key_op("EnableKey", key_id, keyring, timeout)

    def destroy_key(self, key_id: int, keyring: Optional[str] = None, *,
                    timeout: Optional[float] = None) -> KeyringInfo:
        return self._key_op("DestroyKey", key_id, keyring, timeout)

    def import_key(self, secret: bytes, keyring: Optional[str] = None, *,
                   algorithm: Algorithm = Algorithm.HMAC_SHA1_FLASK,
                   state: Optional[KeyState] = None,
                   timeout: Optional[float] = None) -> ImportResult:
        """Imports an existing secret, by default a Flask SECRET_KEY as a verify-only
        (ACTIVE) key. `secret` must be bytes: for a str SECRET_KEY pass
        `secret.encode("utf-8")`, which is what Flask/itsdangerous sign with.
        `state=KeyState.PRIMARY` makes the service sign with it too. A weak secret is
        imported all the same; the result's `warning` says so (also issued as a
        `WeakSecretWarning`)."""
        if not isinstance(secret, (bytes, bytearray, memoryview)):
            raise TypeError("secret must be bytes (for a str Flask SECRET_KEY pass "
                            "secret.encode('utf-8'))")
        req = self._pb.admin_pb2.ImportKeyRequest(keyring=self._kr(keyring),
                                                  algorithm=int(algorithm),
                                                  secret=bytes(secret),
                                                  state=int(state or 0))
        r = self._call("ImportKey", self._admin.ImportKey, req, timeout)
        if r.warning:
            warnings.warn(r.warning, WeakSecretWarning, stacklevel=2)
        return ImportResult(_key_info(r.key), r.revision, r.warning)

    def _policy_proto(self, policy: KeyringPolicy):
        p = self._pb.common_pb2.KeyringPolicy()
        for f in dataclasses.fields(KeyringPolicy):
            if f.name == "seal_payloads":
                p.seal_payloads = bool(policy.seal_payloads)
            else:
                getattr(p, f.name).seconds = _seconds(getattr(policy, f.name), f.name)
        return p

    def create_keyring(self, name: str, *, policy: Optional[KeyringPolicy] = None,
                       algorithm: Optional[Algorithm] = None,
                       timeout: Optional[float] = None) -> KeyringInfo:
        req = self._pb.admin_pb2.CreateKeyringRequest(name=name, algorithm=int(algorithm or 0))
        if policy is not None:
            req.policy.CopyFrom(self._policy_proto(policy))
        return _keyring_info(self._call("CreateKeyring", self._admin.CreateKeyring, req,
                                        timeout))

    def set_policy(self, policy: KeyringPolicy, keyring: Optional[str] = None, *,
                   timeout: Optional[float] = None) -> KeyringInfo:
        req = self._pb.admin_pb2.SetPolicyRequest(keyring=self._kr(keyring))
        req.policy.CopyFrom(self._policy_proto(policy))
        return _keyring_info(self._call("SetPolicy", self._admin.SetPolicy, req, timeout))

    # --- health --------------------------------------------------------------------------

    def health(self, service: str = "", *, timeout: Optional[float] = None) -> str:
        """grpc.health.v1 Check: "SERVING", "NOT_SERVING", "UNKNOWN" or "SERVICE_UNKNOWN"."""
        return self._call("Health.Check", self._health, service, timeout)
