"""Who may operate Digest over the web: API bearer tokens, the dashboard's operator password,
and the dashboard's CSRF token.

API tokens are random strings shown once; only their SHA-256 is stored, so a copy of the
database does not hand out working tokens. The dashboard keeps its login in Flask's signed
session cookie, tied to a row of ``operator_sessions`` so that logging out ends it for every
copy of the cookie; every form that changes something carries a per-session CSRF token.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from flask import session as web_session
from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.errors import InputError, NotFoundError
from digest.ingest.text import one_line
from digest.store.models import ApiToken, OperatorSession, utcnow

#: Tokens start with this, so one pasted into the wrong place (a log, a chat) is recognisable.
TOKEN_PREFIX = "dgt_"
#: last_used_at is rewritten at most this often: a busy client must not turn every read into
#: a write (on SQLite that would queue behind a running send's commits).
LAST_USED_RESOLUTION = dt.timedelta(seconds=60)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(session: Session, name: str) -> tuple[ApiToken, str]:
    """A new token named ``name``; returns the row and the token itself (never stored)."""
    label = one_line(name, 200)
    if not label:
        raise InputError("a token needs a name (who or what uses it)")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(name=label, token_hash=token_hash(token), created_at=utcnow())
    session.add(row)
    session.flush()
    return row, token


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id)))


def revoke_token(session: Session, token_id: int) -> ApiToken:
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFoundError("token", token_id)
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


class TokenRefused(Exception):
    """A bearer token that does not authenticate; the message says why, without secrets."""


def check_token(session: Session, token: str) -> ApiToken:
    """The live token row ``token`` belongs to, or TokenRefused."""
    wanted = token_hash(token)
    found: ApiToken | None = None
    # Every stored hash is compared in constant time, and the loop does not stop at a match,
    # so the time taken says nothing about how close a guess came. Operators have a handful
    # of tokens, so reading them all costs nothing.
    for row in session.scalars(select(ApiToken)):
        if hmac.compare_digest(row.token_hash.encode("ascii"), wanted.encode("ascii")):
            found = row
    if found is None:
        raise TokenRefused("unknown token")
    if found.revoked_at is not None:
        raise TokenRefused("token revoked")
    now = utcnow()
    if found.last_used_at is None or now - found.last_used_at >= LAST_USED_RESOLUTION:
        found.last_used_at = now
    return found


# -- the dashboard's login and CSRF token ----------------------------------------------------

_LOGIN_KEY = "operator"
_SESSION_KEY = "sid"
_CSRF_KEY = "csrf"
#: A dashboard login lasts this long at most, even if the browser keeps its cookie.
SESSION_MAX_AGE = dt.timedelta(hours=12)
#: Throttle kinds of the login (see digest.web.throttle).
LOGIN_IP = "login-ip"
LOGIN_ALL = "login-all"


def _password_mark(password: str, secret: str) -> str:
    """A value tied to the current password, kept in the session: changing
    DIGEST_OPERATOR_PASSWORD logs out every session made with the old one."""
    return hmac.new(
        secret.encode("utf-8"), b"operator-login:" + password.encode("utf-8"), hashlib.sha256
    ).hexdigest()


def password_matches(given: str, expected: str) -> bool:
    # compare_digest on bytes: it takes any characters and does not stop at the first difference.
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def log_in(session: Session, password: str, secret: str, ip: str | None) -> None:
    """Start a fresh session for the operator: nothing carried over from before the login, and
    a new random id recorded server-side, so each login has its own id and logging out can
    end exactly this one."""
    sid = secrets.token_urlsafe(32)
    session.add(OperatorSession(token_hash=token_hash(sid), created_at=utcnow(), ip=ip))
    session.flush()
    web_session.clear()
    web_session[_LOGIN_KEY] = _password_mark(password, secret)
    web_session[_SESSION_KEY] = sid
    web_session[_CSRF_KEY] = secrets.token_urlsafe(32)
    web_session.permanent = False


def log_out(session: Session) -> None:
    """End this login server-side (a saved copy of the cookie stops working) and empty the
    cookie."""
    sid = web_session.get(_SESSION_KEY)
    if isinstance(sid, str):
        row = session.scalars(
            select(OperatorSession).where(OperatorSession.token_hash == token_hash(sid))
        ).first()
        if row is not None and row.ended_at is None:
            row.ended_at = utcnow()
    web_session.clear()


def logged_in(session: Session, password: str | None, secret: str) -> bool:
    """Whether the cookie belongs to a live login made with the current password."""
    mark = web_session.get(_LOGIN_KEY)
    sid = web_session.get(_SESSION_KEY)
    if not password or not isinstance(mark, str) or not isinstance(sid, str):
        return False
    if not hmac.compare_digest(mark.encode("ascii"), _password_mark(password, secret).encode()):
        return False
    row = session.scalars(
        select(OperatorSession).where(OperatorSession.token_hash == token_hash(sid))
    ).first()
    return row is not None and row.ended_at is None and utcnow() - row.created_at < SESSION_MAX_AGE


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
