"""Stock and prices: acknowledged values per SKU and marketplace, feed tracking (issue 10).

Reserved for that change; it does nothing until the change lands, so the revision chain stays linear while the
stage-2 work proceeds in parallel.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
