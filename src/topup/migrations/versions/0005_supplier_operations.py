"""Supplier operations (SPEC section 7): the order's region, member coverage by carrier and region,
channel balance floors, check intervals, rate limits and pauses, and the rate-limit slots.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("region", sa.String(8), nullable=True))
    with op.batch_alter_table("group_members") as batch:
        batch.add_column(sa.Column("carriers", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("regions", sa.JSON(), nullable=True))
    with op.batch_alter_table("channels") as batch:
        batch.add_column(sa.Column("min_balance", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("balance_check_s", sa.Float(), nullable=False, server_default="300"))
        batch.add_column(sa.Column("rate_limit_per_s", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("paused", sa.String(32), nullable=True))
        batch.add_column(sa.Column("paused_at", sa.Float(), nullable=True))
    op.create_table(
        "channel_rate_slots",
        sa.Column("channel_code", sa.String(64), primary_key=True),
        sa.Column("slot", sa.Integer(), primary_key=True),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("started", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("channel_rate_slots")
    with op.batch_alter_table("channels") as batch:
        for name in ("paused_at", "paused", "rate_limit_per_s", "balance_check_s", "min_balance"):
            batch.drop_column(name)
    with op.batch_alter_table("group_members") as batch:
        batch.drop_column("regions")
        batch.drop_column("carriers")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("region")
