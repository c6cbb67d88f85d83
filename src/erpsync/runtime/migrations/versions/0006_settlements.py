"""Settlements: postings per settlement-id and period, row detail (issue 11).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "settlements",
        sa.Column("settlement_id", sa.String(64), primary_key=True),
        sa.Column("report_id", sa.String(64)),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("total_amount", sa.String(32), nullable=False),
        sa.Column("start_date", UTC, nullable=False),
        sa.Column("end_date", UTC, nullable=False),
        sa.Column("deposit_date", UTC),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("batches", sa.JSON),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
    )
    op.create_index("ix_settlements_status", "settlements", ["status"])
    op.create_table(
        "settlement_rows",
        sa.Column("settlement_id", sa.String(64), sa.ForeignKey("settlements.settlement_id"), primary_key=True),
        sa.Column("line_no", sa.Integer, primary_key=True),
        sa.Column("posted_date", sa.Date, nullable=False),
        sa.Column("transaction_type", sa.String(64), nullable=False),
        sa.Column("amount_type", sa.String(64), nullable=False),
        sa.Column("amount_description", sa.String(128), nullable=False),
        sa.Column("amount", sa.String(32), nullable=False),
        sa.Column("order_id", sa.String(64)),
        sa.Column("fulfillment_id", sa.String(8)),
        sa.Column("sku", sa.String(64)),
        sa.Column("account", sa.String(100), nullable=False),
        sa.Column("rule", sa.String(16), nullable=False),
    )
    op.create_index("ix_settlement_rows_order_id", "settlement_rows", ["order_id"])


def downgrade() -> None:
    op.drop_index("ix_settlement_rows_order_id", "settlement_rows")
    op.drop_table("settlement_rows")
    op.drop_index("ix_settlements_status", "settlements")
    op.drop_table("settlements")
