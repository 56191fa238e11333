"""The dashboard's cookie: which login it belongs to, who that is (name and role), the role
each page needs, and the CSRF token of its forms.

The cookie is Flask's signed session. It holds the id of a server-side login (``Access``
keeps its hash, so logging out ends it for every copy of the cookie) and a mark tied to the
current operator password, so changing DIGEST_OPERATOR_PASSWORD logs out every session made
with the old one. A named user's role is read from their row on every request, so changing
it (or disabling the user) takes effect at once.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from flask import g, redirect, render_template, url_for
from flask import session as web_session

from digest.service.access import Access
from digest.service.users import ROLES, UserView
from digest.web import context

__all__ = [
    "csrf_ok",
    "csrf_token",
    "current_user",
    "forbidden",
    "forget_login",
    "logged_in",
    "remember_login",
    "require_role",
]

_LOGIN_KEY = "operator"
_SESSION_KEY = "sid"
_CSRF_KEY = "csrf"

F = TypeVar("F", bound=Callable[..., Any])


def _password_mark(password: str, secret: str) -> str:
    return hmac.new(
        secret.encode("utf-8"), b"operator-login:" + password.encode("utf-8"), hashlib.sha256
    ).hexdigest()


def remember_login(session_id: str, password: str, secret: str) -> None:
    """Put a fresh login in the cookie: nothing carried over from before it, a new CSRF token.
    ``password`` is the built-in operator password (empty for a named user's login)."""
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


def signed_in_user(access: Access, password: str | None, secret: str) -> UserView | None:
    """Who the cookie's live login belongs to; a built-in operator login counts only while it
    was made with the current operator password."""
    mark = web_session.get(_LOGIN_KEY)
    sid = web_session.get(_SESSION_KEY)
    if not isinstance(mark, str) or not isinstance(sid, str):
        return None
    user = access.session_user(sid)
    if user is None:
        return None
    if user.builtin:
        if not password:
            return None
        if not hmac.compare_digest(mark.encode("ascii"), _password_mark(password, secret).encode()):
            return None
    return user


def logged_in(access: Access, password: str | None, secret: str) -> bool:
    """Whether the cookie belongs to a live login."""
    return signed_in_user(access, password, secret) is not None


def current_user() -> UserView | None:
    """The signed-in user of this request (name and role), or None; read once per request.
    Other pages use it to record who made a change."""
    if "digest_user" not in g:
        ctx = context()
        g.digest_user = signed_in_user(
            ctx.core.access, ctx.settings.operator_password, ctx.settings.secret
        )
    found: UserView | None = g.digest_user
    return found


def forbidden(needed: str) -> tuple[str, int]:
    """The 403 page: signed in, but the role does not allow this."""
    user = current_user()
    return (
        render_template(
            "web/dashboard/forbidden.html",
            site_name=context().settings.site_name,
            csrf_token=csrf_token(),
            messages=[],
            me=user,
            needed=needed,
        ),
        403,
    )


def require_role(needed: str) -> Callable[[F], F]:
    """A view decorator: signed-out visitors go to the login, a signed-in user whose role is
    below ``needed`` (viewer < editor < operator) gets the 403 page."""
    if needed not in ROLES:
        raise ValueError(f"unknown role {needed!r}")

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            refusal = check_role(needed)
            if refusal is not None:
                return refusal
            return view(*args, **kwargs)

        wrapper.required_role = needed  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def check_role(needed: str) -> Any:
    """None when the signed-in user may do what ``needed`` may; else the response to give."""
    user = current_user()
    if user is None:
        return redirect(url_for("dashboard.login"), 303)
    if not user.may(needed):
        return forbidden(needed)
    return None


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
