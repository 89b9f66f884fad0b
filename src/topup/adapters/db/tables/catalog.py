"""Products, supplier channels and routing groups, with the channels' operations state (SPEC 6-7)."""

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
    String,
    Table,
    Text,
)

from topup.adapters.db.tables._base import BigId, metadata

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
