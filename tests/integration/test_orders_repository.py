"""One contract for the orders repository, run on SQLite, PostgreSQL and the in-memory fake: the fake the
failover unit tests run on behaves as the SQL the platform runs."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from topup.adapters.db.engine import Database
from topup.adapters.db.memory import MemoryDatabase
from topup.clock import FakeClock
from topup.domain.orders import AttemptStatus, ForbiddenTransition, Order, OrderStatus
from topup.services.ports.orders import DispatchReply, NewAttempt, OrderFilter, StoredCallback
from topup.services.uow import Transactions

T0 = 1_700_000_000.0


def _order(n: int, created_at: float, merchant_id: str = "m1") -> Order:
    return Order(
        id=f"ord_{n:03d}",
        merchant_id=merchant_id,
        merchant_order_id=f"O-{n}",
        request_hash="h",
        business_type="mobile_airtime",
        product_code="airtime.50",
        account="13800138000",
        face_value=5000,
        price=4980,
        status=OrderStatus.PROCESSING,
        funding="balance",
        created_at=created_at,
        updated_at=created_at,
        carrier="cmcc",
        extra={"note": "x"},
        group_code="air",
    )


def _attempt(order_id: str, no: int, channel: str) -> NewAttempt:
    ref = f"{order_id}-{no}"
    return NewAttempt(order_id, no, ref, channel, "air", "sent", T0 + 30, f"S{ref}")


async def contract(db: Transactions, clock: FakeClock) -> None:
    # Orders: one per merchant_order_id, read back as stored.
    async with db.transaction() as uow:
        assert await uow.orders.insert(_order(1, T0))
        assert not await uow.orders.insert(replace(_order(1, T0), id="ord_dup"))
        assert await uow.orders.insert(_order(2, T0 + 1))
        assert await uow.orders.insert(_order(3, T0 + 1, merchant_id="m2"))
    async with db.transaction() as uow:
        got = await uow.orders.lock("ord_001")
        assert got == _order(1, T0)
        assert await uow.orders.get("ord_001", "m2") is None
        assert (await uow.orders.by_merchant_order_id("m1", "O-2")) == _order(2, T0 + 1)
        page = await uow.orders.page(OrderFilter(merchant_id="m1"), 10)
        assert [o.id for o in page] == ["ord_002", "ord_001"]
        after = await uow.orders.page(OrderFilter(), 10, (T0 + 1, "ord_003"))
        assert [o.id for o in after] == ["ord_002", "ord_001"]
        await uow.orders.save_plan("ord_001", ["supA", "supB"], True, 0)

    # Attempts: stored pending, replies recorded, moves decided by the stored status.
    clock.advance(1)
    async with db.transaction() as uow:
        await uow.orders.add_attempt(_attempt("ord_001", 1, "supA"))
        await uow.orders.count_attempts("ord_001", 1)
    async with db.transaction() as uow:
        order = await uow.orders.lock("ord_001")
        assert order is not None
        assert (order.route_plan, order.is_probe, order.attempt_count) == (["supA", "supB"], True, 1)
        first = await uow.orders.attempt("ord_001-1")
        assert first is not None
        assert (first.status, first.dispatch_state, first.started_at) == (
            AttemptStatus.PENDING,
            "sent",
            T0 + 1,
        )
        assert await uow.orders.attempt_by_supplier_ref("supA", "Sord_001-1") == first
        due = await uow.orders.due_attempt("ord_001-1")
        assert due is not None and (due.attempt, due.product_code) == (first, "airtime.50")
        reply = DispatchReply("SUP-1", 12.5, "accepted", T0 + 2, T0 + 32, 4900)
        replied = await uow.orders.record_reply("ord_001-1", reply)
        assert replied is not None
        assert (replied.deadline_at, replied.cost, replied.supplier_order_id) == (T0 + 32, 4900, "SUP-1")
        assert await uow.orders.record_reply("nope-1", reply) is None
        assert await uow.orders.move_attempt(first, AttemptStatus.ABANDONED, "timeout: no callback")
        assert (first.status, first.reason, first.finished_at) == (
            AttemptStatus.ABANDONED,
            "timeout: no callback",
            T0 + 1,
        )
        stale = replace(first, status=AttemptStatus.PENDING)
        assert not await uow.orders.move_attempt(stale, AttemptStatus.FAILED, "supplier_failed: E1")
        # A late success still lands on an abandoned attempt; a deadline after it changes nothing.
        assert await uow.orders.move_attempt(stale, AttemptStatus.SUCCEEDED)
        assert await uow.orders.attempt_status(first.id) == AttemptStatus.SUCCEEDED
        assert not await uow.orders.move_attempt(first, AttemptStatus.SUCCEEDED)
        with pytest.raises(ForbiddenTransition):
            await uow.orders.move_attempt(first, AttemptStatus.PENDING)
        late = await uow.orders.record_reply("ord_001-1", reply._replace(deadline_at=T0 + 99))
        assert late is not None and late.deadline_at == T0 + 32  # moves only while pending
        await uow.orders.add_attempt(_attempt("ord_001", 2, "supB"))
        second = await uow.orders.attempt("ord_001-2")
        assert second is not None
        await uow.orders.extend_deadline(second.id, T0 + 40)
    async with db.transaction() as uow:
        attempts = await uow.orders.attempts("ord_001")
        assert [(a.no, a.status) for a in attempts] == [
            (1, AttemptStatus.SUCCEEDED),
            (2, AttemptStatus.PENDING),
        ]
        assert attempts[1].deadline_at == T0 + 40
        assert (await uow.orders.attempts_of(["ord_001", "ord_002"]))["ord_002"] == []
        assert await uow.orders.channel_outcomes("supA", 10) == [True]
        assert await uow.orders.channel_outcomes("supB", 10) == []

    # Orders move as the table allows, under the stored status.
    clock.advance(1)
    async with db.transaction() as uow:
        order = await uow.orders.lock("ord_001")
        assert order is not None
        stale_order = replace(order)
        assert await uow.orders.move(order, OrderStatus.SUCCEEDED, succeeded_ref="ord_001-1")
        assert (order.status, order.succeeded_ref, order.completed_at) == (
            OrderStatus.SUCCEEDED,
            "ord_001-1",
            T0 + 2,
        )
        assert not await uow.orders.move(stale_order, OrderStatus.FAILED, failure_reason="lost")
        with pytest.raises(ForbiddenTransition):
            await uow.orders.move(order, OrderStatus.FAILED, failure_reason="too late")
        other = await uow.orders.lock("ord_002")
        assert other is not None
        assert await uow.orders.move(other, OrderStatus.FAILED, failure_reason="r" * 600)
        assert other.failure_reason == "r" * 500
    async with db.transaction() as uow:
        stored = await uow.orders.get("ord_001")
        assert stored is not None and stored.status == OrderStatus.SUCCEEDED

    # Callbacks once per (channel, ref, status); exceptions once per (kind, ref).
    async with db.transaction() as uow:
        callback = StoredCallback("supA", "ord_001-1", "success", "SUP-1", None, None)
        assert await uow.orders.store_callback(callback)
        assert not await uow.orders.store_callback(callback)
        assert await uow.orders.store_callback(callback._replace(status="failed"))
        await uow.orders.set_callback_outcome(callback, "duplicate_fulfilment")
        await uow.orders.add_exception("late_success", "ord_001", "ord_001-1", "supA", {"a": 1})
        await uow.orders.add_exception("late_success", "ord_001", "ord_001-1", "supA", {"a": 2})
        uow.orders.add_event("ord_001", 1, "exception", {"kind": "late_success"})


def test_sql_orders_repository(database_url: str) -> None:
    async def main() -> None:
        clock = FakeClock(T0)
        db = Database(database_url, clock, pool_size=2)
        try:
            await contract(db, clock)
            async with db.reads() as tx:
                callbacks = await tx.fetch("SELECT status, outcome FROM callbacks ORDER BY status")
                exceptions = await tx.fetch("SELECT kind, ref FROM exceptions")
                events = await tx.fetch("SELECT kind, attempt_no FROM order_events")
        finally:
            await db.dispose()
        assert [(r.status, r.outcome) for r in callbacks] == [
            ("failed", None),
            ("success", "duplicate_fulfilment"),
        ]
        assert [(r.kind, r.ref) for r in exceptions] == [("late_success", "ord_001-1")]
        assert [(r.kind, r.attempt_no) for r in events] == [("exception", 1)]

    asyncio.run(main())


def test_memory_orders_repository() -> None:
    async def main() -> None:
        clock = FakeClock(T0)
        db = MemoryDatabase(clock)
        await contract(db, clock)
        state = db.state
        assert sorted((k[2], v["outcome"]) for k, v in state.callbacks.items()) == [
            ("failed", None),
            ("success", "duplicate_fulfilment"),
        ]
        assert list(state.exceptions) == [("late_success", "ord_001-1")]
        assert [(e.kind, e.attempt_no) for e in state.events] == [("exception", 1)]

    asyncio.run(main())
