"""SQLAlchemy Core tables. Times are unix seconds (float) in storage; the API renders RFC 3339."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

# Autoincrement ids that also work on SQLite (INTEGER PRIMARY KEY there).
BigId = BigInteger().with_variant(Integer(), "sqlite")

merchants = Table(
    "merchants",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("secret", String(200), nullable=False),
    Column("password_hash", String(200), nullable=True),
    Column("notify_url", String(2000), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

products = Table(
    "products",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("business_type", String(32), nullable=False),
    Column("brand", String(64), nullable=True),
    Column("name", String(200), nullable=False),
    Column("face_value", BigInteger, nullable=False),
    Column("price", BigInteger, nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("updated_at", Float, nullable=False),
)

channels = Table(
    "channels",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("protocol", String(32), nullable=False),
    Column("base_url", String(2000), nullable=False),
    Column("secret", String(200), nullable=False),
    Column("timeout_s", Float, nullable=False),
    Column("max_wait_s", Float, nullable=False),
    Column("supports_query", Boolean, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("updated_at", Float, nullable=False),
    # The protocol's secrets, sealed (keys.CredentialBox); products and options as given (SPEC 6).
    Column("credentials", Text, nullable=False, server_default=""),
    Column("products", JSON, nullable=False, server_default="{}"),
    Column("options", JSON, nullable=False, server_default="{}"),
    # Supplier operations (SPEC 7): the balance floor and check interval, the rate limit, and the pause
    # the balance checks set and lift.
    Column("min_balance", BigInteger, nullable=True),
    Column("balance_check_s", Float, nullable=False, server_default="300"),
    Column("rate_limit_per_s", Integer, nullable=True),
    Column("paused", String(32), nullable=True),
    Column("paused_at", Float, nullable=True),
)

# A rate-limited channel's recent (or reserved) dispatch starts, one row per slot (SPEC 7).
channel_rate_slots = Table(
    "channel_rate_slots",
    metadata,
    Column("channel_code", String(64), primary_key=True),
    Column("slot", Integer, primary_key=True),
    # The latest start reserved on the slot, and when the latest dispatch that used it really started.
    Column("at", Float, nullable=False),
    Column("started", Float, nullable=False),
)

# Every balance check of a channel (SPEC 6 and 7): the history an operator reads.
channel_balances = Table(
    "channel_balances",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("channel_code", String(64), nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("amount", BigInteger, nullable=True),
    Column("currency", String(8), nullable=True),
    Column("error", String(500), nullable=True),
    Column("checked_at", Float, nullable=False),
    Index("ix_channel_balances_channel_at", "channel_code", "checked_at"),
)

groups = Table(
    "groups",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("business_type", String(32), nullable=False),
    Column("brand", String(64), nullable=True),
    Column("strategy", String(32), nullable=False),
    Column("sticky", Boolean, nullable=False),
    Column("recovery_s", Float, nullable=False),
    # Sticky-switch state.
    Column("active_channel", String(64), nullable=True),
    Column("switched_at", Float, nullable=True),
    Column("probe_order_id", String(64), nullable=True),
    Column("probe_until", Float, nullable=True),
    Column("updated_at", Float, nullable=False),
)

group_members = Table(
    "group_members",
    metadata,
    Column("group_code", String(64), ForeignKey("groups.code", ondelete="CASCADE"), primary_key=True),
    Column("channel_code", String(64), ForeignKey("channels.code"), primary_key=True),
    Column("priority", Integer, nullable=False),
    Column("weight", Integer, nullable=False),
    Column("costs", JSON, nullable=False),
    # Coverage (SPEC 7): lists of carriers and ISO 3166-2:CN regions; NULL covers all.
    Column("carriers", JSON, nullable=True),
    Column("regions", JSON, nullable=True),
)

# Switch-over history for operators (failovers and switch-backs).
group_switches = Table(
    "group_switches",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("group_code", String(64), nullable=False, index=True),
    Column("from_channel", String(64), nullable=True),
    Column("to_channel", String(64), nullable=False),
    Column("reason", String(64), nullable=False),
    Column("order_id", String(64), nullable=True),
    Column("at", Float, nullable=False, index=True),
)

ledger_accounts = Table(
    "ledger_accounts",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("merchant_id", String(64), nullable=True, index=True),
    Column("balance", BigInteger, nullable=False),
)

transfers = Table(
    "transfers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(32), nullable=False),
    # Idempotency: one transfer per (kind, reference), e.g. ("capture", order_id).
    Column("reference", String(200), nullable=False),
    Column("merchant_id", String(64), nullable=True),
    Column("order_id", String(64), nullable=True, index=True),
    Column("payment_id", String(64), nullable=True),
    Column("amount", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("kind", "reference", name="uq_transfers_kind_reference"),
    # Margin reports: the costs posted in a period.
    Index("ix_transfers_kind_created", "kind", "created_at"),
)

postings = Table(
    "postings",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("transfer_id", String(64), ForeignKey("transfers.id"), nullable=False, index=True),
    Column("account_id", String(200), nullable=False, index=True),
    Column("amount", BigInteger, nullable=False),
)

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
jobs = Table(
    "jobs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    # One live job per key (e.g. "route:ord_x"); re-enqueueing the same key is a no-op.
    Column("key", String(200), nullable=False, unique=True),
    Column("payload", JSON, nullable=True),
    Column("run_at", Float, nullable=False),
    Column("locked_until", Float, nullable=True),
    Column("tries", Integer, nullable=False, default=0),
    Column("last_error", String(1000), nullable=True),
    Column("created_at", Float, nullable=False),
    Index("ix_jobs_run_at", "run_at"),
    # Claims that leave route jobs for later (a worker at its dispatch cap) walk this one.
    Index(
        "ix_jobs_run_at_not_route",
        "run_at",
        postgresql_where=text("kind <> 'route'"),
        sqlite_where=text("kind <> 'route'"),
    ),
)

# Outbox: one event per final order state, written in the same transaction as the change.
events = Table(
    "events",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("merchant_id", String(64), nullable=False),
    Column("order_id", String(64), nullable=False),
    Column("type", String(48), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_events_merchant_seq", "merchant_id", "seq"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("merchant_id", String(64), nullable=False),
    Column("order_id", String(64), nullable=False, index=True),
    Column("url", String(2000), nullable=False),
    Column("status", String(16), nullable=False),  # pending | delivered | gave_up
    Column("tries", Integer, nullable=False, default=0),
    Column("next_at", Float, nullable=True),
    Column("delivered_at", Float, nullable=True),
    Column("created_at", Float, nullable=False),
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False, index=True),
    Column("at", Float, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("latency_ms", Float, nullable=True),
    Column("error", String(1000), nullable=True),
)

batches = Table(
    "batches",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("merchant_id", String(64), nullable=False),
    Column("merchant_batch_id", String(64), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("status", String(32), nullable=False),
    Column("total_rows", Integer, nullable=False),
    Column("valid_rows", Integer, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("notify_url", String(2000), nullable=True),
    Column("payment_id", String(64), nullable=True),
    Column("rows", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("completed_at", Float, nullable=True),
    UniqueConstraint("merchant_id", "merchant_batch_id", name="uq_batches_merchant_batch"),
)

payments = Table(
    "payments",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("merchant_id", String(64), nullable=False, index=True),
    Column("batch_id", String(64), nullable=True, index=True),
    Column("method", String(16), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("refunded", BigInteger, nullable=False, default=0),
    Column("expires_at", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("paid_at", Float, nullable=True),
    Column("updated_at", Float, nullable=False),
)

payment_refunds = Table(
    "payment_refunds",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("payment_id", String(64), nullable=False, index=True),
    Column("order_id", String(64), nullable=False, unique=True),
    Column("amount", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
)

operators = Table(
    "operators",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("password_hash", String(200), nullable=False),
    Column("created_at", Float, nullable=False),
    # viewer | operator | admin (domain/roles.py); accounts made before roles existed became admin.
    Column("role", String(16), nullable=False, server_default="viewer"),
)

# Operator API tokens: each belongs to an operator account and carries a role (capped at the account's).
# Only a SHA-256 of the token is stored; the token is shown once, when it is issued.
operator_tokens = Table(
    "operator_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("operator_id", String(64), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("role", String(16), nullable=False),
    Column("token_hash", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
)

# Every change made through the operator API, the console or the CLI, written in the change's own
# transaction. Append-only: triggers (migration 0004) refuse UPDATE and DELETE on both databases.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False, index=True),
    Column("actor", String(100), nullable=False, index=True),
    Column("role", String(16), nullable=False),
    Column("via", String(16), nullable=False),
    Column("address", String(200), nullable=True),
    Column("credential", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("object", String(200), nullable=False, index=True),
    Column("before", JSON, nullable=True),
    Column("after", JSON, nullable=True),
)

# Supplier statements reconciled against the attempts (SPEC 8); one per (channel, period, file).
statements = Table(
    "statements",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("channel_code", String(64), nullable=False),
    Column("period_from", Float, nullable=False),
    Column("period_to", Float, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("format", String(32), nullable=False),
    Column("rows", Integer, nullable=False),
    Column("matched", Integer, nullable=False),
    # Discrepancies per kind, fen at stake, and totals of both sides.
    Column("summary", JSON, nullable=False),
    Column("created_by", String(200), nullable=True),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("channel_code", "period_from", "period_to", "digest", name="uq_statements_file"),
    Index("ix_statements_channel_created", "channel_code", "created_at"),
)

statement_discrepancies = Table(
    "statement_discrepancies",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("statement_id", String(64), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("supplier_ref", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("ours", JSON, nullable=True),
    Column("theirs", JSON, nullable=True),
    Column("at_stake", BigInteger, nullable=False),
    UniqueConstraint("statement_id", "seq", name="uq_statement_discrepancies_seq"),
)
