"""The channel's time runs from the dispatch, not from when the attempt was stored.

An overloaded worker may store an attempt and send it a while later; the supplier must not be blamed
for that wait (its `timeout_s` and the status query come after the dispatch). Runs on SQLite and
PostgreSQL: a real platform and simulator place the order; the deadline handler is then driven
in-process against the same database with a scripted supplier client, so the test sees exactly
whether the supplier was asked.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.support.platform import Platform, setup_airtime

from topup.adapters.db.engine import Database
from topup.adapters.suppliers.topup_json import FakeSupplierClient, QueryOutcome
from topup.clock import Clock
from topup.services.catalog import ConfigCache
from topup.services.fulfilment import DISPATCH_GRACE_S, Fulfilment
from topup.services.jobs import Job

TIMEOUT_S = 30.0  # long: the platform's own worker must not run this deadline during the test


async def _fetch(db: Database, sql: str, *args: Any) -> list[Any]:
    async with db.transaction() as tx:
        return await tx.fetch(sql, *args)


async def _exec(db: Database, sql: str, *args: Any) -> None:
    async with db.transaction() as tx:
        await tx.exec(sql, *args)


def test_deadline_counts_from_the_dispatch_reply(platform: Platform, sim: Any) -> None:
    # supA accepts and then never calls back: the attempt stays pending with its deadline job queued.
    setup_airtime(platform, sim, {"supA": {"silent_ratio": 1.0}}, timeout_s=TIMEOUT_S, max_wait_s=60.0)
    m = platform.merchant(balance=100_000)
    order_id = m.order("DL-1").json()["order_id"]
    ref = f"{order_id}-1"

    async def scenario() -> None:
        db = Database(platform.database_url, Clock(), pool_size=2)
        try:
            # 1. The reply moved the attempt from `sent` to `accepted`; the deadline runs from the send.
            async def replied() -> Any:
                rows = await _fetch(db, "SELECT * FROM attempts WHERE ref = $1", ref)
                return rows[0] if rows and rows[0].dispatch_state != "sent" else None

            deadline = time.monotonic() + 10
            attempt = await replied()
            while attempt is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                attempt = await replied()
            assert attempt is not None, "the dispatch reply was never recorded"
            assert attempt.dispatch_state == "accepted" and attempt.status == "pending"
            assert attempt.dispatched_at >= attempt.started_at
            (job,) = await _fetch(db, "SELECT * FROM jobs WHERE key = $1", f"deadline:{ref}")
            assert abs(job.run_at - (attempt.dispatched_at + TIMEOUT_S)) < 1e-3
            assert abs(attempt.deadline_at - job.run_at) < 1e-3

            fake = FakeSupplierClient(default_query=QueryOutcome("processing", http_status=200))
            f = Fulfilment(db=db, cache=ConfigCache(), supplier=fake, callback_base="http://unused")

            def as_job(row: Any) -> Job:
                return Job(int(row.id), row.kind, row.key, {"ref": ref}, int(row.tries))

            # 2. A deadline that finds the dispatch still on its way (`sent`) waits for it: no query.
            now = time.time()
            await _exec(
                db, "UPDATE attempts SET dispatch_state = 'sent', started_at = $1 WHERE ref = $2", now, ref
            )
            await f.handle_deadline(as_job(job))
            assert fake.query_calls == []
            (job,) = await _fetch(db, "SELECT * FROM jobs WHERE key = $1", f"deadline:{ref}")
            assert now < job.run_at <= now + 2 * TIMEOUT_S + DISPATCH_GRACE_S
            assert (await _fetch(db, "SELECT status FROM attempts WHERE ref = $1", ref))[
                0
            ].status == "pending"

            # 3. Past the grace period (the worker that stored it died): ask the supplier as usual.
            await _exec(db, "UPDATE attempts SET started_at = $1 WHERE ref = $2", now - 3 * TIMEOUT_S, ref)
            await f.handle_deadline(as_job(job))
            assert [c.ref for c in fake.query_calls] == [ref]
        finally:
            await db.dispose()

    asyncio.run(scenario())
    # The query answered `processing`: the order waits on, still on its first attempt.
    order = m.get(f"/v1/orders/{order_id}").json()
    assert order["status"] == "processing" and [a["status"] for a in order["attempts"]] == ["pending"]
