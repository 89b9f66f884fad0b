"""Operator accounts, API tokens, the audit log and supplier statements."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Float, Index, Integer, String, Table, UniqueConstraint

from topup.adapters.db.tables._base import BigId, metadata

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
