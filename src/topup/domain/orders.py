"""Orders, attempts and the table of allowed status transitions."""

from __future__ import annotations

import re
from enum import StrEnum

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
