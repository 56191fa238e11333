"""articles: their place in their feed when first stored, for ranking

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable and without a default: the articles already stored have no known place, and
    # ranking reads None as "not known", not as the top of a feed.
    with op.batch_alter_table("articles") as batch:
        batch.add_column(sa.Column("feed_position", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("articles") as batch:
        batch.drop_column("feed_position")
