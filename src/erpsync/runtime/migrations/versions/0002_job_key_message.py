"""job_keys.message: the queued message of a pending key, so a message lost with a killed worker can be re-queued.

Revision ID: 0002
Revises: 0001
Create Date: 2026-01-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("job_keys", sa.Column("message", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("job_keys") as batch:
        batch.drop_column("message")
