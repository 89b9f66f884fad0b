"""Per-channel dispatch slots in one process: a stuck supplier gets a bounded number of dispatches.

A supplier that accepts connections and then hangs until the channel's timeout would otherwise hold
every route slot of a worker, and orders for healthy channels would queue behind it. Each dispatch
holds a slot of its channel from storing the attempt to recording the reply.

A channel turns *suspect* when it has `limit` or more dispatches in flight, the oldest has been out
longer than `slow_after_s`, and no dispatch came back within `slow_after_s` of being sent during the
last `slow_after_s`. A suspect channel gets at most `limit` dispatches in flight (the caller defers
the rest) until one comes back quickly again. Any other channel is not limited here, so a burst on a
healthy supplier keeps every route slot the worker allows; only the first second of a supplier going
silent can take more than `limit`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(eq=False)
class Slot:
    """One dispatch in flight: its channel and when it took the slot (monotonic seconds)."""

    code: str
    taken_at: float


@dataclass(eq=False)
class _Channel:
    held: set[Slot] = field(default_factory=set)
    quick_release_at: float = float("-inf")  # the last release of a slot held under slow_after_s
    suspect: bool = False


class ChannelSlots:
    def __init__(
        self, limit: int, slow_after_s: float = 1.0, now: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit  # 0: no limit
        self.slow_after_s = slow_after_s
        self._now = now
        self._channels: dict[str, _Channel] = {}

    def in_flight(self, code: str) -> int:
        ch = self._channels.get(code)
        return len(ch.held) if ch else 0

    def stuck(self, code: str) -> bool:
        """May the channel get no new dispatch now? (suspect and at `limit`; see the module doc)"""
        ch = self._channels.get(code)
        if self.limit <= 0 or ch is None or len(ch.held) < self.limit:
            return False
        if ch.suspect:
            return True
        now = self._now()
        if now - ch.quick_release_at <= self.slow_after_s:
            return False  # the supplier is answering: a burst, or one slow order among quick ones
        ch.suspect = now - min(s.taken_at for s in ch.held) > self.slow_after_s
        return ch.suspect

    def suspect(self, code: str) -> bool:
        ch = self._channels.get(code)
        return bool(ch and ch.suspect)

    def try_take(self, code: str) -> Slot | None:
        """A slot, or None when the channel is stuck."""
        if self.stuck(code):
            return None
        ch = self._channels.setdefault(code, _Channel())
        slot = Slot(code, self._now())
        ch.held.add(slot)
        return slot

    def free_in(self, code: str, timeout_s: float) -> float:
        """Seconds until the oldest dispatch in flight must have ended (dispatches last <= timeout_s)."""
        ch = self._channels.get(code)
        if not ch or not ch.held:
            return 0.0
        return max(0.0, min(s.taken_at for s in ch.held) + timeout_s - self._now())

    def release(self, slot: Slot) -> None:
        """Give the slot back (a second release of the same slot does nothing)."""
        ch = self._channels.get(slot.code)
        if ch is None or slot not in ch.held:
            return
        ch.held.discard(slot)
        now = self._now()
        if now - slot.taken_at <= self.slow_after_s:
            ch.quick_release_at = now
            ch.suspect = False
