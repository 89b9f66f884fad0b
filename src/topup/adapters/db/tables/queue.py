"""The job queue, the merchant event outbox and webhook deliveries."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Float, Index, Integer, String, Table, text

from topup.adapters.db.tables._base import BigId, metadata

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
    Index("ix_events_created_at", "created_at"),  # retention
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
    # Metrics: pending notifications and a day of the others; the ones tried more than once (small).
    Index("ix_deliveries_status_created", "status", "created_at"),
    Index(
        "ix_deliveries_retried",
        "tries",
        postgresql_where=text("tries > 1"),
        sqlite_where=text("tries > 1"),
    ),
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
