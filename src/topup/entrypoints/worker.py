"""The claim loop: dispatch, deadlines, queries, notifications, payment expiry.

Due work lives in the `jobs` table. Workers claim it with a lease (FOR UPDATE SKIP LOCKED on
PostgreSQL), run each job in its own task, and finish it by deleting it in the job's own
transaction. A killed worker's lease runs out and another worker picks the job up.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import structlog

from topup import logs
from topup.adapters.db.engine import Database
from topup.adapters.db.repos import jobs as job_queue
from topup.bootstrap import Container
from topup.clock import Clock
from topup.config import Settings
from topup.domain.orders import parse_ref
from topup.services import jobs
from topup.services.jobs import JobHandlers, JobKind
from topup.services.ports.jobs import StoredJob

log = structlog.get_logger()


def retry_delay(tries: int) -> float:
    """Backoff for a job whose handler raised: 0.5 s, 1 s, 2 s ... capped at 60 s."""
    return float(min(60.0, 0.5 * 2 ** max(tries - 1, 0)))


class Worker:
    def __init__(self, settings: Settings, db: Database, clock: Clock, handlers: JobHandlers) -> None:
        self.db = db
        self.clock = clock
        self.handlers = handlers
        self.concurrency = settings.worker_concurrency
        self.dispatch_concurrency = max(1, min(settings.worker_dispatch_concurrency, self.concurrency))
        self.routes_running = 0
        self.poll_s = settings.worker_poll_s
        self.lease_s = settings.job_lease_s
        self.wake = asyncio.Event()
        self.running: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()
        self._main: asyncio.Task[None] | None = None
        self._listener: Any = None
        self._listen_tried = 0.0
        self._full = False
        self.jobs_done = 0

    def poke(self) -> None:
        self.wake.set()

    async def start(self) -> Worker:
        self.db.on_jobs.append(self.poke)
        if self.db.is_postgres:
            await self._listen()
        self._main = asyncio.create_task(self._loop(), name="topup-worker")
        return self

    async def _listen(self) -> None:
        """LISTEN for new work from other processes (best effort; polling covers gaps)."""
        import asyncpg

        dsn = self.db.url.replace("postgresql+asyncpg", "postgresql")
        self._listen_tried = time.monotonic()
        with contextlib.suppress(Exception):
            conn = await asyncpg.connect(dsn, timeout=5)
            await conn.add_listener("topup_jobs", lambda *_: self.wake.set())
            self._listener = conn

    async def _ensure_listening(self) -> None:
        """Reopen the LISTEN connection after the database dropped it (a restart), at most once a second."""
        if not self.db.is_postgres or (self._listener is not None and not self._listener.is_closed()):
            return
        if time.monotonic() - self._listen_tried >= 1.0:
            self._listener = None
            await self._listen()

    async def aclose(self) -> None:
        self._stop.set()
        self.wake.set()
        if self._main:
            with contextlib.suppress(asyncio.CancelledError):
                await self._main
        for task in list(self.running):
            task.cancel()
        for task in list(self.running):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
        with contextlib.suppress(ValueError):
            self.db.on_jobs.remove(self.poke)

    async def _loop(self) -> None:
        while not self._stop.is_set():
            # A claim can succeed while the LISTEN connection is gone: check it on every turn.
            await self._ensure_listening()
            try:
                more, nxt = await self._claim()
            except Exception as e:  # database down: keep trying, never die
                log.warning("worker_claim_failed", error=str(e)[:200])
                await self._sleep(1.0)
                continue
            if more:
                continue
            delay = self.poll_s
            if nxt is not None:
                delay = max(0.0, min(delay, nxt - self.clock.now()))
            if delay > 0:
                await self._sleep(delay)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), timeout=seconds)
        self.wake.clear()

    async def _claim(self) -> tuple[bool, float | None]:
        """Claim what is due; (claim again at once?, when the next unclaimed job falls due)."""
        free = self.concurrency - len(self.running)
        if free <= 0:
            # Full: a finishing job wakes the loop (see `_done`).
            self._full = True
            await self._sleep(0.05)
            return False, None
        self.wake.clear()
        # Route jobs beyond `dispatch_concurrency` stay unclaimed: claim at most that many of any kind
        # while route slots are free, and only other kinds while they are not.
        route_free = self.dispatch_concurrency - self.routes_running
        skip = route_free <= 0
        limit = min(free, 100) if skip else min(free, route_free, 100)
        batch, nxt = await job_queue.claim_due_and_next(self.db, limit, self.lease_s, skip_routes=skip)
        for job in batch:
            if job.kind == JobKind.ROUTE:
                self.routes_running += 1
            task = asyncio.create_task(self._run(job))
            self.running.add(task)
            task.add_done_callback(self._done)
        # A full batch may have left more due work behind; a short one means nothing else is due now.
        # With route work held back, a finishing job must wake the loop (see `_done`), and the next
        # due time may be a route job's: sleep until woken or the poll instead.
        self._full = len(batch) >= free or skip
        if skip:
            return False, None
        return len(batch) >= limit, nxt

    def _done(self, task: asyncio.Task[None]) -> None:
        self.running.discard(task)
        if self._full:
            # Only a worker that had to leave due work unclaimed needs a new turn when a slot frees up.
            self._full = False
            self.wake.set()

    async def _run(self, job: StoredJob) -> None:
        try:
            await self._handle(job)
        finally:
            if job.kind == JobKind.ROUTE:
                self.routes_running -= 1

    async def _handle(self, job: StoredJob) -> None:
        try:
            typed = jobs.decode(job)
            handler = self.handlers.for_kind(typed.kind)
            order_id = job.payload.get("order_id") or _order_of_ref(job.payload.get("ref"))
            with logs.order_context(order_id, job_kind=job.kind, job_key=job.key):
                await handler(typed)
            self.jobs_done += 1
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.warning("job_failed", kind=job.kind, key=job.key, tries=job.tries, error=str(e)[:300])
            with contextlib.suppress(Exception):
                async with self.db.transaction() as tx:
                    await jobs.reschedule(tx, job, tx.now + retry_delay(job.tries), repr(e))


def _order_of_ref(ref: Any) -> str | None:
    parsed = parse_ref(ref) if isinstance(ref, str) else None
    return parsed[0] if parsed else None


async def start_worker(c: Container) -> Worker:
    return await Worker(c.settings, c.db, c.clock, c.job_handlers).start()


async def start_background(c: Container, *, worker: bool = True) -> Worker | None:
    """What every platform process (`topup serve`, `topup worker`) starts once the database is
    migrated: the job worker (unless `worker` is False), a balance check for every channel
    that can be asked and has none queued, and the daily `prune` job (services/retention.py)."""
    running = await start_worker(c) if worker else None
    await c.balance_watch.ensure_jobs()
    await c.retention.ensure_job()
    return running
