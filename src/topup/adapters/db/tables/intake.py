"""Batch uploads and customer payments."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Float, Integer, String, Table, UniqueConstraint

from topup.adapters.db.tables._base import metadata

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
