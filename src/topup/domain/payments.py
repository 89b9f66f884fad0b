"""Payments: one combined payment for a set of orders. Statuses, methods and the sandbox notify rules."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from topup.domain.errors import InvalidRequest, InvalidState


class PaymentMethod(StrEnum):
    BALANCE = "balance"
    """Taken from the merchant's available balance at once."""
    SANDBOX = "sandbox"
    """A stand-in third-party gateway: a hosted pay page, then a signed asynchronous notify."""


class PaymentStatus(StrEnum):
    PENDING = "pending"
    """Waiting for the gateway (sandbox only)."""
    PAID = "paid"
    """The money is in; the orders started."""
    DECLINED = "declined"
    """The gateway declined; the orders were cancelled."""
    EXPIRED = "expired"
    """Not paid in time (or its batch was cancelled); the orders were cancelled."""


PAYMENT_TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    PaymentStatus.PENDING: frozenset({PaymentStatus.PAID, PaymentStatus.DECLINED, PaymentStatus.EXPIRED}),
    PaymentStatus.PAID: frozenset(),
    PaymentStatus.DECLINED: frozenset(),
    PaymentStatus.EXPIRED: frozenset(),
}

# What a sandbox gateway may report in its notify.
NOTIFY_OUTCOMES = {"paid": PaymentStatus.PAID, "declined": PaymentStatus.DECLINED}


def check_payment_transition(current: str, target: str) -> PaymentStatus:
    cur, tgt = PaymentStatus(current), PaymentStatus(target)
    if tgt not in PAYMENT_TRANSITIONS[cur]:
        raise InvalidState(f"payment cannot move from {cur} to {tgt}")
    return tgt


def parse_method(value: Any) -> PaymentMethod:
    try:
        return PaymentMethod(value)
    except ValueError:
        raise InvalidRequest("method: one of balance, sandbox", {"field": "method"}) from None


def parse_notify(body: Any) -> tuple[str, PaymentStatus, int]:
    """A sandbox notify body -> (payment_id, outcome, amount); InvalidRequest for anything else."""
    if not isinstance(body, dict):
        raise InvalidRequest("notify body must be a JSON object")
    pid, status, amount = body.get("payment_id"), body.get("status"), body.get("amount")
    if not isinstance(pid, str) or not pid or len(pid) > 64:
        raise InvalidRequest("payment_id: required string")
    if status not in NOTIFY_OUTCOMES:
        raise InvalidRequest("status: one of paid, declined")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise InvalidRequest("amount: positive integer fen")
    return pid, NOTIFY_OUTCOMES[status], amount
