"""Who may operate Digest from outside a shell: API bearer tokens, and the dashboard's logins
(the password check behind a lockout, and the server-side session each login starts).

API tokens are random strings shown once; only their SHA-256 is stored, so a copy of the
database does not hand out working tokens. A dashboard login is a random session id whose
hash is stored here; logging out ends the row, so a copy of the cookie taken earlier stops
working. The cookie itself is the web face's business.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.errors import InputError, NotFoundError
from digest.ingest.text import one_line
from digest.service import throttle
from digest.service.users import BUILTIN_OPERATOR, UserView, verify_password
from digest.store.db import Database
from digest.store.models import ApiToken, OperatorSession, User, utcnow

__all__ = [
    "SESSION_MAX_AGE",
    "TOKEN_PREFIX",
    "Access",
    "Login",
    "TokenRefused",
    "TokenView",
    "token_hash",
]

#: Tokens start with this, so one pasted into the wrong place (a log, a chat) is recognisable.
TOKEN_PREFIX = "dgt_"
#: last_used_at is rewritten at most this often: a busy client must not turn every read into
#: a write (on SQLite that would queue behind a running send's commits).
LAST_USED_RESOLUTION = dt.timedelta(seconds=60)
#: A dashboard login lasts this long at most, even if the browser keeps its cookie.
SESSION_MAX_AGE = dt.timedelta(hours=12)
#: Throttle kinds of the login (see digest.service.throttle).
LOGIN_IP = "login-ip"
LOGIN_ALL = "login-all"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenRefused(InputError):
    """A bearer token that does not authenticate; the message says why, without secrets."""


@dataclass(frozen=True)
class TokenView:
    id: int
    name: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None

    @classmethod
    def of(cls, row: ApiToken) -> TokenView:
        return cls(row.id, row.name, row.created_at, row.last_used_at, row.revoked_at)


@dataclass(frozen=True)
class Login:
    """What a sign-in attempt came to: a new session id, or why not (and for how long)."""

    session_id: str | None = None
    #: Seconds until sign-in may be tried again (0: the password was simply wrong).
    locked_for: int = 0
    #: Who signed in (None when nobody did).
    user: UserView | None = None

    @property
    def ok(self) -> bool:
        return self.session_id is not None


def password_matches(given: str, expected: str) -> bool:
    # compare_digest on bytes: it takes any characters and does not stop at the first difference.
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


class Access:
    def __init__(self, settings: Settings, database: Callable[[], Database]) -> None:
        self.settings = settings
        self._database = database

    # -- API tokens -----------------------------------------------------------------------
    def create_token(self, name: str) -> tuple[TokenView, str]:
        """A new token named ``name``; returns its record and the token itself (never stored)."""
        label = one_line(name, 200)
        if not label:
            raise InputError("a token needs a name (who or what uses it)")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._database().session() as session:
            row = ApiToken(name=label, token_hash=token_hash(token), created_at=utcnow())
            session.add(row)
            session.flush()
            return TokenView.of(row), token

    def tokens(self) -> list[TokenView]:
        with self._database().session() as session:
            rows = session.scalars(select(ApiToken).order_by(ApiToken.id))
            return [TokenView.of(row) for row in rows]

    def revoke_token(self, token_id: int) -> TokenView:
        with self._database().session() as session:
            row = session.get(ApiToken, token_id)
            if row is None:
                raise NotFoundError("token", token_id)
            if row.revoked_at is None:
                row.revoked_at = utcnow()
            return TokenView.of(row)

    def check_token(self, token: str) -> TokenView:
        """The live token ``token`` is, or TokenRefused."""
        wanted = token_hash(token).encode("ascii")
        with self._database().session() as session:
            found: ApiToken | None = None
            # Every stored hash is compared in constant time, and the loop does not stop at a
            # match, so the time taken says nothing about how close a guess came. Operators
            # have a handful of tokens, so reading them all costs nothing.
            for row in session.scalars(select(ApiToken)):
                if hmac.compare_digest(row.token_hash.encode("ascii"), wanted):
                    found = row
            if found is None:
                raise TokenRefused("unknown token")
            if found.revoked_at is not None:
                raise TokenRefused("token revoked")
            now = utcnow()
            if found.last_used_at is None or now - found.last_used_at >= LAST_USED_RESOLUTION:
                found.last_used_at = now
            return TokenView.of(found)

    # -- dashboard logins -----------------------------------------------------------------
    def log_in(self, given_password: str, ip: str | None, user_name: str = "") -> Login:
        """Check a user's password (or, with no user name or the name ``operator`` that no
        user has, the built-in operator password) behind the lockout and, if right, start a
        session.

        Each attempt takes a slot (per client IP and overall) before the password is even
        compared, so parallel guesses cannot outrun the count; a right password gives its
        slots back.
        """
        settings = self.settings
        window = dt.timedelta(seconds=settings.login_lockout_seconds)
        client = ip or "unknown"
        with self._database().session() as session:
            mine = throttle.take(session, LOGIN_IP, client, settings.login_attempts_per_ip, window)
            everyone = (
                throttle.take(session, LOGIN_ALL, "", settings.login_attempts_overall, window)
                if mine.allowed
                else mine
            )
            if not everyone.allowed:
                if mine.allowed:
                    throttle.give_back(session, LOGIN_IP, client)
                return Login(locked_for=max(mine.retry_after, everyone.retry_after))
            who = self._check_password(session, user_name.strip(), given_password)
            if who is None:
                return Login()
            throttle.give_back(session, LOGIN_IP, client)
            throttle.give_back(session, LOGIN_ALL, "")
            session_id = secrets.token_urlsafe(32)
            session.add(
                OperatorSession(
                    token_hash=token_hash(session_id), created_at=utcnow(), ip=ip, user_id=who.id
                )
            )
            return Login(session_id=session_id, user=who)

    def _check_password(self, session: Session, name: str, given: str) -> UserView | None:
        row = session.scalars(select(User).where(User.name == name[:100])).first() if name else None
        if row is not None:
            if row.disabled_at is None and verify_password(given, row.password_hash):
                return UserView.of(row)
            return None
        if name not in ("", BUILTIN_OPERATOR.name):
            return None
        expected = self.settings.operator_password or ""
        if expected and password_matches(given, expected):
            return BUILTIN_OPERATOR
        return None

    def logins_possible(self) -> bool:
        """Whether anyone can sign in: an operator password is set or a user is enabled."""
        if self.settings.operator_password:
            return True
        with self._database().session() as session:
            found = session.scalars(select(User.id).where(User.disabled_at.is_(None))).first()
            return found is not None

    def log_out(self, session_id: str) -> None:
        """End a login server-side: a saved copy of its cookie stops working."""
        with self._database().session() as session:
            row = self._operator_session(session, session_id)
            if row is not None and row.ended_at is None:
                row.ended_at = utcnow()

    def session_is_live(self, session_id: str) -> bool:
        """Whether ``session_id`` is a login not ended and not older than SESSION_MAX_AGE."""
        return self.session_user(session_id) is not None

    def session_user(self, session_id: str) -> UserView | None:
        """Who the live login ``session_id`` belongs to, with their role as it is now; None for
        a login that ended, is older than SESSION_MAX_AGE, or whose user is disabled."""
        with self._database().session() as session:
            row = self._operator_session(session, session_id)
            if row is None or row.ended_at is not None:
                return None
            if utcnow() - row.created_at >= SESSION_MAX_AGE:
                return None
            if row.user_id is None:
                return BUILTIN_OPERATOR
            user = session.get(User, row.user_id)
            if user is None or user.disabled_at is not None:
                return None
            return UserView.of(user)

    @staticmethod
    def _operator_session(session: Session, session_id: str) -> OperatorSession | None:
        return session.scalars(
            select(OperatorSession).where(OperatorSession.token_hash == token_hash(session_id))
        ).first()
