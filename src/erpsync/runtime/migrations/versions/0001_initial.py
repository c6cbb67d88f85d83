"""State store: inbox, order journal, cursors, dead letters, job keys, shipment confirmations, audit.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "inbox",
        sa.Column("notification_id", sa.String(128), primary_key=True),
        sa.Column("notification_type", sa.String(64)),
        sa.Column("amazon_order_id", sa.String(32)),
        sa.Column("received_at", UTC, nullable=False),
        sa.Column("payload", sa.JSON),
    )
    op.create_index("ix_inbox_amazon_order_id", "inbox", ["amazon_order_id"])
    op.create_table(
        "order_journal",
        sa.Column("amazon_order_id", sa.String(32), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("so_key", sa.Integer),
        sa.Column("tran_no", sa.String(10)),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.Column("last_error", sa.Text),
    )
    op.create_index("ix_order_journal_status", "order_journal", ["status"])
    op.create_table(
        "cursors",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job", sa.String(128), nullable=False),
        sa.Column("queue", sa.String(32), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("error_class", sa.String(128), nullable=False),
        sa.Column("error_code", sa.String(64), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("record", sa.String(128)),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("first_failed_at", UTC, nullable=False),
        sa.Column("last_failed_at", UTC, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("replay_of", sa.Integer, sa.ForeignKey("dead_letters.id")),
        sa.Column("replay_result", sa.Text),
    )
    op.create_index("ix_dead_letters_key", "dead_letters", ["key"])
    op.create_index("ix_dead_letters_status", "dead_letters", ["status"])
    op.create_table(
        "job_keys",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("job", sa.String(128), nullable=False),
        sa.Column("queue", sa.String(32), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("due_at", UTC, nullable=False),
        sa.Column("last_error", sa.Text),
    )
    op.create_table(
        "shipment_confirmations",
        sa.Column("ship_key", sa.Integer, primary_key=True),
        sa.Column("package_no", sa.Integer, primary_key=True),
        sa.Column("amazon_order_id", sa.String(32), nullable=False),
        sa.Column("confirmed_at", UTC, nullable=False),
    )
    op.create_index("ix_shipment_confirmations_amazon_order_id", "shipment_confirmations", ["amazon_order_id"])
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    op.create_index("ix_audit_event", "audit", ["event"])


def downgrade() -> None:
    for table in ("audit", "shipment_confirmations", "job_keys", "dead_letters", "cursors", "order_journal",
                  "inbox"):
        op.drop_table(table)
