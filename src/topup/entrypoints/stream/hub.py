"""The per-process `EventHub`: turns commits, NOTIFYs and a poll into wake-ups of the right connections."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Protocol

import structlog

from topup.adapters.db.engine import Database
from topup.entrypoints.stream.events import _max_seq, newest_seq_per_merchant

log = structlog.get_logger()

# How often to look for events nobody announced (another process on SQLite, a lost NOTIFY).
POLL_S = 0.5
# PostgreSQL: how often to try to LISTEN again after the listening connection was lost.
LISTEN_RETRY_S = 5.0


class Subscriber(Protocol):
    merchant_id: str

    def wake(self) -> None: ...

    def shutdown(self) -> None: ...


class EventHub:
    """One per process: turns commits, NOTIFYs and a poll into wake-ups of the right connections."""

    def __init__(self, db: Database, poll_s: float = POLL_S) -> None:
        self.db = db
        self.poll_s = poll_s
        self.subscribers: dict[str, set[Subscriber]] = {}
        self._kick = asyncio.Event()
        self._last_seq: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._listener: Any = None
        self._listen_again_at = 0.0
        self._closed = False

    async def start(self) -> EventHub:
        self.db.on_events.append(self.kick)
        if self.db.is_postgres:
            await self._listen()
        self._task = asyncio.create_task(self._run(), name="topup-event-hub")
        return self

    async def aclose(self) -> None:
        self._closed = True
        for subs in list(self.subscribers.values()):
            for s in list(subs):
                s.shutdown()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
        with contextlib.suppress(ValueError):
            self.db.on_events.remove(self.kick)

    def kick(self) -> None:
        """Something committed events in this process: look for whose."""
        self._kick.set()

    def poke(self, merchant_id: str) -> None:
        for s in self.subscribers.get(merchant_id, ()):
            s.wake()

    async def subscribe(self, sub: Subscriber) -> None:
        if not self.subscribers or self._last_seq is None:
            self._last_seq = await _max_seq(self.db)
        self.subscribers.setdefault(sub.merchant_id, set()).add(sub)

    def unsubscribe(self, sub: Subscriber) -> None:
        subs = self.subscribers.get(sub.merchant_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self.subscribers[sub.merchant_id]

    async def _listen(self) -> None:
        """LISTEN for events committed by other processes (best effort; the poll covers gaps)."""
        import asyncpg

        def on_notify(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
            self.poke(payload)

        dsn = self.db.url.replace("postgresql+asyncpg", "postgresql")
        try:
            conn = await asyncpg.connect(dsn)
            await conn.add_listener("topup_events", on_notify)
        except Exception as e:
            log.warning("event_hub_listen_failed", error=str(e)[:200])
            return
        self._listener = conn

    async def _run(self) -> None:
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), self.poll_s)
            self._kick.clear()
            if self._listener_lost():
                self._listener = None
                self._listen_again_at = time.monotonic() + LISTEN_RETRY_S
                await self._listen()
                for subs in list(self.subscribers.values()):
                    for s in list(subs):
                        s.wake()  # NOTIFYs may have been missed meanwhile
            if not self.subscribers:
                continue
            try:
                await self._scan()
            except Exception as e:  # database briefly away: the next tick tries again
                log.warning("event_hub_scan_failed", error=str(e)[:200])
                await asyncio.sleep(self.poll_s)

    def _listener_lost(self) -> bool:
        if not self.db.is_postgres or time.monotonic() < self._listen_again_at:
            return False
        return self._listener is None or bool(self._listener.is_closed())

    async def _scan(self) -> None:
        rows = await newest_seq_per_merchant(self.db, self._last_seq or 0)
        for r in rows:
            self._last_seq = max(self._last_seq or 0, int(r.seq))
            self.poke(r.merchant_id)
