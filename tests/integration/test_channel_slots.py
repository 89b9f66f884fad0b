"""A supplier that hangs keeps to a bounded share of a worker's dispatch slots, not all of them.

Real platform and simulator, both databases: the worker may run four route jobs at a time, and a slow
channel (a dispatch out over 1 s) gets at most two in flight. supA answers every dispatch only after
3 s; supB (another group) answers at once. Two supA orders go out; once they have been out for over a
second supA is slow, and two more supA orders arrive, then four supB orders: the new supA orders are
deferred (and go out only as supA's first two end) and the supB orders go out at once. Before
per-channel slots, the two new supA dispatches took the last two route slots and supB waited for
supA's replies.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import orjson
from tests.conftest import start_platform
from tests.support.platform import peak_overlap, sim_channel

from topup.adapters.db.engine import Database
from topup.clock import Clock

HANG_S = 3.0


async def _attempts(database_url: str, count: int = 0, replied: bool = True) -> list[Any]:
    """Every attempt with its order's completion, once there are `count` of them and (`replied`) every
    dispatch reply is recorded (a callback can be applied before its dispatch reply)."""
    db = Database(database_url, Clock(), pool_size=1)
    try:
        for _ in range(200):
            async with db.transaction() as tx:
                rows = await tx.fetch(
                    "SELECT a.channel_code, a.started_at, a.dispatched_at, a.latency_ms, o.completed_at"
                    " FROM attempts a JOIN orders o ON o.id = a.order_id"
                )
            if len(rows) >= count and (not replied or all(r.latency_ms is not None for r in rows)):
                break
            await asyncio.sleep(0.05)
        return rows
    finally:
        await db.dispose()


async def _deferred_job(database_url: str, min_deferrals: int) -> Any:
    """A route job deferred at least `min_deferrals` times, as soon as there is one (or None)."""
    db = Database(database_url, Clock(), pool_size=1)
    try:
        for _ in range(100):
            async with db.transaction() as tx:
                rows = await tx.fetch("SELECT payload, tries FROM jobs WHERE kind = 'route'")
            for r in rows:
                payload = orjson.loads(r.payload) if isinstance(r.payload, str) else r.payload
                if payload.get("deferrals", 0) >= min_deferrals:
                    return r
            await asyncio.sleep(0.05)
        return None
    finally:
        await db.dispose()


def test_a_hanging_supplier_does_not_hold_back_other_channels(database_url: str, sim: Any) -> None:
    server, p = start_platform(
        database_url, worker_dispatch_concurrency=4, worker_channel_concurrency=2, worker_channel_slow_s=1.0
    )
    try:
        slow = sim_channel(sim, "supA", reply_latency_s=HANG_S, callback_delay_s=0.05)
        fast = sim_channel(sim, "supB", callback_delay_s=0.05)
        p.channel("supA", slow, timeout_s=10.0, max_wait_s=20.0)
        p.channel("supB", fast, timeout_s=10.0, max_wait_s=20.0)
        p.product("airtime.50")
        p.product("data.cmcc.1g", business_type="mobile_data", brand="cmcc", face_value=3000, price=2900)
        p.group("air", "mobile_airtime", [{"channel": "supA", "priority": 1, "weight": 1}])
        p.group("data", "mobile_data", [{"channel": "supB", "priority": 1, "weight": 1}])
        m = p.merchant(balance=1_000_000)

        slow_ids = [m.order(f"HANG-{i}").json()["order_id"] for i in range(2)]
        # Wait until supA's two attempts have been out 1.2 s (slow: past `worker_channel_slow_s`).
        first = asyncio.run(_attempts(p.database_url, count=2, replied=False))
        time.sleep(max(0.0, max(r.started_at for r in first) + 1.2 - time.time()))
        slow_ids += [m.order(f"HANG-{i}").json()["order_id"] for i in range(2, 4)]
        fast_ids = [m.order(f"FAST-{i}", product_code="data.cmcc.1g").json()["order_id"] for i in range(4)]
        # While supA is slow a deferred route job is put back again and again; that is not a failed
        # try (the worker's error backoff must not grow with it), the payload counts the deferrals.
        job = asyncio.run(_deferred_job(p.database_url, min_deferrals=2))
        assert job is not None and job.tries == 0, job
        # Operators see the waiting orders by channel.
        metrics = httpx.get(f"{p.url}/metrics", trust_env=False).text
        assert 'topup_dispatch_deferred{channel="supA"} 2.0' in metrics, metrics
        for order_id in fast_ids + slow_ids:
            assert p.wait_order(order_id, timeout_s=45)["status"] == "succeeded"

        attempts = asyncio.run(_attempts(p.database_url))
        a_spans = [
            (r.started_at, r.dispatched_at + r.latency_ms / 1000)
            for r in attempts
            if r.channel_code == "supA"
        ]
        assert len(a_spans) == 4 and all(end - start >= HANG_S - 0.1 for start, end in a_spans)
        first_a_reply = min(end for _, end in a_spans)
        b_done = [r.completed_at for r in attempts if r.channel_code == "supB"]
        assert len(b_done) == 4
        # supB's orders finished while supA's first dispatches were still waiting for their reply.
        assert max(b_done) < first_a_reply, (b_done, a_spans)

        # supA never had more than two dispatches in flight.
        assert peak_overlap(a_spans) == 2, a_spans

        # The orders that had to wait say so on their timeline: the two that came while supA was stuck.
        deferred = [
            i for i in slow_ids if any(e["kind"] == "dispatch_deferred" for e in p.admin_order(i)["timeline"])
        ]
        assert deferred == slow_ids[2:], deferred
        # Once each on the timeline, however many times it was deferred.
        for order_id in deferred:
            kinds = [e["kind"] for e in p.admin_order(order_id)["timeline"]]
            assert kinds.count("dispatch_deferred") == 1, kinds
        assert p.ledger_check()["balanced"] is True
    finally:
        p.admin.close()
        server.stop()
