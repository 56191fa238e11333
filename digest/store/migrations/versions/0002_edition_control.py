"""edition control: error streaks and last claim time

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("editions") as batch:
        batch.add_column(
            sa.Column("transport_error_streak", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("refusal_streak", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("last_claim_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("editions") as batch:
        batch.drop_column("last_claim_at")
        batch.drop_column("refusal_streak")
        batch.drop_column("transport_error_streak")
