"""Orders, their attempts, timelines, supplier callbacks and operator exceptions."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    text,
)

from topup.adapters.db.tables._base import BigId, metadata

orders = Table(
    "orders",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("merchant_id", String(64), nullable=False),
    Column("merchant_order_id", String(64), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("batch_id", String(64), nullable=True, index=True),
    Column("business_type", String(32), nullable=False),
    Column("product_code", String(64), nullable=False),
    Column("account", String(254), nullable=False),
    Column("carrier", String(64), nullable=True),
    # The mobile number's home province, ISO 3166-2:CN (SPEC 7).
    Column("region", String(8), nullable=True),
    Column("face_value", BigInteger, nullable=False),
    Column("price", BigInteger, nullable=False),
    Column("status", String(32), nullable=False),
    Column("failure_reason", String(500), nullable=True),
    Column("notify_url", String(2000), nullable=True),
    Column("extra", JSON, nullable=True),
    # balance | sandbox: where the held price sits and where a refund goes.
    Column("funding", String(16), nullable=False),
    Column("payment_id", String(64), nullable=True),
    Column("group_code", String(64), nullable=True),
    Column("route_plan", JSON, nullable=True),
    Column("is_probe", Boolean, nullable=False, default=False),
    Column("attempt_count", Integer, nullable=False, default=0),
    Column("succeeded_ref", String(80), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("completed_at", Float, nullable=True),
    UniqueConstraint("merchant_id", "merchant_order_id", name="uq_orders_merchant_order"),
    Index("ix_orders_merchant_created", "merchant_id", "created_at", "id"),
    Index("ix_orders_status_created", "status", "created_at"),
    Index("ix_orders_account", "account"),
    # Margin reports: the orders that succeeded in a period.
    Index("ix_orders_status_completed", "status", "completed_at"),
    # Open orders only (metrics count them per scrape): it stays small however long the history.
    Index(
        "ix_orders_open_status",
        "status",
        "business_type",
        postgresql_where=text("completed_at IS NULL"),
        sqlite_where=text("completed_at IS NULL"),
    ),
)

attempts = Table(
    "attempts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("order_id", String(64), nullable=False),
    Column("no", Integer, nullable=False),
    Column("ref", String(80), nullable=False, unique=True),
    Column("channel_code", String(64), nullable=False),
    Column("group_code", String(64), nullable=True),
    Column("status", String(16), nullable=False),
    Column("reason", String(500), nullable=True),
    Column("supplier_order_id", String(200), nullable=True),
    # queued -> sent: the claim that makes a dispatch happen at most once.
    Column("dispatch_state", String(16), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("dispatched_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    Column("deadline_at", Float, nullable=True),
    Column("latency_ms", Float, nullable=True),
    # The id the supplier sees for this attempt (SPEC 6), stored before the dispatch.
    Column("supplier_ref", String(80), nullable=True),
    # What the supplier said it charged (fen), when its dispatch reply says so (SPEC 8).
    Column("cost", BigInteger, nullable=True),
    UniqueConstraint("order_id", "no", name="uq_attempts_order_no"),
    Index("ix_attempts_channel_finished", "channel_code", "finished_at"),
    Index("ux_attempts_channel_supplier_ref", "channel_code", "supplier_ref", unique=True),
    # Statements: the attempts a channel was sent in a period.
    Index("ix_attempts_channel_dispatched", "channel_code", "dispatched_at"),
    # Attempts in flight per channel (console), without walking the channel's history.
    Index(
        "ix_attempts_pending_channel",
        "channel_code",
        postgresql_where=text("status = 'pending'"),
        sqlite_where=text("status = 'pending'"),
    ),
)

# Everything that happened to an order, for the operator timeline.

order_events = Table(
    "order_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("order_id", String(64), nullable=False, index=True),
    Column("attempt_no", Integer, nullable=True),
    Column("kind", String(48), nullable=False),
    Column("detail", JSON, nullable=True),
    Column("at", Float, nullable=False),
)

callbacks = Table(
    "callbacks",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("channel_code", String(64), nullable=False),
    Column("ref", String(80), nullable=False),
    Column("status", String(16), nullable=False),
    Column("supplier_order_id", String(200), nullable=True),
    Column("code", String(200), nullable=True),
    Column("message", String(1000), nullable=True),
    Column("outcome", String(48), nullable=True),
    Column("received_at", Float, nullable=False),
    UniqueConstraint("channel_code", "ref", "status", name="uq_callbacks_channel_ref_status"),
    # The last hour's callbacks (metrics: callback delays).
    Index("ix_callbacks_received_at", "received_at"),
)

exceptions = Table(
    "exceptions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(48), nullable=False),
    Column("order_id", String(64), nullable=True, index=True),
    Column("ref", String(80), nullable=True),
    Column("channel_code", String(64), nullable=True),
    Column("detail", JSON, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("resolved_at", Float, nullable=True),
    Column("resolved_by", String(200), nullable=True),
    Column("resolution_note", String(2000), nullable=True),
    UniqueConstraint("kind", "ref", name="uq_exceptions_kind_ref"),
)

# Durable due work: dispatch, deadlines, notifications, payment expiry.
