"""The dashboard's named users: each a login with a password hash and a role.

Roles are ranked: a viewer reads the overview and the stats, an editor also previews, sends,
pauses, resumes, cancels and reviews, an operator does everything (manages sections, sources,
lists, subscribers and suppressions). Passwords are stored as salted scrypt hashes
(``hashlib.scrypt``, no extra dependency); changing a user's role, password or state ends their
sessions' power at once, because every request reads the role from the user's row.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from digest.errors import InputError, NotFoundError
from digest.store.db import Database
from digest.store.models import OperatorSession, User, utcnow

__all__ = [
    "BUILTIN_NAME",
    "ROLES",
    "UserView",
    "Users",
    "hash_password",
    "role_allows",
    "verify_password",
]

#: From the least to the most allowed.
ROLES = ("viewer", "editor", "operator")
#: The name shown for a login with DIGEST_OPERATOR_PASSWORD (no row in ``users``).
BUILTIN_NAME = "operator"
#: scrypt's cost: 16 MiB and ~50 ms a check, enough to make a stolen table slow to guess.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024


def role_allows(role: str, needed: str) -> bool:
    """Whether ``role`` may do what ``needed`` may (roles are ranked)."""
    if role not in ROLES or needed not in ROLES:
        return False
    return ROLES.index(role) >= ROLES.index(needed)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash``: the parameters travel with the hash, so they can grow."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, expected = stored.split("$")
        if kind != "scrypt":
            return False
        digest = hashlib.scrypt(
            password.encode("utf-8"),
            salt=_unb64(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=32,
            maxmem=64 * 1024 * 1024,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, _unb64(expected))


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise InputError(
            "a user name is 1 to 100 letters, digits or . _ @ + - (starting with a letter or digit)"
        )
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InputError(f"the role must be one of {', '.join(ROLES)}, not {role!r}")
    return role


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InputError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InputError(f"a password has at most {MAX_PASSWORD} characters")
    return password


@dataclass(frozen=True)
class UserView:
    """Who is signed in (or listed): a name and a role. ``id`` None: the built-in operator."""

    id: int | None
    name: str
    role: str
    created_at: dt.datetime | None = None
    disabled_at: dt.datetime | None = None

    @property
    def builtin(self) -> bool:
        return self.id is None

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None

    def may(self, needed: str) -> bool:
        """Whether this user's role allows what ``needed`` allows."""
        return not self.disabled and role_allows(self.role, needed)

    @classmethod
    def of(cls, row: User) -> UserView:
        return cls(row.id, row.name, row.role, row.created_at, row.disabled_at)


BUILTIN_OPERATOR = UserView(None, BUILTIN_NAME, "operator")


class Users:
    """Add, list, change and remove the dashboard's users."""

    def __init__(self, database: Callable[[], Database]) -> None:
        self._database = database

    def add(self, name: str, password: str, role: str) -> UserView:
        check_name(name)
        check_role(role)
        check_password(password)
        with self._database().session() as session:
            if session.scalars(select(User).where(User.name == name)).first() is not None:
                raise InputError(f"a user named {name} already exists")
            row = User(
                name=name, password_hash=hash_password(password), role=role, created_at=utcnow()
            )
            session.add(row)
            session.flush()
            return UserView.of(row)

    def all(self) -> list[UserView]:
        with self._database().session() as session:
            return [UserView.of(row) for row in session.scalars(select(User).order_by(User.name))]

    def get(self, name: str) -> UserView:
        with self._database().session() as session:
            return UserView.of(self._row(session, name))

    def set_role(self, name: str, role: str) -> UserView:
        check_role(role)
        with self._database().session() as session:
            row = self._row(session, name)
            row.role = role
            return UserView.of(row)

    def set_password(self, name: str, password: str) -> UserView:
        check_password(password)
        with self._database().session() as session:
            row = self._row(session, name)
            row.password_hash = hash_password(password)
            self._end_sessions(session, row.id)
            return UserView.of(row)

    def disable(self, name: str) -> UserView:
        """The user can no longer sign in, and their open sessions end now."""
        with self._database().session() as session:
            row = self._row(session, name)
            if row.disabled_at is None:
                row.disabled_at = utcnow()
            self._end_sessions(session, row.id)
            return UserView.of(row)

    def enable(self, name: str) -> UserView:
        with self._database().session() as session:
            row = self._row(session, name)
            row.disabled_at = None
            return UserView.of(row)

    def remove(self, name: str) -> UserView:
        with self._database().session() as session:
            row = self._row(session, name)
            view = UserView.of(row)
            session.execute(
                update(OperatorSession)
                .where(OperatorSession.user_id == row.id)
                .values(user_id=None, ended_at=utcnow())
            )
            session.delete(row)
            return view

    @staticmethod
    def _end_sessions(session: Session, user_id: int) -> None:
        session.execute(
            update(OperatorSession)
            .where(OperatorSession.user_id == user_id, OperatorSession.ended_at.is_(None))
            .values(ended_at=utcnow())
        )

    @staticmethod
    def _row(session: Session, name: str) -> User:
        check_name(name)  # one clear line for a name no user can have (empty, control chars)
        found = session.scalars(select(User).where(User.name == name)).first()
        if found is None:
            raise NotFoundError("user", name)
        return found
