"""Money with suppliers (SPEC section 8): the charge a supplier reports on an attempt, supplier
statements and their discrepancies, and the indexes the reports and reconciliation read by.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("cost", sa.BigInteger(), nullable=True))
    # Attempts stored before dispatch times were kept: their period is when they started.
    op.execute("UPDATE attempts SET dispatched_at = started_at WHERE dispatched_at IS NULL")
    op.create_index("ix_attempts_channel_dispatched", "attempts", ["channel_code", "dispatched_at"])
    op.create_index("ix_transfers_kind_created", "transfers", ["kind", "created_at"])
    op.create_index("ix_orders_status_completed", "orders", ["status", "completed_at"])
    op.create_table(
        "statements",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("channel_code", sa.String(64), nullable=False),
        sa.Column("period_from", sa.Float(), nullable=False),
        sa.Column("period_to", sa.Float(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("format", sa.String(32), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("matched", sa.Integer(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.UniqueConstraint("channel_code", "period_from", "period_to", "digest", name="uq_statements_file"),
    )
    op.create_index("ix_statements_channel_created", "statements", ["channel_code", "created_at"])
    op.create_table(
        "statement_discrepancies",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("statement_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("supplier_ref", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("ours", sa.JSON(), nullable=True),
        sa.Column("theirs", sa.JSON(), nullable=True),
        sa.Column("at_stake", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("statement_id", "seq", name="uq_statement_discrepancies_seq"),
    )


def downgrade() -> None:
    op.drop_table("statement_discrepancies")
    op.drop_index("ix_statements_channel_created", table_name="statements")
    op.drop_table("statements")
    op.drop_index("ix_orders_status_completed", table_name="orders")
    op.drop_index("ix_transfers_kind_created", table_name="transfers")
    op.drop_index("ix_attempts_channel_dispatched", table_name="attempts")
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("cost")
