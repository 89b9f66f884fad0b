"""Per-channel dispatch slots in one process: how many dispatches a channel may have in flight.

A supplier that accepts connections and then hangs until the channel's timeout would otherwise hold
every route slot of a worker, and orders for healthy channels would queue behind it. Each channel
gets at most `limit` dispatches in flight from this process. A route job whose channel is full waits
for a slot (handed over in arrival order, so waiters do not race each other) while the channel's
dispatches are quick, as in a burst; when the oldest of them has been out longer than `slow_after_s`
the channel is treated as stuck and the job gives up its place (the caller defers it).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
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
    waiters: deque[asyncio.Future[Slot]] = field(default_factory=deque)


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

    def waiting(self, code: str) -> int:
        ch = self._channels.get(code)
        return sum(1 for f in ch.waiters if not f.done()) if ch else 0

    def try_take(self, code: str) -> Slot | None:
        """A slot now, or None when the channel has `limit` in flight (or others are queued for one)."""
        ch = self._channels.setdefault(code, _Channel())
        if self.limit > 0 and (len(ch.held) >= self.limit or any(not f.done() for f in ch.waiters)):
            return None
        return self._hold(ch, code)

    def slow(self, code: str) -> bool:
        """Has the channel's oldest dispatch in flight been out longer than `slow_after_s`?"""
        ch = self._channels.get(code)
        if not ch or not ch.held:
            return False
        return self._now() - min(s.taken_at for s in ch.held) > self.slow_after_s

    async def wait(self, code: str, timeout_s: float | None = None) -> Slot | None:
        """Wait for the channel's next free slot; None at once if the channel is slow, or on timeout."""
        slot = self.try_take(code)
        if slot is not None or self.slow(code):
            return slot
        ch = self._channels.setdefault(code, _Channel())
        fut: asyncio.Future[Slot] = asyncio.get_running_loop().create_future()
        ch.waiters.append(fut)
        try:
            await asyncio.wait({fut}, timeout=self.slow_after_s if timeout_s is None else timeout_s)
        finally:
            if not fut.done():
                fut.cancel()  # timed out or cancelled: `release` skips it
            with contextlib.suppress(ValueError):
                ch.waiters.remove(fut)
        if fut.cancelled():
            return None
        return fut.result()

    def release(self, slot: Slot) -> None:
        """Give the slot back: to the first waiter still waiting, else to the channel."""
        ch = self._channels.get(slot.code)
        if ch is None or slot not in ch.held:
            return
        ch.held.discard(slot)
        while ch.waiters:
            fut = ch.waiters.popleft()
            if not fut.done():
                fut.set_result(self._hold(ch, slot.code))
                return
        if not ch.held:
            del self._channels[slot.code]

    def _hold(self, ch: _Channel, code: str) -> Slot:
        slot = Slot(code, self._now())
        ch.held.add(slot)
        return slot
