"""Per-channel dispatch slots in one process: a slow or stuck supplier gets a bounded number.

A supplier that accepts connections and then hangs until the channel's timeout would otherwise hold
every route slot of a worker, and orders for healthy channels would queue behind it. Each dispatch
holds a slot of its channel from storing the attempt to recording the reply. A channel is *slow*
while one of its slots has been held longer than `slow_after_s`, or one that was ended less than
`slow_after_s` ago; a slow channel gets at most `limit` slots in all (the caller defers the rest).
A channel whose dispatches all come back within `slow_after_s` is never limited, so a burst on a
healthy supplier keeps every route slot the worker allows. (A hang that starts in the middle of a
burst can still hold the slots that burst took until those dispatches time out; after that the
channel stays at `limit` while it keeps hanging.)
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
    slow_release_at: float = float("-inf")  # the last release of a slot held over slow_after_s


class ChannelSlots:
    def __init__(
        self, limit: int, slow_after_s: float = 2.0, now: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit  # 0: no limit
        self.slow_after_s = slow_after_s
        self._now = now
        self._channels: dict[str, _Channel] = {}

    def in_flight(self, code: str) -> int:
        ch = self._channels.get(code)
        return len(ch.held) if ch else 0

    def slow(self, code: str) -> bool:
        """A slot held over `slow_after_s` now, or one released within the last `slow_after_s`."""
        ch = self._channels.get(code)
        if ch is None:
            return False
        now = self._now()
        if now - ch.slow_release_at <= self.slow_after_s:
            return True
        return any(now - s.taken_at > self.slow_after_s for s in ch.held)

    def stuck(self, code: str) -> bool:
        """No new slot now: slow, with `limit` or more in flight."""
        return self.limit > 0 and self.in_flight(code) >= self.limit and self.slow(code)

    def try_take(self, code: str) -> Slot | None:
        """A slot, or None while the channel is stuck."""
        if self.stuck(code):
            return None
        slot = Slot(code, self._now())
        self._channels.setdefault(code, _Channel()).held.add(slot)
        return slot

    def release(self, slot: Slot) -> None:
        """Give the slot back (a second release of the same slot does nothing)."""
        ch = self._channels.get(slot.code)
        if ch is None or slot not in ch.held:
            return
        ch.held.discard(slot)
        now = self._now()
        if now - slot.taken_at > self.slow_after_s:
            ch.slow_release_at = now
