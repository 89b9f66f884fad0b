"""Storage the retention use case needs (see `topup.services.uow.UnitOfWork`): count and delete, a batch
at a time, the operational rows of finished work that are older than a cutoff (docs/operations.md)."""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol


class Prunable(StrEnum):
    """Rows that may go once old; each member is named after its table. Money and audit records
    (orders, attempts, transfers, postings, payments, batches, exceptions, audit_log, statements) have
    no member: they are kept forever."""

    DELIVERY_ATTEMPTS = "delivery_attempts"
    """Webhook tries of a delivery that is delivered or gave up, made before the cutoff."""
    DELIVERIES = "deliveries"
    """Deliveries that are delivered or gave up, of events made before the cutoff."""
    EVENTS = "events"
    """Merchant events made before the cutoff whose delivery (if any) is no longer pending."""
    CALLBACKS = "callbacks"
    """Supplier callbacks received before the cutoff, of attempts whose order became final before it."""
    ORDER_EVENTS = "order_events"
    """Timeline lines (before the cutoff) of orders that became final before it."""
    CHANNEL_BALANCES = "channel_balances"
    """Balance checks before the cutoff, except each channel's latest check and latest good one."""
    GROUP_SWITCHES = "group_switches"
    """Group switch-overs before the cutoff."""


class RetentionRepository(Protocol):
    async def count(self, kind: Prunable, cutoff: float) -> int:
        """How many rows of `kind` are prunable at `cutoff` (epoch seconds)."""
        ...

    async def prune(self, kind: Prunable, cutoff: float, limit: int) -> int:
        """Delete up to `limit` prunable rows of `kind`; how many went."""
        ...
