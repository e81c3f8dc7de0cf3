"""Flask session interface backed by the sessiontoken service (instead of app.secret_key).

    import functools
    from sessiontoken import Client
    from sessiontoken.flask import SessionTokenInterface
    app.session_interface = SessionTokenInterface(functools.partial(Client, "127.0.0.1:50051"))

Same behaviour as Flask's SecureCookieSessionInterface (flask/sessions.py), with the MAC
computed by the service:

* the session dict is serialized with Flask's TaggedJSONSerializer; the JSON bytes are the
  token payload (signed, not encrypted, exactly like Flask's cookie);
* the audience is Flask's salt, "cookie-session", so a keyring whose primary key is an
  imported Flask SECRET_KEY issues cookies that Flask itself accepts, and vice versa;
* Verify gets max_age = PERMANENT_SESSION_LIFETIME (Flask's loads(max_age=...)); Sign gets
  ttl = PERMANENT_SESSION_LIFETIME for permanent sessions and `session_ttl` (default: the
  same lifetime) for browser-session cookies;
* SESSION_COOKIE_NAME/DOMAIN/PATH/SECURE/HTTPONLY/SAMESITE/PARTITIONED and
  SESSION_REFRESH_EACH_REQUEST are honoured; "Vary: Cookie" when the session was accessed;
  an emptied session deletes the cookie;
* the cookie is set only when the session was modified, when a permanent session is
  refreshed each request (unless `refresh_after` is given: then only when the token is
  older than that), or when Verify says refresh_recommended (the cookie was signed by a
  key that is no longer primary): it is then re-issued under the current primary key.

Revocation (the service's Revoke): with `subject_key` (e.g. "user_id"), each token is signed
with the subject session[subject_key] (when set). `logout()` revokes the token the request
came with and clears the session (the cookie is deleted); `logout_everywhere()` revokes every
session of the subject issued until now ("log out everywhere": the cookies of other devices
are REVOKED on their next request) and clears the session. Both clear the session even when
the service cannot be reached, and then raise the ServiceError so the view can tell the user.

Fails closed: when the service is unreachable or returns an error, the request gets a new,
empty session marked `unverified` and an error is logged (logger "sessiontoken.flask"); an
unverified cookie is never accepted and the request does not fail. An unverified session is
never saved: whatever the view writes into it, the browser's cookie is neither replaced nor
deleted (one warning is logged). If a *modified* session cannot be signed (service error,
or `SessionTooLarge`), its cookie is deleted rather than left holding the previous state.
Cookie values are never logged.

Fork safety: gRPC channels do not survive fork(). Given a factory (any callable returning
a Client, e.g. functools.partial(Client, target)), the interface creates the Client lazily,
once per process (it notices a pid change), so it can be built at import time under
gunicorn --preload or uwsgi without lazy-apps. A channel can only be created in a forked
child with gRPC's fork support, which importing sessiontoken (before grpc) enables.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import threading
from typing import Callable, Optional, Union

import grpc
from flask.sessions import SecureCookieSession, SessionInterface, session_json_serializer
from werkzeug.http import dump_cookie

from . import FORK_SUPPORT
from .client import Client, Result, RevokeResult, ServiceError

log = logging.getLogger("sessiontoken.flask")

#: The service's default limit of a native token's payload (server flag max_payload_bytes).
DEFAULT_MAX_PAYLOAD_BYTES = 2048


class SessionTooLarge(Exception):
    """The serialized session is larger than the service signs: it was not saved."""

    def __init__(self, size: Optional[int], limit: Optional[int], detail: str = ""):
        what = f"{size} bytes" if size is not None else "the payload"
        msg = f"session too large: {what}"
        if limit is not None:
            msg += f" exceeds the limit of {limit}"
        if detail:
            msg += f" ({detail})"
        super().__init__(msg)
        self.size = size
        self.limit = limit


class TokenSession(SecureCookieSession):
    """Flask's SecureCookieSession plus what Verify said about the cookie."""
    #: Verify said the cookie was signed by a key that is no longer primary.
    refresh_recommended = False
    #: The cookie is older than the interface's `refresh_after` (rolling expiry).
    refresh_due = False
    #: The cookie could not be checked (service error or timeout): this empty session is
    #: never saved, so the browser's cookie is neither replaced nor deleted.
    unverified = False
    #: The valid token this request came with (what logout() revokes); None otherwise.
    token: Optional[str] = None


def _seconds_or_none(value, what: str) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, _dt.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"{what}: a positive number of seconds or a timedelta expected")
    return int(value)


