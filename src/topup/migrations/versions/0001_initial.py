"""Initial schema: catalog, routing, orders and attempts, ledger, jobs, outbox, batches and payments.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "attempts",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("no", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=80), nullable=False),
        sa.Column("channel_code", sa.String(length=64), nullable=False),
        sa.Column("group_code", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("supplier_order_id", sa.String(length=200), nullable=True),
        sa.Column("dispatch_state", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("dispatched_at", sa.Float(), nullable=True),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("deadline_at", sa.Float(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_id", "no", name="uq_attempts_order_no"),
        sa.UniqueConstraint("ref"),
    )
    op.create_index("ix_attempts_channel_finished", "attempts", ["channel_code", "finished_at"], unique=False)
    op.create_table(
        "batches",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("merchant_id", sa.String(length=64), nullable=False),
        sa.Column("merchant_batch_id", sa.String(length=64), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("total_rows", sa.Integer(), nullable=False),
        sa.Column("valid_rows", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("notify_url", sa.String(length=2000), nullable=True),
        sa.Column("payment_id", sa.String(length=64), nullable=True),
        sa.Column("rows", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("completed_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("merchant_id", "merchant_batch_id", name="uq_batches_merchant_batch"),
    )
    op.create_table(
        "callbacks",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("channel_code", sa.String(length=64), nullable=False),
        sa.Column("ref", sa.String(length=80), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("supplier_order_id", sa.String(length=200), nullable=True),
        sa.Column("code", sa.String(length=200), nullable=True),
        sa.Column("message", sa.String(length=1000), nullable=True),
        sa.Column("outcome", sa.String(length=48), nullable=True),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel_code", "ref", "status", name="uq_callbacks_channel_ref_status"),
    )
    op.create_table(
        "channels",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("protocol", sa.String(length=32), nullable=False),
        sa.Column("base_url", sa.String(length=2000), nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=False),
        sa.Column("timeout_s", sa.Float(), nullable=False),
        sa.Column("max_wait_s", sa.Float(), nullable=False),
        sa.Column("supports_query", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "deliveries",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("merchant_id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("next_at", sa.Float(), nullable=True),
        sa.Column("delivered_at", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index(op.f("ix_deliveries_order_id"), "deliveries", ["order_id"], unique=False)
    op.create_table(
        "delivery_attempts",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("error", sa.String(length=1000), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_delivery_attempts_event_id"), "delivery_attempts", ["event_id"], unique=False)
    op.create_table(
        "events",
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("merchant_id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=48), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("id"),
    )
    op.create_index("ix_events_merchant_seq", "events", ["merchant_id", "seq"], unique=False)
    op.create_table(
        "exceptions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=48), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("ref", sa.String(length=80), nullable=True),
        sa.Column("channel_code", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("resolved_at", sa.Float(), nullable=True),
        sa.Column("resolved_by", sa.String(length=200), nullable=True),
        sa.Column("resolution_note", sa.String(length=2000), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "ref", name="uq_exceptions_kind_ref"),
    )
    op.create_index(op.f("ix_exceptions_order_id"), "exceptions", ["order_id"], unique=False)
    op.create_table(
        "group_switches",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("group_code", sa.String(length=64), nullable=False),
        sa.Column("from_channel", sa.String(length=64), nullable=True),
        sa.Column("to_channel", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_group_switches_at"), "group_switches", ["at"], unique=False)
    op.create_index(op.f("ix_group_switches_group_code"), "group_switches", ["group_code"], unique=False)
    op.create_table(
        "groups",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("business_type", sa.String(length=32), nullable=False),
        sa.Column("brand", sa.String(length=64), nullable=True),
        sa.Column("strategy", sa.String(length=32), nullable=False),
        sa.Column("sticky", sa.Boolean(), nullable=False),
        sa.Column("recovery_s", sa.Float(), nullable=False),
        sa.Column("active_channel", sa.String(length=64), nullable=True),
        sa.Column("switched_at", sa.Float(), nullable=True),
        sa.Column("probe_order_id", sa.String(length=64), nullable=True),
        sa.Column("probe_until", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "jobs",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("run_at", sa.Float(), nullable=False),
        sa.Column("locked_until", sa.Float(), nullable=True),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_jobs_run_at", "jobs", ["run_at"], unique=False)
    op.create_table(
        "ledger_accounts",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("merchant_id", sa.String(length=64), nullable=True),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_ledger_accounts_merchant_id"), "ledger_accounts", ["merchant_id"], unique=False)
    op.create_table(
        "merchants",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("notify_url", sa.String(length=2000), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "operators",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "order_events",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("attempt_no", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=48), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_order_events_order_id"), "order_events", ["order_id"], unique=False)
    op.create_table(
        "orders",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("merchant_id", sa.String(length=64), nullable=False),
        sa.Column("merchant_order_id", sa.String(length=64), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("batch_id", sa.String(length=64), nullable=True),
        sa.Column("business_type", sa.String(length=32), nullable=False),
        sa.Column("product_code", sa.String(length=64), nullable=False),
        sa.Column("account", sa.String(length=254), nullable=False),
        sa.Column("carrier", sa.String(length=64), nullable=True),
        sa.Column("face_value", sa.BigInteger(), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("failure_reason", sa.String(length=500), nullable=True),
        sa.Column("notify_url", sa.String(length=2000), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=True),
        sa.Column("funding", sa.String(length=16), nullable=False),
        sa.Column("payment_id", sa.String(length=64), nullable=True),
        sa.Column("group_code", sa.String(length=64), nullable=True),
        sa.Column("route_plan", sa.JSON(), nullable=True),
        sa.Column("is_probe", sa.Boolean(), nullable=False),
        sa.Column("attempt_count", sa.Integer(), nullable=False),
        sa.Column("succeeded_ref", sa.String(length=80), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("completed_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("merchant_id", "merchant_order_id", name="uq_orders_merchant_order"),
    )
    op.create_index("ix_orders_account", "orders", ["account"], unique=False)
    op.create_index(op.f("ix_orders_batch_id"), "orders", ["batch_id"], unique=False)
    op.create_index("ix_orders_merchant_created", "orders", ["merchant_id", "created_at", "id"], unique=False)
    op.create_index("ix_orders_status_created", "orders", ["status", "created_at"], unique=False)
    op.create_table(
        "payment_refunds",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("payment_id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_id"),
    )
    op.create_index(op.f("ix_payment_refunds_payment_id"), "payment_refunds", ["payment_id"], unique=False)
    op.create_table(
        "payments",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("merchant_id", sa.String(length=64), nullable=False),
        sa.Column("batch_id", sa.String(length=64), nullable=True),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("refunded", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("paid_at", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_payments_batch_id"), "payments", ["batch_id"], unique=False)
    op.create_index(op.f("ix_payments_merchant_id"), "payments", ["merchant_id"], unique=False)
    op.create_table(
        "products",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("business_type", sa.String(length=32), nullable=False),
        sa.Column("brand", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("face_value", sa.BigInteger(), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "transfers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=False),
        sa.Column("merchant_id", sa.String(length=64), nullable=True),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("payment_id", sa.String(length=64), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "reference", name="uq_transfers_kind_reference"),
    )
    op.create_index(op.f("ix_transfers_order_id"), "transfers", ["order_id"], unique=False)
    op.create_table(
        "group_members",
        sa.Column("group_code", sa.String(length=64), nullable=False),
        sa.Column("channel_code", sa.String(length=64), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("weight", sa.Integer(), nullable=False),
        sa.Column("costs", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_code"],
            ["channels.code"],
        ),
        sa.ForeignKeyConstraint(["group_code"], ["groups.code"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("group_code", "channel_code"),
    )
    op.create_table(
        "postings",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("transfer_id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=200), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["transfer_id"],
            ["transfers.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_postings_account_id"), "postings", ["account_id"], unique=False)
    op.create_index(op.f("ix_postings_transfer_id"), "postings", ["transfer_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_postings_transfer_id"), table_name="postings")
    op.drop_index(op.f("ix_postings_account_id"), table_name="postings")
    op.drop_table("postings")
    op.drop_table("group_members")
    op.drop_index(op.f("ix_transfers_order_id"), table_name="transfers")
    op.drop_table("transfers")
    op.drop_table("products")
    op.drop_index(op.f("ix_payments_merchant_id"), table_name="payments")
    op.drop_index(op.f("ix_payments_batch_id"), table_name="payments")
    op.drop_table("payments")
    op.drop_index(op.f("ix_payment_refunds_payment_id"), table_name="payment_refunds")
    op.drop_table("payment_refunds")
    op.drop_index("ix_orders_status_created", table_name="orders")
    op.drop_index("ix_orders_merchant_created", table_name="orders")
    op.drop_index(op.f("ix_orders_batch_id"), table_name="orders")
    op.drop_index("ix_orders_account", table_name="orders")
    op.drop_table("orders")
    op.drop_index(op.f("ix_order_events_order_id"), table_name="order_events")
    op.drop_table("order_events")
    op.drop_table("operators")
    op.drop_table("merchants")
    op.drop_index(op.f("ix_ledger_accounts_merchant_id"), table_name="ledger_accounts")
    op.drop_table("ledger_accounts")
    op.drop_index("ix_jobs_run_at", table_name="jobs")
    op.drop_table("jobs")
    op.drop_table("groups")
    op.drop_index(op.f("ix_group_switches_group_code"), table_name="group_switches")
    op.drop_index(op.f("ix_group_switches_at"), table_name="group_switches")
    op.drop_table("group_switches")
    op.drop_index(op.f("ix_exceptions_order_id"), table_name="exceptions")
    op.drop_table("exceptions")
    op.drop_index("ix_events_merchant_seq", table_name="events")
    op.drop_table("events")
    op.drop_index(op.f("ix_delivery_attempts_event_id"), table_name="delivery_attempts")
    op.drop_table("delivery_attempts")
    op.drop_index(op.f("ix_deliveries_order_id"), table_name="deliveries")
    op.drop_table("deliveries")
    op.drop_table("channels")
    op.drop_table("callbacks")
    op.drop_table("batches")
    op.drop_index("ix_attempts_channel_finished", table_name="attempts")
    op.drop_table("attempts")
