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


def test_stop_reasons_are_read_from_the_words_older_editions_carry(db_url: str) -> None:
    """Upgrading past 0009 gives editions stopped before it their reason as a value, read from
    the English prefix they were stored with; other reasons stay unset."""
    from alembic import command
    from sqlalchemy import text

    database = Database(db_url)
    config = database._alembic_config()
    command.upgrade(config, "0008")
    words = {
        1: "paused by the operator",
        2: "paused: 50 recipients refused in a row",
        3: "paused: 5 transport errors in a row; last: connection refused",
        4: "transport error: connection refused",
        5: "cancelled by the operator",
        6: None,
    }
    with database.engine.begin() as conn:
        conn.execute(text("INSERT INTO lists (id, slug, name, timezone, send_at, per_section, "
                          "language, enabled, public, order_sections_by_clicks, created_at) "
                          "VALUES (1, 'l', 'L', 'UTC', '07:00', 5, 'en', true, true, false, "
                          "CURRENT_TIMESTAMP)"))  # fmt: skip
        for number, reason in words.items():
            conn.execute(
                text(
                    "INSERT INTO editions (id, list_id, edition_date, status, subject, preheader, "
                    "content, status_reason, transport_error_streak, refusal_streak, created_at) "
                    "VALUES (:id, 1, :day, 'paused', '', '', '[]', :reason, 0, 0, "
                    "CURRENT_TIMESTAMP)"
                ),
                {"id": number, "day": f"2026-01-0{number}", "reason": reason},
            )
    command.upgrade(config, "head")
    with database.engine.connect() as conn:
        found = dict(conn.execute(text("SELECT id, stop_reason FROM editions")).all())
    database.dispose()
    assert found == {
        1: "operator_pause",
        2: "refusals",
        3: "transport_errors",
        4: "transport_error",
        5: "cancelled",
        6: None,
    }
