"""The dashboard's cookie: which login it belongs to, and the CSRF token of its forms.

The cookie is Flask's signed session. It holds the id of a server-side login (``Access``
keeps its hash, so logging out ends it for every copy of the cookie) and a mark tied to the
current operator password, so changing DIGEST_OPERATOR_PASSWORD logs out every session made
with the old one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import session as web_session

from digest.service.access import Access

_LOGIN_KEY = "operator"
_SESSION_KEY = "sid"
_CSRF_KEY = "csrf"


def _password_mark(password: str, secret: str) -> str:
    return hmac.new(
        secret.encode("utf-8"), b"operator-login:" + password.encode("utf-8"), hashlib.sha256
    ).hexdigest()


def remember_login(session_id: str, password: str, secret: str) -> None:
    """Put a fresh login in the cookie: nothing carried over from before it, a new CSRF token."""
    web_session.clear()
    web_session[_LOGIN_KEY] = _password_mark(password, secret)
    web_session[_SESSION_KEY] = session_id
    web_session[_CSRF_KEY] = secrets.token_urlsafe(32)
    web_session.permanent = False


def forget_login(access: Access) -> None:
    """End this login server-side and empty the cookie."""
    sid = web_session.get(_SESSION_KEY)
    if isinstance(sid, str):
        access.log_out(sid)
    web_session.clear()


def logged_in(access: Access, password: str | None, secret: str) -> bool:
    """Whether the cookie belongs to a live login made with the current password."""
    mark = web_session.get(_LOGIN_KEY)
    sid = web_session.get(_SESSION_KEY)
    if not password or not isinstance(mark, str) or not isinstance(sid, str):
        return False
    if not hmac.compare_digest(mark.encode("ascii"), _password_mark(password, secret).encode()):
        return False
    return access.session_is_live(sid)


def csrf_token() -> str:
    """This session's CSRF token, made on first use (the login form needs one too)."""
    token = web_session.get(_CSRF_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        web_session[_CSRF_KEY] = token
    return token


def csrf_ok(given: str | None) -> bool:
    expected = web_session.get(_CSRF_KEY)
    if not given or not isinstance(expected, str) or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
