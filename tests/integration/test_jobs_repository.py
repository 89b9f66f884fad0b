"""The job queue names a claimed job by id AND key: SQLite hands a deleted row's id to the next insert,
so a handler that deletes a job and queues another in one unit of work (a deadline failing over: its
own job goes, the route job comes) must still finish its own job, never the new one."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from topup.adapters.db.engine import Database
from topup.adapters.db.memory import MemoryDatabase
from topup.adapters.db.memory.jobs import claim as claim_row
from topup.adapters.db.repos import jobs as job_queue
from topup.clock import FakeClock
from topup.services import jobs
from topup.services.ports.jobs import StoredJob
from topup.services.uow import Transactions

T0 = 1_700_000_000.0


Claim = Callable[[], Awaitable[list[StoredJob]]]


async def contract(db: Transactions, claim: Claim) -> list[str]:
    """Queue a deadline job, claim it, then in one unit: delete it by key, queue a route job (which
    SQLite gives the same id), finish the claimed deadline job. The route job must remain."""
    async with db.transaction() as uow:
        await jobs.enqueue(uow, jobs.DeadlinePayload("ord_1-1"))
    claimed = await claim()
    assert [j.key for j in claimed] == ["deadline:ord_1-1"]
    deadline = claimed[0]
    async with db.transaction() as uow:
        await jobs.delete_key(uow, deadline.key)
        await jobs.enqueue(uow, jobs.RoutePayload("ord_1"))
        await jobs.finish(uow, deadline)
    async with db.transaction() as uow:
        # Moving or deferring the gone job must not touch the route job either.
        await jobs.reschedule(uow, deadline, T0 + 999)
        await jobs.defer(uow, deadline, T0 + 999, jobs.DeadlinePayload("ord_1-1"))
    later = await claim()
    return [f"{j.key}@{j.tries}" for j in later]


def test_sql_finish_names_the_job_by_key(database_url: str) -> None:
    async def main() -> tuple[list[str], list[int]]:
        db = Database(database_url, FakeClock(T0), pool_size=2)
        try:

            async def claim() -> list[StoredJob]:
                return await job_queue.claim_due(db, 10, 30.0)

            left = await contract(db, claim)
            async with db.reads() as tx:
                ids = [int(r.id) for r in await tx.fetch("SELECT id FROM jobs")]
            return left, ids
        finally:
            await db.dispose()

    left, ids = asyncio.run(main())
    assert left == ["route:ord_1@1"]
    assert len(ids) == 1


def test_memory_finish_names_the_job_by_key() -> None:
    async def main() -> list[str]:
        clock = FakeClock(T0)
        db = MemoryDatabase(clock)

        async def claim() -> list[StoredJob]:
            due = [j for j in db.state.jobs.values() if j.locked_until is None and j.run_at <= clock.now()]
            return [claim_row(db.state, j, clock.now(), 30.0) for j in due]

        return await contract(db, claim)

    assert asyncio.run(main()) == ["route:ord_1@1"]
