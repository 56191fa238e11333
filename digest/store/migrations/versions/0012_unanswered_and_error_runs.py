"""deliveries.unanswered and editions.transport_errors_since: a message the relay may have
taken without answering is recorded, and a run of transport failures has a start

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("unanswered", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("editions") as batch:
        batch.add_column(sa.Column("transport_errors_since", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("editions") as batch:
        batch.drop_column("transport_errors_since")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("unanswered")
