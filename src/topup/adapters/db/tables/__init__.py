"""SQLAlchemy Core tables. Times are unix seconds (float) in storage; the API renders RFC 3339.

One module per area; every table is importable from here (`from topup.adapters.db.tables import orders`).
"""

from __future__ import annotations

from topup.adapters.db.tables._base import BigId, metadata
from topup.adapters.db.tables.catalog import (
    channel_balances,
    channel_rate_slots,
    channels,
    group_members,
    group_switches,
    groups,
    products,
)
from topup.adapters.db.tables.intake import (
    batches,
    payment_refunds,
    payments,
)
from topup.adapters.db.tables.money import (
    ledger_accounts,
    merchants,
    postings,
    transfers,
)
from topup.adapters.db.tables.operators import (
    audit_log,
    operator_tokens,
    operators,
    statement_discrepancies,
    statements,
)
from topup.adapters.db.tables.orders import (
    attempts,
    callbacks,
    exceptions,
    order_events,
    orders,
)
from topup.adapters.db.tables.queue import (
    deliveries,
    delivery_attempts,
    events,
    jobs,
)

__all__ = [
    "BigId",
    "metadata",
    "attempts",
    "audit_log",
    "batches",
    "callbacks",
    "channel_balances",
    "channel_rate_slots",
    "channels",
    "deliveries",
    "delivery_attempts",
    "events",
    "exceptions",
    "group_members",
    "group_switches",
    "groups",
    "jobs",
    "ledger_accounts",
    "merchants",
    "operator_tokens",
    "operators",
    "order_events",
    "orders",
    "payment_refunds",
    "payments",
    "postings",
    "products",
    "statement_discrepancies",
    "statements",
    "transfers",
]
