"""What the in-memory database holds: plain Python values, copied whole for each unit of work."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from topup.domain.orders import Attempt, Order
from topup.domain.routing import GroupState
from topup.services.ports.catalog import ChannelRow, GroupRow, MemberRow, ProductRow


@dataclass
class StoredJobRow:
    """A row of the job queue."""

    id: int
    kind: str
    key: str
    payload: str
    run_at: float
    tries: int = 0
    locked_until: float | None = None
    last_error: str | None = None


@dataclass
class Event:
    """A line of an order's timeline."""

    order_id: str
    attempt_no: int | None
    kind: str
    detail: dict[str, Any]
    at: float


@dataclass
class State:
    """Every table the fakes keep (a unit of work changes a deep copy; commit swaps it in)."""

    # orders
    orders: dict[str, Order] = field(default_factory=dict)
    attempts: dict[int, Attempt] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    callbacks: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    exceptions: dict[tuple[str, str | None], dict[str, Any]] = field(default_factory=dict)
    # jobs
    jobs: dict[str, StoredJobRow] = field(default_factory=dict)
    # catalog
    products: dict[str, ProductRow] = field(default_factory=dict)
    channels: dict[str, ChannelRow] = field(default_factory=dict)
    groups: dict[str, GroupRow] = field(default_factory=dict)
    members: list[MemberRow] = field(default_factory=list)
    group_states: dict[str, GroupState] = field(default_factory=dict)
    switches: list[dict[str, Any]] = field(default_factory=list)
    # ledger
    transfers: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    balances: dict[str, int] = field(default_factory=dict)
    # payments
    refunds: list[dict[str, Any]] = field(default_factory=list)
    refunded: dict[str, int] = field(default_factory=dict)
    # merchants
    notify_urls: dict[str, str | None] = field(default_factory=dict)
    # notifications (the outbox)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    # id sequences
    last_id: int = 0

    def next_id(self) -> int:
        self.last_id += 1
        return self.last_id
