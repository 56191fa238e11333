"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from digest.store.db import Database
from digest.store.models import Base


def test_migrated_schema_matches_models(db: Database) -> None:
    """After `upgrade()` autogenerate finds nothing to add, drop or alter."""
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_upgrade_twice_is_harmless(db: Database) -> None:
    """`digest init` on a current database changes nothing and reports it current."""
    db.upgrade()
    assert db.is_current()
