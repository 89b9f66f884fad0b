"""PostgreSQL transactions are driven by hand on the pooled connection (BEGIN ... tail; COMMIT): whatever
happens inside one, the connection goes back to the pool outside any transaction, and nothing a broken
or cancelled unit of work did is ever committed by the next one."""

from __future__ import annotations

import asyncio

import pytest

from topup.adapters.db.engine import Database, migrate
from topup.clock import Clock

INSERT = "INSERT INTO jobs (kind, key, payload, run_at, tries, created_at) VALUES ('t', $1, NULL, 0, 0, 0)"


async def _keys(db: Database) -> set[str]:
    async with db.reads() as tx:
        return {r.key for r in await tx.fetch("SELECT key FROM jobs WHERE kind = 't'")}


def _run(pg_url: str, scenario) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        db = Database(pg_url, Clock(), pool_size=1)  # one connection: every unit of work reuses it
        try:
            await migrate(db)
            await scenario(db)
        finally:
            await db.dispose()

    asyncio.run(main())


@pytest.mark.pg
def test_work_left_in_an_open_transaction_is_rolled_back_not_committed_by_the_next(pg_url: str) -> None:
    async def scenario(db: Database) -> None:
        async with db.reads() as tx:
            # Simulate a leak: the connection goes back to the pool inside a transaction.
            await tx.raw.execute("BEGIN")
            await tx.exec(INSERT, "leaked")
            assert tx.raw.is_in_transaction()
        async with db.transaction() as tx:
            await tx.exec(INSERT, "kept")
        assert await _keys(db) == {"kept"}

    _run(pg_url, scenario)


@pytest.mark.pg
def test_a_failed_or_cancelled_unit_of_work_leaves_nothing_behind(pg_url: str) -> None:
    async def scenario(db: Database) -> None:
        with pytest.raises(RuntimeError):
            async with db.transaction() as tx:
                await tx.exec(INSERT, "raised")
                raise RuntimeError("boom")

        started = asyncio.Event()

        async def cancelled() -> None:
            async with db.transaction() as tx:
                await tx.exec(INSERT, "cancelled")
                started.set()
                await asyncio.sleep(30)

        task = asyncio.create_task(cancelled())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        async with db.transaction() as tx:
            await tx.exec(INSERT, "after")
            assert not (await tx.fetch("SELECT 1 FROM jobs WHERE key IN ('raised', 'cancelled')"))
        async with db.reads() as tx:
            assert not tx.raw.is_in_transaction()
        assert await _keys(db) == {"after"}

    _run(pg_url, scenario)
