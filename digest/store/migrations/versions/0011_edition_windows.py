"""editions.window_start/window_end/offered_ids: an edition offers what is new since the
list's previous one, not its calendar day

Revision ID: 0011
Revises: 0010
"""

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# SQLite adds a NOT NULL column only with a default; every row gets its real window at once.
_PLACEHOLDER = "1970-01-01 00:00:00"


def _calendar_day(day: dt.date, tz_name: str) -> tuple[dt.datetime, dt.datetime]:
    """The window an edition had before this revision: its local calendar day, naive UTC.

    Written out here rather than imported, so the migration keeps meaning what it meant
    whatever the application's code becomes.
    """
    try:
        tz: dt.tzinfo = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        tz = dt.UTC
    try:
        start = dt.datetime.combine(day, dt.time.min, tzinfo=tz)
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
        return (
            start.astimezone(dt.UTC).replace(tzinfo=None),
            end.astimezone(dt.UTC).replace(tzinfo=None),
        )
    except OverflowError:
        return dt.datetime.combine(day, dt.time.min), dt.datetime.combine(day, dt.time.max)


def upgrade() -> None:
    with op.batch_alter_table("editions", schema=None) as batch_op:
        for name in ("window_start", "window_end"):
            batch_op.add_column(
                sa.Column(name, sa.DateTime(), server_default=_PLACEHOLDER, nullable=False)
            )
        # NULL on the editions already stored: what they offered was their day's articles that
        # were in when they were built (first seen by created_at), and the next build leaves
        # exactly those out, so the rest of the last one's day goes in the next edition.
        batch_op.add_column(sa.Column("offered_ids", sa.JSON(), nullable=True))
    editions = sa.table(
        "editions",
        sa.column("id", sa.Integer()),
        sa.column("list_id", sa.Integer()),
        sa.column("edition_date", sa.Date()),
        sa.column("window_start", sa.DateTime()),
        sa.column("window_end", sa.DateTime()),
    )
    lists = sa.table("lists", sa.column("id", sa.Integer()), sa.column("timezone", sa.String()))
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(editions.c.id, editions.c.edition_date, lists.c.timezone).join(
            lists, lists.c.id == editions.c.list_id
        )
    ).all()
    windows = []
    for edition_id, day, tz_name in rows:
        start, end = _calendar_day(day, tz_name or "UTC")
        windows.append({"edition_id": edition_id, "start": start, "end": end})
    if windows:
        bind.execute(
            editions.update()
            .where(editions.c.id == sa.bindparam("edition_id"))
            .values(window_start=sa.bindparam("start"), window_end=sa.bindparam("end")),
            windows,
        )
    if bind.dialect.name != "sqlite":
        # Elsewhere the placeholder can go: every build sets the window.
        for name in ("window_start", "window_end"):
            op.alter_column("editions", name, server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("editions", schema=None) as batch_op:
        batch_op.drop_column("offered_ids")
        batch_op.drop_column("window_end")
        batch_op.drop_column("window_start")
