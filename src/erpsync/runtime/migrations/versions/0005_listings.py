"""Stock and prices: values per SKU and marketplace (desired, sent, acknowledged, refused, held), the listings
feeds that carry them, FBA quantities and reconciliation results (issue 10).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UtcDateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "listing_state",
        sa.Column("sku", sa.String(64), primary_key=True),
        sa.Column("marketplace_id", sa.String(16), primary_key=True),
        sa.Column("item_id", sa.String(30)),
        sa.Column("desired", sa.JSON),
        sa.Column("desired_at", UtcDateTime),
        sa.Column("acked", sa.JSON),
        sa.Column("acked_at", UtcDateTime),
        sa.Column("sent", sa.JSON),
        sa.Column("feed_batch", sa.Integer),
        sa.Column("refused", sa.JSON),
        sa.Column("held", sa.JSON),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_listing_state_feed_batch", "listing_state", ["feed_batch"])
    op.create_table(
        "listing_feeds",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("marketplace_id", sa.String(16), nullable=False),
        sa.Column("feed_id", sa.String(32)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("messages", sa.JSON, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("submitted_at", UtcDateTime),
        sa.Column("status_since", UtcDateTime),
        sa.Column("finished_at", UtcDateTime),
        sa.Column("resubmits", sa.Integer, nullable=False),
        sa.Column("flagged", sa.Text),
        sa.Column("summary", sa.JSON),
    )
    op.create_index("ix_listing_feeds_feed_id", "listing_feeds", ["feed_id"])
    op.create_index("ix_listing_feeds_status", "listing_feeds", ["status"])
    op.create_table(
        "fba_levels",
        sa.Column("sku", sa.String(64), primary_key=True),
        sa.Column("marketplace_id", sa.String(16), primary_key=True),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("as_of", UtcDateTime, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
    )
    op.create_table(
        "reconciliations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("marketplace_id", sa.String(16), nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("result", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("reconciliations")
    op.drop_table("fba_levels")
    op.drop_index("ix_listing_feeds_status", "listing_feeds")
    op.drop_index("ix_listing_feeds_feed_id", "listing_feeds")
    op.drop_table("listing_feeds")
    op.drop_index("ix_listing_state_feed_batch", "listing_state")
    op.drop_table("listing_state")
