"""Supplier protocols (SPEC section 6): sealed credentials, products and options per channel, the
supplier ref of every attempt, and the history of balance checks.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("channels") as batch:
        batch.add_column(sa.Column("credentials", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("products", sa.JSON(), nullable=False, server_default="{}"))
        batch.add_column(sa.Column("options", sa.JSON(), nullable=False, server_default="{}"))
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("supplier_ref", sa.String(80), nullable=True))
    # topup-json attempts made before this revision: the supplier saw their `ref`.
    op.execute("UPDATE attempts SET supplier_ref = ref WHERE supplier_ref IS NULL")
    op.create_index(
        "ux_attempts_channel_supplier_ref", "attempts", ["channel_code", "supplier_ref"], unique=True
    )
    op.create_table(
        "channel_balances",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("channel_code", sa.String(64), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(8), nullable=True),
        sa.Column("error", sa.String(500), nullable=True),
        sa.Column("checked_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_channel_balances_channel_at", "channel_balances", ["channel_code", "checked_at"])


def downgrade() -> None:
    op.drop_index("ix_channel_balances_channel_at", table_name="channel_balances")
    op.drop_table("channel_balances")
    op.drop_index("ux_attempts_channel_supplier_ref", table_name="attempts")
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("supplier_ref")
    with op.batch_alter_table("channels") as batch:
        batch.drop_column("options")
        batch.drop_column("products")
        batch.drop_column("credentials")
