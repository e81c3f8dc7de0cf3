"""Flask session interface backed by the sessiontoken service (instead of app.secret_key).

    from sessiontoken import Client
    from sessiontoken.flask import SessionTokenInterface
    app.session_interface = SessionTokenInterface(Client("127.0.0.1:50051"))

Same behaviour as Flask's SecureCookieSessionInterface (flask/sessions.py), with the MAC
computed by the service:

* the session dict is serialized with Flask's TaggedJSONSerializer; the JSON bytes are the
  token payload (signed, not encrypted, exactly like Flask's cookie);
* the audience is Flask's salt, "cookie-session", so a keyring whose primary key is an
  imported Flask SECRET_KEY issues cookies that Flask itself accepts, and vice versa;
* Verify gets max_age = PERMANENT_SESSION_LIFETIME (Flask's loads(max_age=...)); Sign gets
  ttl = PERMANENT_SESSION_LIFETIME for permanent sessions and `session_ttl` (default: the
  same lifetime) for browser-session cookies;
* SESSION_COOKIE_NAME/DOMAIN/PATH/SECURE/HTTPONLY/SAMESITE and SESSION_REFRESH_EACH_REQUEST
  are honoured through the base class helpers; "Vary: Cookie" when the session was accessed;
  an emptied session deletes the cookie;
* the cookie is set only when the session was modified, when a permanent session is
  refreshed each request, or when Verify says refresh_recommended (the cookie was signed by
  a key that is no longer primary, e.g. after a rotation or an imported Flask secret): it is
  then re-issued under the current primary key.

Fails closed: when the service is unreachable or returns an error, the request gets a new,
empty session and an error is logged (logger "sessiontoken.flask"); an unverified cookie is
never accepted and the request does not fail. If a *modified* session cannot be signed,
its cookie is deleted rather than left holding the previous state. Cookie values are never
logged.
"""

from __future__ import annotations

import datetime as _dt
import logging
from typing import Optional

from flask.sessions import SecureCookieSession, SessionInterface, session_json_serializer

from .client import Client, Result, ServiceError

log = logging.getLogger("sessiontoken.flask")


class TokenSession(SecureCookieSession):
    """Flask's SecureCookieSession plus the service's refresh advice."""
    #: Verify said the cookie was signed by a key that is no longer primary.
    refresh_recommended = False


class SessionTokenInterface(SessionInterface):
    #: The audience (purpose) bound into each token: Flask's salt, for interoperability.
    salt = "cookie-session"
    serializer = session_json_serializer
    session_class = TokenSession

    def __init__(self, client: Client, keyring: str = "default", *,
                 audience: Optional[str] = None,
                 session_ttl: Optional[_dt.timedelta] = None):
        """`session_ttl`: token lifetime of non-permanent (browser-session) cookies;
        default PERMANENT_SESSION_LIFETIME, which is also the age Flask itself accepts."""
        self.client = client
        self.keyring = keyring
        if audience is not None:
            self.salt = audience
        self.session_ttl = session_ttl

    # --- reading ---------------------------------------------------------------------

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
            return self.session_class()
        except Exception:  # never fail the request because of the session backend
            log.exception("session cookie not checked, starting an empty session")
            return self.session_class()
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
        session.refresh_recommended = r.refresh_recommended
        return session

    # --- writing ---------------------------------------------------------------------

    def should_set_cookie(self, app, session) -> bool:
        return (super().should_set_cookie(app, session)
                or bool(getattr(session, "refresh_recommended", False)))

    def _ttl(self, app, session) -> int:
        if session.permanent or self.session_ttl is None:
            lifetime = app.permanent_session_lifetime
        else:
            lifetime = self.session_ttl
        return max(1, int(lifetime.total_seconds()))

    def save_session(self, app, session, response) -> None:
        name = self.get_cookie_name(app)
        domain = self.get_cookie_domain(app)
        path = self.get_cookie_path(app)
        secure = self.get_cookie_secure(app)
        samesite = self.get_cookie_samesite(app)
        httponly = self.get_cookie_httponly(app)

        if session.accessed:
            response.vary.add("Cookie")

        def delete_cookie():
            response.delete_cookie(name, domain=domain, path=path, secure=secure,
                                   samesite=samesite, httponly=httponly)
            response.vary.add("Cookie")

        if not session:
            if session.modified:
                delete_cookie()
            return
        if not self.should_set_cookie(app, session):
            return

        try:
            payload = self.serializer.dumps(dict(session)).encode("utf-8")
            signed = self.client.sign(payload, self._ttl(app, session), audience=self.salt,
                                      keyring=self.keyring)
        except Exception as e:
            if isinstance(e, ServiceError):
                log.error("session cookie not issued: %s", e)
            else:
                log.exception("session cookie not issued")
            # A changed session that cannot be stored must not leave the previous state
            # behind in the browser; a mere refresh keeps the (still valid) old cookie.
            if session.modified:
                delete_cookie()
            return

        response.set_cookie(name, signed.token, expires=self.get_expiration_time(app, session),
                            httponly=httponly, domain=domain, path=path, secure=secure,
                            samesite=samesite)
        response.vary.add("Cookie")
