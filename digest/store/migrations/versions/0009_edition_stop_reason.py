"""editions.stop_reason: why an edition stopped, as a value rather than an English prefix

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

#: (stop_reason, SQL LIKE pattern of the reasons written before this column existed).
_FROM_WORDS = (
    ("operator_pause", "paused by the operator"),
    ("refusals", "paused: % recipients refused in a row%"),
    ("transport_errors", "paused: % transport errors in a row%"),
    ("transport_error", "transport error: %"),
    ("cancelled", "cancelled by the operator"),
)


def upgrade() -> None:
    with op.batch_alter_table("editions") as batch:
        batch.add_column(
            sa.Column(
                "stop_reason",
                sa.Enum(
                    *(value for value, _ in _FROM_WORDS),
                    name="stopreason",
                    native_enum=False,
                    length=20,
                ),
                nullable=True,
            )
        )
    editions = sa.table(
        "editions", sa.column("stop_reason", sa.String), sa.column("status_reason", sa.Text)
    )
    for value, pattern in _FROM_WORDS:
        op.execute(
            editions.update()
            .where(editions.c.status_reason.like(pattern), editions.c.stop_reason.is_(None))
            .values(stop_reason=value)
        )


def downgrade() -> None:
    with op.batch_alter_table("editions") as batch:
        batch.drop_column("stop_reason")
