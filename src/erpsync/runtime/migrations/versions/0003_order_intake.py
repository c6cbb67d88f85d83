"""Order intake: notified orders waiting for the newest-first reader (issue 8). The sync window's page position
lives in the cursors table (JSON), which needs no schema change.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "order_notified",
        sa.Column("amazon_order_id", sa.String(32), primary_key=True),
        sa.Column("status", sa.String(32)),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_order_notified_notified_at", "order_notified", ["notified_at"])


def downgrade() -> None:
    op.drop_index("ix_order_notified_notified_at", table_name="order_notified")
    op.drop_table("order_notified")