class SessionTokenInterface(SessionInterface):
    #: The audience (purpose) bound into each token: Flask's salt, for interoperability.
    salt = "cookie-session"
    serializer = session_json_serializer
    session_class = TokenSession

    def __init__(self, client: Union[Client, Callable[[], Client]], keyring: str = "default", *,
                 audience: Optional[str] = None,
                 session_ttl: Optional[_dt.timedelta] = None,
                 refresh_after: Union[_dt.timedelta, int, None] = None,
                 max_payload_bytes: Optional[int] = DEFAULT_MAX_PAYLOAD_BYTES,
                 subject_key: Optional[str] = None):
        """`client`: a Client, or a factory returning one (fork-safe: called once per
        process, on first use).
        `session_ttl`: token lifetime of non-permanent (browser-session) cookies; default
        PERMANENT_SESSION_LIFETIME, which is also the age Flask itself accepts.
        `refresh_after`: rolling expiry without a Sign per request: an unchanged session
        is re-signed only when its token is older than this (also replaces
        SESSION_REFRESH_EACH_REQUEST's re-sign on every response). Default: off.
        `max_payload_bytes`: sessions whose serialized form is larger are not sent to Sign
        (SessionTooLarge); default the service's default limit. None: leave the check to
        the service (e.g. a Flask-format keyring, whose limit is the compressed cookie).
        `subject_key`: the session key holding the user id (e.g. "user_id"): tokens are
        signed with it as their subject, which logout_everywhere() revokes."""
        if callable(client) and not hasattr(client, "verify"):
            self._factory, self._client = client, None
        else:
            self._factory, self._client = None, client
        self._pid = os.getpid() if self._factory is None else None
        self._lock = threading.Lock()
        self._stale = []   # clients inherited over fork(): kept, never used nor closed
        self.keyring = keyring
        if audience is not None:
            self.salt = audience
        self.session_ttl = session_ttl
        self.refresh_after = _seconds_or_none(refresh_after, "refresh_after")
        if max_payload_bytes is not None and (isinstance(max_payload_bytes, bool) or
                                              int(max_payload_bytes) <= 0):
            raise ValueError("max_payload_bytes: a positive int or None expected")
        self.max_payload_bytes = None if max_payload_bytes is None else int(max_payload_bytes)
        self._fork_warned = False
        if subject_key is not None and (not isinstance(subject_key, str) or not subject_key):
            raise ValueError("subject_key: a non-empty str expected")
        self.subject_key = subject_key

    @property
    def client(self) -> Client:
        """The Client of this process (created by the factory on first use after a fork)."""
        pid = os.getpid()
        if self._factory is None:
            if pid != self._pid and not self._fork_warned:
                self._fork_warned = True
                log.warning("the sessiontoken Client was created before this process forked; "
                            "gRPC channels do not survive fork(): pass a factory "
                            "(e.g. functools.partial(Client, target)) to SessionTokenInterface")
            return self._client
        if self._pid != pid:
            with self._lock:
                if self._pid != pid:
                    if self._client is not None:
                        self._stale.append(self._client)   # the parent's: do not touch
                        if not FORK_SUPPORT:
                            log.warning("creating a Client after fork() without gRPC fork "
                                        "support: set GRPC_ENABLE_FORK_SUPPORT=1 (or import "
                                        "sessiontoken before grpc)")
                    self._client = self._factory()
                    self._pid = pid
        return self._client

    # --- reading ---------------------------------------------------------------------

    def _unverified(self) -> TokenSession:
        session = self.session_class()
        session.unverified = True
        return session

    def open_session(self, app, request) -> TokenSession:
        val = request.cookies.get(self.get_cookie_name(app))
        if not val:
            return self.session_class()
        if not val.isascii() or len(val) > 4096:   # no token looks like this: no RPC
            log.info("session cookie rejected: not a token")
            return self.session_class()
        max_age = int(app.permanent_session_lifetime.total_seconds())
        try:
            r = self.client.verify(val, audience=self.salt, max_age=max_age,
                                   keyring=self.keyring)
        except ServiceError as e:
            log.error("session cookie not checked, starting an empty session: %s", e)
            return self._unverified()
        except Exception:  # never fail the request because of the session backend
            log.exception("session cookie not checked, starting an empty session")
            return self._unverified()
        if r.result != Result.VALID:
            log.info("session cookie rejected: %s (key id %d)", r.result.name, r.key_id)
            return self.session_class()
        try:
            data = self.serializer.loads(r.payload.decode("utf-8"))
            if not isinstance(data, dict):
                raise ValueError("session payload is not a JSON object")
        except Exception as e:
            log.error("valid session token with an undecodable payload, ignored: %s",
                      type(e).__name__)
            return self.session_class()
        session = self.session_class(data)
        session.token = val
        session.refresh_recommended = r.refresh_recommended
        if self.refresh_after is not None and r.issued_at is not None:
            age = _dt.datetime.now(_dt.timezone.utc) - r.issued_at
            session.refresh_due = age.total_seconds() >= self.refresh_after
        return session

    # --- writing ---------------------------------------------------------------------

    def should_set_cookie(self, app, session) -> bool:
        if getattr(session, "unverified", False):
            return False
        if session.modified or getattr(session, "refresh_recommended", False):
            return True
        if self.refresh_after is not None:
            return bool(getattr(session, "refresh_due", False))
        return super().should_set_cookie(app, session)

    def _ttl(self, app, session) -> int:
        if session.permanent or self.session_ttl is None:
            lifetime = app.permanent_session_lifetime
        else:
            lifetime = self.session_ttl
        return max(1, int(lifetime.total_seconds()))

    def get_cookie_partitioned(self, app) -> bool:
        """SESSION_COOKIE_PARTITIONED (Flask 3.1; honoured with older Flask too)."""
        return bool(app.config.get("SESSION_COOKIE_PARTITIONED", False))

    def _sign(self, app, session):
        """Signs the session; raises SessionTooLarge or ServiceError."""
        payload = self.serializer.dumps(dict(session)).encode("utf-8")
        if self.max_payload_bytes is not None and len(payload) > self.max_payload_bytes:
            raise SessionTooLarge(len(payload), self.max_payload_bytes)
        try:
            subject = self.subject_of(session)
            extra = {"subject": subject} if subject else {}
            return self.client.sign(payload, self._ttl(app, session), audience=self.salt,
                                    keyring=self.keyring, **extra)
        except ServiceError as e:
            if e.code == grpc.StatusCode.INVALID_ARGUMENT and e.details.startswith("payload:"):
                raise SessionTooLarge(len(payload), None, e.details) from None
            raise

    # --- revocation --------------------------------------------------------------------

    def subject_of(self, session) -> str:
        """The session's subject (session[subject_key] as a str), or "" when none."""
        if self.subject_key is None:
            return ""
        value = session.get(self.subject_key)
        return "" if value is None else str(value)

    def logout(self, session) -> Optional[RevokeResult]:
        """Revokes the token this request came with and clears the session (its cookie is
        deleted). Returns None when there was no valid token to revoke."""
        token = getattr(session, "token", None)
        session.clear()
        if not token:
            return None
        try:
            return self.client.revoke(token, audience=self.salt, keyring=self.keyring)
        except ServiceError as e:
            log.error("logout: the session token was not revoked (the cookie is deleted): %s", e)
            raise

    def logout_everywhere(self, session) -> RevokeResult:
        """Revokes every session of this session's subject issued until now (all devices)
        and clears the session. ValueError when the session has no subject."""
        subject = self.subject_of(session)
        if not subject:
            raise ValueError(f"logout_everywhere: the session has no {self.subject_key or 'subject_key'}")
        session.clear()
        try:
            return self.client.revoke(subject=subject, keyring=self.keyring)
        except ServiceError as e:
            log.error("logout_everywhere: not revoked (the cookie is deleted): %s", e)
            raise

    def save_session(self, app, session, response) -> None:
        attrs = dict(domain=self.get_cookie_domain(app), path=self.get_cookie_path(app),
                     secure=self.get_cookie_secure(app),
                     samesite=self.get_cookie_samesite(app),
                     httponly=self.get_cookie_httponly(app))
        name = self.get_cookie_name(app)
        partitioned = self.get_cookie_partitioned(app)

        if session.accessed:
            response.vary.add("Cookie")
        if getattr(session, "unverified", False):
            if session.modified:
                log.warning("session not saved: the request's cookie could not be verified; "
                            "the cookie is left unchanged")
            return

        def write(value, **extra):
            cookie = dump_cookie(name, value, **attrs, **extra,
                                 max_size=getattr(response, "max_cookie_size", 4093))
            if partitioned:
                cookie += "; Partitioned"
            response.headers.add("Set-Cookie", cookie)
            response.vary.add("Cookie")

        def delete_cookie():
            write("", max_age=0, expires=0)

        if not session:
            if session.modified:
                delete_cookie()
            return
        if not self.should_set_cookie(app, session):
            return

        try:
            signed = self._sign(app, session)
        except Exception as e:
            if isinstance(e, SessionTooLarge):
                log.error("session not saved: %s", e)
            elif isinstance(e, ServiceError):
                log.error("session cookie not issued: %s", e)
            else:
                log.exception("session cookie not issued")
            # A changed session that cannot be stored must not leave the previous state
            # behind in the browser; a mere refresh keeps the (still valid) old cookie.
            if session.modified:
                delete_cookie()
            return
        write(signed.token, expires=self.get_expiration_time(app, session))


def logout() -> Optional[RevokeResult]:
    """In a request of an app using SessionTokenInterface: revokes the current session's
    token and clears the session (see SessionTokenInterface.logout)."""
    from flask import current_app, session
    return current_app.session_interface.logout(session)


def logout_everywhere() -> RevokeResult:
    """In a request: revokes every session of the current session's subject (all devices)
    and clears the session (see SessionTokenInterface.logout_everywhere)."""
    from flask import current_app, session
    return current_app.session_interface.logout_everywhere(session)
