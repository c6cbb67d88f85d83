"""Job leases: a running job's lease, renewed by its worker's heartbeat, and the token of the message that owns
its identity key (issue 8).

An expired lease means the worker died: the job is re-queued with a new token, and a run whose token is no longer
the key's (a stale copy, a worker that lost its lease) changes nothing.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("job_keys", sa.Column("token", sa.String(32)))
    op.add_column("job_keys", sa.Column("leased_until", UTC))
    op.add_column("job_keys", sa.Column("leased_by", sa.String(128)))


def downgrade() -> None:
    with op.batch_alter_table("job_keys") as batch:
        batch.drop_column("leased_by")
        batch.drop_column("leased_until")
        batch.drop_column("token")
