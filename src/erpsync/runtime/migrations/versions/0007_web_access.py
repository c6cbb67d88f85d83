"""Web access: users, API tokens, login attempts (issue 12).

Reserved for that change; it does nothing until the change lands, so the revision chain stays linear while the
stage-2 work proceeds in parallel.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
