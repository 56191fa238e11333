"""An editor's review before the send: lists.review, review_hours and unreviewed; the
editions' note and approval; review_events, the history of every change

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs (SQLite takes them in place): a batch would copy the lists table,
    # which the editions' foreign keys forbid once there are editions.
    op.add_column(
        "lists", sa.Column("review", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.add_column(
        "lists", sa.Column("review_hours", sa.Integer(), nullable=False, server_default="2")
    )
    op.add_column(
        "lists",
        sa.Column("unreviewed", sa.String(length=4), nullable=False, server_default="send"),
    )
    op.add_column("editions", sa.Column("note", sa.Text(), nullable=True))
    op.add_column("editions", sa.Column("approved_by", sa.String(length=200), nullable=True))
    op.add_column("editions", sa.Column("approved_at", sa.DateTime(), nullable=True))
    op.create_table(
        "review_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("edition_id", sa.Integer(), nullable=False),
        sa.Column("who", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["edition_id"], ["editions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_review_events_edition_id", "review_events", ["edition_id"])


def downgrade() -> None:
    op.drop_index("ix_review_events_edition_id", table_name="review_events")
    op.drop_table("review_events")
    with op.batch_alter_table("editions") as batch:
        batch.drop_column("approved_at")
        batch.drop_column("approved_by")
        batch.drop_column("note")
    with op.batch_alter_table("lists") as batch:
        batch.drop_column("unreviewed")
        batch.drop_column("review_hours")
        batch.drop_column("review")
