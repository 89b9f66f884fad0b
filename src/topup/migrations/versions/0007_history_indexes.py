"""Indexes so that what runs per order or per scrape does not grow with a year of finished orders:
open orders, pending attempts and retried notifications (partial indexes that hold only those rows),
notifications by status and age, callbacks by arrival time (the last hour's callback delays, and
retention) and events by age (retention).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# (name, table, columns, partial condition or None): the same on PostgreSQL and SQLite.
INDEXES = [
    ("ix_orders_open_status", "orders", ["status", "business_type"], "completed_at IS NULL"),
    ("ix_attempts_pending_channel", "attempts", ["channel_code"], "status = 'pending'"),
    ("ix_deliveries_status_created", "deliveries", ["status", "created_at"], None),
    ("ix_deliveries_retried", "deliveries", ["tries"], "tries > 1"),
    ("ix_callbacks_received_at", "callbacks", ["received_at"], None),
    # Retention (services/retention.py) finds old events by age.
    ("ix_events_created_at", "events", ["created_at"], None),
]


def upgrade() -> None:
    for name, table, columns, where in INDEXES:
        if where is None:
            op.create_index(name, table, columns, unique=False)
        else:
            op.create_index(
                name,
                table,
                columns,
                unique=False,
                postgresql_where=sa.text(where),
                sqlite_where=sa.text(where),
            )


def downgrade() -> None:
    for name, table, _columns, _where in reversed(INDEXES):
        op.drop_index(name, table_name=table)
