"""Merchants and the double-entry ledger."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, ForeignKey, Index, String, Table, UniqueConstraint

from topup.adapters.db.tables._base import BigId, metadata

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
