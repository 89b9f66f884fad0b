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

from tests.conftest import start_platform
from tests.support.platform import Platform, peak_overlap, setup_airtime

from topup.adapters.db.engine import Database
from topup.adapters.suppliers.fake import FakeSupplier
from topup.clock import Clock
from topup.domain.suppliers import QueryOutcome
from topup.services import jobs
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

            fake = FakeSupplier(default_query=QueryOutcome("processing", http_status=200))
            suppliers = {"topup-json": fake}
            f = Fulfilment(db=db, cache=ConfigCache(), suppliers=suppliers, callback_base="http://unused")

            def as_job(row: Any) -> Job[jobs.DeadlinePayload]:
                payload = jobs.DeadlinePayload(ref)
                return Job(int(row.id), jobs.JobKind.DEADLINE, row.key, payload, int(row.tries))

            # 2. A deadline job that runs before the attempt's deadline (the reply moved the deadline
            # while the job was claimed) goes back to sleep until then: no query.
            await f.handle_deadline(as_job(job))
            assert fake.query_calls == []
            (job,) = await _fetch(db, "SELECT * FROM jobs WHERE key = $1", f"deadline:{ref}")
            assert abs(job.run_at - attempt.deadline_at) < 1e-3

            # 3. A deadline that finds the dispatch still on its way (`sent`) waits for it: no query.
            now = time.time()
            sent = (
                "UPDATE attempts SET dispatch_state = 'sent', started_at = $1, deadline_at = $2"
                " WHERE ref = $3"
            )
            await _exec(db, sent, now, now + TIMEOUT_S, ref)
            await f.handle_deadline(as_job(job))
            assert fake.query_calls == []
            (job,) = await _fetch(db, "SELECT * FROM jobs WHERE key = $1", f"deadline:{ref}")
            assert now < job.run_at <= now + 2 * TIMEOUT_S + DISPATCH_GRACE_S
            (row,) = await _fetch(db, "SELECT status FROM attempts WHERE ref = $1", ref)
            assert row.status == "pending"

            # 4. Past the grace period (the worker that stored it died): ask the supplier as usual.
            await _exec(db, sent, now - 3 * TIMEOUT_S, now - 2 * TIMEOUT_S, ref)
            await f.handle_deadline(as_job(job))
            assert [c.ref for c in fake.query_calls] == [ref]
        finally:
            await db.dispose()

    asyncio.run(scenario())
    # The query answered `processing`: the order waits on, still on its first attempt.
    order = m.get(f"/v1/orders/{order_id}").json()
    assert order["status"] == "processing" and [a["status"] for a in order["attempts"]] == ["pending"]


def test_a_burst_reaches_suppliers_at_most_dispatch_concurrency_at_a_time(
    database_url: str, sim: Any
) -> None:
    # Each dispatch takes 0.3 s to answer; eight orders arrive at once; the worker may run two
    # route jobs (store attempt + dispatch) at a time, so no more than two are ever in flight. (The
    # inline first dispatch has its own bound, tested in test_inline_dispatch.py: off here.)
    server, p = start_platform(database_url, worker_dispatch_concurrency=2, inline_dispatch_max=0)
    try:
        setup_airtime(
            p,
            sim,
            {"supA": {"reply_latency_s": 0.3, "callback_delay_s": 0.4}},
            timeout_s=5.0,
            max_wait_s=10.0,
        )
        m = p.merchant(balance=100_000)
        ids = [m.order(f"CAP-{i}").json()["order_id"] for i in range(8)]
        for order_id in ids:
            assert p.wait_order(order_id, timeout_s=30)["status"] == "succeeded"

        async def spans() -> list[tuple[float, float]]:
            db = Database(p.database_url, Clock(), pool_size=1)
            try:
                # Every reply recorded (a callback may be applied before its dispatch reply).
                for _ in range(200):
                    rows = await _fetch(db, "SELECT started_at, dispatched_at, latency_ms FROM attempts")
                    if all(r.latency_ms is not None for r in rows):
                        break
                    await asyncio.sleep(0.05)
            finally:
                await db.dispose()
            # From storing the attempt to the supplier's reply: the time a route job holds its slot.
            return [(r.started_at, r.dispatched_at + r.latency_ms / 1000) for r in rows]

        intervals = asyncio.run(spans())
        assert len(intervals) == 8
        assert all(end - start >= 0.25 for start, end in intervals)
        # The most attempts in flight at any moment (an attempt's end is its reply).
        assert peak_overlap(intervals) == 2, intervals
        assert p.ledger_check()["balanced"] is True
    finally:
        p.admin.close()
        server.stop()
