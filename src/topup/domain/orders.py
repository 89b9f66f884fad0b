"""Orders, attempts and the table of allowed status transitions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from topup.domain.errors import InvalidState

# \Z, not $: "$" would also accept a trailing newline.
MERCHANT_ORDER_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}\Z")


class OrderStatus(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    """Placed in a batch; waits for the batch's combined payment."""
    PROCESSING = "processing"
    """Paid (price held); being routed to suppliers."""
    SUCCEEDED = "succeeded"
    """A supplier confirmed the top-up; the price is captured."""
    FAILED = "failed"
    """Every route failed; the price is refunded."""
    CANCELLED = "cancelled"
    """Never paid (batch cancelled or payment expired/declined)."""


FINAL_STATUSES = frozenset({OrderStatus.SUCCEEDED, OrderStatus.FAILED, OrderStatus.CANCELLED})

ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING_PAYMENT: frozenset({OrderStatus.PROCESSING, OrderStatus.CANCELLED}),
    OrderStatus.PROCESSING: frozenset({OrderStatus.SUCCEEDED, OrderStatus.FAILED}),
    OrderStatus.SUCCEEDED: frozenset(),
    OrderStatus.FAILED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}


class AttemptStatus(StrEnum):
    PENDING = "pending"
    """Dispatched (or about to be); no final answer yet."""
    SUCCEEDED = "succeeded"
    """The supplier confirmed it (callback or query)."""
    FAILED = "failed"
    """Rejected, failure callback, or query said failed/not_found."""
    ABANDONED = "abandoned"
    """Given up after max_wait; a later callback is still recorded."""


ATTEMPT_TRANSITIONS: dict[AttemptStatus, frozenset[AttemptStatus]] = {
    AttemptStatus.PENDING: frozenset(
        {AttemptStatus.SUCCEEDED, AttemptStatus.FAILED, AttemptStatus.ABANDONED}
    ),
    # A late success for an abandoned attempt is still a fact worth recording.
    AttemptStatus.ABANDONED: frozenset({AttemptStatus.SUCCEEDED}),
    AttemptStatus.SUCCEEDED: frozenset(),
    AttemptStatus.FAILED: frozenset(),
}


class ForbiddenTransition(InvalidState):
    """A status change the transition table does not allow."""


def check_order_transition(current: str, target: str) -> OrderStatus:
    cur, tgt = OrderStatus(current), OrderStatus(target)
    if tgt not in ORDER_TRANSITIONS[cur]:
        raise ForbiddenTransition(f"order cannot move from {cur} to {tgt}")
    return tgt


def check_attempt_transition(current: str, target: str) -> AttemptStatus:
    cur, tgt = AttemptStatus(current), AttemptStatus(target)
    if tgt not in ATTEMPT_TRANSITIONS[cur]:
        raise ForbiddenTransition(f"attempt cannot move from {cur} to {tgt}")
    return tgt


def attempt_sources(target: str) -> frozenset[AttemptStatus]:
    """The statuses an attempt may move to `target` from (empty: no move leads there)."""
    tgt = AttemptStatus(target)
    return frozenset(s for s, allowed in ATTEMPT_TRANSITIONS.items() if tgt in allowed)


@dataclass
class Order:
    """One merchant order as stored; its status changes only through `move_to`."""

    id: str
    merchant_id: str
    merchant_order_id: str
    request_hash: str
    business_type: str
    product_code: str
    account: str
    face_value: int
    price: int
    status: OrderStatus
    funding: str
    created_at: float
    updated_at: float
    batch_id: str | None = None
    carrier: str | None = None
    region: str | None = None
    failure_reason: str | None = None
    notify_url: str | None = None
    extra: dict[str, Any] | None = None
    payment_id: str | None = None
    group_code: str | None = None
    route_plan: list[str] | None = None
    """The channels this order tries, in order (fixed at its first attempt)."""
    is_probe: bool = False
    attempt_count: int = 0
    succeeded_ref: str | None = None
    completed_at: float | None = None

    def move_to(
        self,
        target: OrderStatus,
        now: float,
        *,
        failure_reason: str | None = None,
        succeeded_ref: str | None = None,
    ) -> OrderStatus:
        """Change status as the transition table allows (else `ForbiddenTransition`); the old status."""
        previous = self.status
        self.status = check_order_transition(previous, target)
        self.updated_at = now
        if self.status in FINAL_STATUSES:
            self.completed_at = now
        if failure_reason is not None:
            self.failure_reason = failure_reason[:500]
        if succeeded_ref is not None:
            self.succeeded_ref = succeeded_ref
        return previous


@dataclass
class Attempt:
    """One try of an order at one channel; its status changes only through `move_to`."""

    id: int
    order_id: str
    no: int
    ref: str
    channel_code: str
    status: AttemptStatus
    dispatch_state: str
    started_at: float
    group_code: str | None = None
    reason: str | None = None
    supplier_order_id: str | None = None
    dispatched_at: float | None = None
    finished_at: float | None = None
    deadline_at: float | None = None
    latency_ms: float | None = None
    supplier_ref: str | None = None
    cost: int | None = None
    """What the supplier said it charged (fen), when its dispatch reply said so."""

    def move_to(self, target: AttemptStatus, now: float, reason: str | None = None) -> AttemptStatus:
        """Change status as the transition table allows (else `ForbiddenTransition`); the old status."""
        previous = self.status
        self.status = check_attempt_transition(previous, target)
        self.finished_at = now
        if reason is not None:
            self.reason = reason[:500]
        return previous


def attempt_ref(order_id: str, attempt_no: int) -> str:
    """Stable, unique per attempt: `<order_id>-<n>`."""
    return f"{order_id}-{attempt_no}"


def parse_ref(ref: str) -> tuple[str, int] | None:
    order_id, sep, no = ref.rpartition("-")
    # isascii: str.isdigit() accepts digits such as "²" that int() refuses.
    if not sep or not (no.isascii() and no.isdigit()) or not order_id:
        return None
    return order_id, int(no)


def is_final(status: str) -> bool:
    return status in FINAL_STATUSES
