"""Supplier operations rules (SPEC section 7): pausing on a low balance, and rate-limit slots. Pure.

Rate limit: a channel with `rate_limit_per_s` N keeps N slots. A dispatch may start at time t only on a
slot whose previous dispatch started at least `WINDOW_S` before t; as every start occupies a slot and a
slot is used again only a window later, no window of that length ever holds more than N starts. An
order that finds no slot free reserves the *oldest* one at `max(now, last + WINDOW_S)`: start times are
handed out in the order they were asked for, so the queue is first come, first served.
"""

from __future__ import annotations

from enum import StrEnum

# The sliding window, plus a small guard (the request leaves a moment after its start is taken, and
# the network adds its jitter): at most N dispatches in any 1 s, with room to spare.
RATE_WINDOW_S = 1.0
RATE_GUARD_S = 0.05
WINDOW_S = RATE_WINDOW_S + RATE_GUARD_S

# Rejection codes that mean the supplier account itself is short (topup-json, Reloadly, DingConnect).
_INSUFFICIENT = frozenset({"insufficient_balance", "insufficientbalance"})


class PauseReason(StrEnum):
    LOW_BALANCE = "low_balance"
    """The channel's last balance check was below its `min_balance`."""


def means_insufficient_balance(code: str | None) -> bool:
    """`insufficient_balance` (topup-json), `INSUFFICIENT_BALANCE` (Reloadly), `InsufficientBalance`
    (DingConnect): the supplier refused because our account with it is short."""
    return code is not None and code.strip().lower() in _INSUFFICIENT


def low_balance(amount: int | None, min_balance: int | None) -> bool:
    """True when a successful check's amount is below the channel's minimum (none set: never)."""
    return min_balance is not None and amount is not None and amount < min_balance


def next_start(last: float, now: float) -> float:
    """When a dispatch may start on a slot last used (or reserved) at `last`: now, or once the window
    has passed since then."""
    return max(now, last + WINDOW_S)
