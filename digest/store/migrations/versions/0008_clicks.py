"""clicks and opens; lists ordered by click-through

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clicks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("is_scanner", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["articles.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["delivery_id"], ["deliveries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_clicks_delivery_at", "clicks", ["delivery_id", "at"])
    op.create_index("ix_clicks_article_id", "clicks", ["article_id"])
    op.create_index("ix_clicks_at", "clicks", ["at"])
    with op.batch_alter_table("lists") as batch:
        batch.add_column(
            sa.Column(
                "order_sections_by_clicks", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("lists") as batch:
        batch.drop_column("order_sections_by_clicks")
    op.drop_index("ix_clicks_at", table_name="clicks")
    op.drop_index("ix_clicks_article_id", table_name="clicks")
    op.drop_index("ix_clicks_delivery_at", table_name="clicks")
    op.drop_table("clicks")
