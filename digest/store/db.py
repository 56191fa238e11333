"""Engine and session creation, and schema migrations (Alembic)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, inspect, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.errors import ConfigError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def behind_pgbouncer(url: str | URL) -> bool:
    """Whether the URL says (``?pgbouncer=1``) that it reaches PostgreSQL through a PgBouncer in
    transaction mode, where each transaction may run on a different server connection."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError as exc:
        raise ConfigError(f"DIGEST_DATABASE_URL: {exc}") from exc
    flag = parsed.query.get("pgbouncer", "")
    return (flag if isinstance(flag, str) else flag[-1]).lower() in ("1", "true", "yes", "on")


def engine_options(url: str) -> tuple[URL, dict[str, Any]]:
    """The URL to connect to and the engine's options for it.

    Behind PgBouncer (transaction pooling) psycopg must not prepare statements on the server:
    a statement prepared in one transaction's server connection is unknown in the next one's.
    Nothing else Digest does lasts beyond a transaction (no session SET: outcomes use SET
    LOCAL; no advisory locks, no LISTEN), so that is the only change.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"DIGEST_DATABASE_URL: {exc}") from exc
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
    if behind_pgbouncer(parsed):
        if parsed.get_backend_name() != "postgresql":
            raise ConfigError("DIGEST_DATABASE_URL: pgbouncer=1 is for PostgreSQL URLs")
        parsed = parsed.difference_update_query(["pgbouncer"])
        kwargs["connect_args"] = {"prepare_threshold": None}
    return parsed, kwargs


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL and a busy timeout so workers and readers coexist."""
    target, kwargs = engine_options(url)
    try:
        engine = create_engine(target, **kwargs)
    except Exception as exc:  # bad URL or missing driver
        raise ConfigError(f"DIGEST_DATABASE_URL: {exc}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # NORMAL keeps commits cheap in WAL mode; a power cut may lose the last
    # commits but never corrupts, and a lost "sent" mark only means a resend.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Database:
    """One engine and its session factory for a Settings' database URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(settings.database_url)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with self.sessionmaker() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def upgrade(self) -> None:
        """Create or upgrade the schema to the newest migration."""
        from alembic import command

        try:
            command.upgrade(self._alembic_config(), "head")
        except OperationalError as exc:
            raise ConfigError(f"cannot reach the database: {exc.orig}") from exc

    def is_current(self) -> bool:
        """Whether the schema exists and is at the newest migration."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(self._alembic_config()).get_current_head()
        with self.engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return False
            return MigrationContext.configure(conn).get_current_revision() == head

    def _alembic_config(self) -> Any:
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["engine"] = self.engine
        return config

    def dispose(self) -> None:
        self.engine.dispose()
