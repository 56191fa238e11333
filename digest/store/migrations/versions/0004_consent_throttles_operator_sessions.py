"""consent events, throttles, operator sessions

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 23:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consent_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("wording", sa.Text(), nullable=True),
        sa.Column("sections", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["list_id"], ["lists.id"]),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_consent_events_subscriber", "consent_events", ["subscriber_id", "id"], unique=False
    )
    op.create_table(
        "throttles",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.DateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key_hash"),
    )
    op.create_index(op.f("ix_throttles_window_start"), "throttles", ["window_start"], unique=False)
    op.create_table(
        "operator_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    # Sign-ups made before this table existed keep their consent as one event each, so the
    # history starts complete.
    op.execute(
        "INSERT INTO consent_events (subscriber_id, list_id, action, at, ip, source, wording,"
        " sections) SELECT subscriber_id, list_id, 'signup', created_at, consent_ip, source,"
        " consent_text, sections FROM subscriptions WHERE consent_text IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_table("operator_sessions")
    op.drop_index(op.f("ix_throttles_window_start"), table_name="throttles")
    op.drop_table("throttles")
    op.drop_index("ix_consent_events_subscriber", table_name="consent_events")
    op.drop_table("consent_events")
