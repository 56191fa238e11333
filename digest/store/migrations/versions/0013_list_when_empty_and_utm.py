"""lists.when_empty and lists.utm: what a reader whose sections have nothing gets, and the
publisher's tracking tags on article links

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lists") as batch:
        batch.add_column(
            sa.Column("when_empty", sa.String(length=8), nullable=False, server_default="skip")
        )
        batch.add_column(sa.Column("utm", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lists") as batch:
        batch.drop_column("utm")
        batch.drop_column("when_empty")
