"""Job leases: a heartbeat for running jobs (issue 8).

Reserved for that change; it does nothing until the change lands, so the revision chain stays linear while the
stage-2 work proceeds in parallel.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
