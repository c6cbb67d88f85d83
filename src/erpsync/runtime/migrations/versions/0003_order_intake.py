"""Order intake: the sync window's page position and dead-letter dedupe (issue 8).

Reserved for that change; it does nothing until the change lands, so the revision chain stays linear while the
stage-2 work proceeds in parallel.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
