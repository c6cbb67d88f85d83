"""Settlements: postings per settlement-id and period, row detail (issue 11).

Reserved for that change; it does nothing until the change lands, so the revision chain stays linear while the
stage-2 work proceeds in parallel.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
