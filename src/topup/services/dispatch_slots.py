"""Per-channel dispatch slots in one process: a stuck supplier gets a bounded number of dispatches.

A supplier that accepts connections and then hangs until the channel's timeout would otherwise hold
every route slot of a worker, and orders for healthy channels would queue behind it. Each dispatch
holds a slot of its channel from storing the attempt to recording the reply. A channel is *stuck*
while `limit` or more of its slots have been held longer than `slow_after_s`: it gets no new slot
(the caller defers the order) until some of those end. Young slots never count, so a burst on a
healthy supplier keeps every route slot the worker allows, and a supplier that hangs on some orders
only is held back by those. (A hang that starts in the middle of a burst can still hold every slot
the burst took, once, until those dispatches time out.)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(eq=False)
class Slot:
    """One dispatch in flight: its channel and when it took the slot (monotonic seconds)."""

    code: str
    taken_at: float


class ChannelSlots:
    def __init__(
        self, limit: int, slow_after_s: float = 2.0, now: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit  # 0: no limit
        self.slow_after_s = slow_after_s
        self._now = now
        self._held: dict[str, set[Slot]] = {}

    def in_flight(self, code: str) -> int:
        return len(self._held.get(code, ()))

    def old(self, code: str) -> int:
        """Slots of the channel held longer than `slow_after_s`."""
        cutoff = self._now() - self.slow_after_s
        return sum(1 for s in self._held.get(code, ()) if s.taken_at < cutoff)

    def stuck(self, code: str) -> bool:
        return self.limit > 0 and self.old(code) >= self.limit

    def try_take(self, code: str) -> Slot | None:
        """A slot, or None while the channel is stuck."""
        if self.stuck(code):
            return None
        slot = Slot(code, self._now())
        self._held.setdefault(code, set()).add(slot)
        return slot

    def release(self, slot: Slot) -> None:
        """Give the slot back (a second release of the same slot does nothing)."""
        held = self._held.get(slot.code)
        if held is not None:
            held.discard(slot)
