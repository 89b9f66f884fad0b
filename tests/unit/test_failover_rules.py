"""The routing engine's failover rules, on the in-memory unit of work: no database, no network, no sleep.

The real `Fulfilment` routes orders placed by the real intake (`services.orders.place_order`) to a
`FakeSupplier` answering per channel; a fake clock jumps to each due job, so deadlines, waits and the
recovery window cost nothing. The same behaviours run over HTTP in `tests/integration/test_routing.py`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pytest

from topup.adapters.db.memory import MemoryDatabase, add_channel, add_group, add_product, credit
from topup.adapters.suppliers.fake import DispatchCall, FakeSupplier, QueryCall
from topup.clock import FakeClock
from topup.domain import ledger as L
from topup.domain.orders import AttemptStatus, ForbiddenTransition, Order, OrderStatus
from topup.domain.suppliers import CallbackData, DispatchOutcome, QueryOutcome
from topup.services import jobs, orders
from topup.services.catalog import ConfigCache
from topup.services.fulfilment import Fulfilment

MERCHANT = "m_test"
BALANCE = 1_000_000
PRICE = 4980
PRODUCT = "airtime.50"
ACCOUNT = "13800138000"

ACCEPTED = DispatchOutcome.accepted("sup-1")
SUCCEEDED = DispatchOutcome("succeeded", "sup-1")
REJECTED = DispatchOutcome.rejected("E01", "no stock")


class Rig:
    """One group `air` of channels tried in the given order, the engine, and a worker loop."""

    def __init__(
        self,
        channels: Mapping[str, DispatchOutcome],
        *,
        queries: Mapping[str, QueryOutcome] | None = None,
        sticky: bool = True,
        recovery_s: float = 300.0,
        timeout_s: float = 0.5,
        max_wait_s: float = 1.5,
        supports_query: bool = True,
        costs: Mapping[str, Mapping[str, int]] | None = None,
    ) -> None:
        self.clock = FakeClock()
        self.db = MemoryDatabase(self.clock)
        state = self.db.state
        add_product(state, PRODUCT, price=PRICE)
        for code in channels:
            add_channel(
                state, code, timeout_s=timeout_s, max_wait_s=max_wait_s, supports_query=supports_query
            )
        add_group(state, "air", list(channels), sticky=sticky, recovery_s=recovery_s, costs=costs)
        credit(state, MERCHANT, BALANCE)
        self.answers = dict(channels)
        self.queries = dict(queries or {})
        self.supplier = FakeSupplier(default_dispatch=self._dispatch, default_query=self._query)
        registry = {"topup-json": self.supplier}
        self.cache = ConfigCache(suppliers=registry)
        self.engine = Fulfilment(
            db=self.db, cache=self.cache, suppliers=registry, callback_base="http://platform.invalid"
        )

    def _dispatch(self, call: DispatchCall) -> DispatchOutcome:
        return self.answers[call.channel.code]

    def _query(self, call: QueryCall) -> QueryOutcome:
        return self.queries.get(call.channel.code, QueryOutcome("processing", http_status=200))

    # ---- driving ----------------------------------------------------------------------------------

    async def order(self, merchant_order_id: str = "O-1") -> str:
        """Place an order (the price is held and its route job queued)."""
        async with self.db.transaction() as uow:
            snap = await self.cache.get(uow)
            req = orders.OrderRequest(merchant_order_id, PRODUCT, ACCOUNT)
            out, created = await orders.place_order(uow, snap, MERCHANT, req)
        assert created
        return str(out["order_id"])

    async def run(self, wait_until: float = math.inf, max_jobs: int = 100) -> None:
        """Run due jobs as a worker would, the clock jumping to each, up to `wait_until`."""
        for _ in range(max_jobs):
            stored = self.db.claim_next(wait_until=wait_until)
            if stored is None:
                return
            job = jobs.decode(stored)
            if job.kind is jobs.JobKind.ROUTE:
                await self.engine.handle_route(job)
            elif job.kind is jobs.JobKind.DEADLINE:
                await self.engine.handle_deadline(job)
            else:
                async with self.db.transaction() as uow:
                    await jobs.finish(uow, job)
        raise AssertionError("jobs keep coming")

    async def callback(self, channel: str, ref: str, status: str, code: str | None = None) -> str:
        async with self.db.transaction() as uow:
            data = CallbackData(ref, status, code=code)  # type: ignore[arg-type]
            return await self.engine.receive_callback(uow, channel, data)

    # ---- reading ----------------------------------------------------------------------------------

    def get(self, order_id: str) -> Order:
        return self.db.state.orders[order_id]

    def tried(self, order_id: str) -> list[tuple[str, str]]:
        found = sorted(
            (a for a in self.db.state.attempts.values() if a.order_id == order_id), key=lambda a: a.no
        )
        return [(a.channel_code, str(a.status)) for a in found]

    def reasons(self, order_id: str) -> list[str | None]:
        found = sorted(
            (a for a in self.db.state.attempts.values() if a.order_id == order_id), key=lambda a: a.no
        )
        return [a.reason for a in found]

    def timeline(self, order_id: str) -> list[tuple[str, int | None]]:
        return [(e.kind, e.attempt_no) for e in self.db.state.events if e.order_id == order_id]

    def balance(self) -> tuple[int, int]:
        b = self.db.state.balances
        return b.get(L.available_account(MERCHANT), 0), b.get(L.held_account(MERCHANT), 0)

    def active_channel(self) -> str | None:
        return self.db.state.group_states["air"].active_channel

    def switches(self) -> list[tuple[str | None, str, str]]:
        return [(s["from_channel"], s["to_channel"], s["reason"]) for s in self.db.state.switches]

    def exceptions(self) -> list[tuple[str, str | None, str | None]]:
        return [(e["kind"], e["order_id"], e["channel_code"]) for e in self.db.state.exceptions.values()]

    def transfer_kinds(self, order_id: str) -> list[str]:
        return [t["kind"] for t in self.db.state.transfers.values() if t["order_id"] == order_id]

    def assert_books_balance(self) -> None:
        assert sum(self.db.state.balances.values()) == 0


async def test_rejection_fails_over_and_moves_the_active_channel() -> None:
    rig = Rig({"supA": REJECTED, "supB": SUCCEEDED, "supC": SUCCEEDED})
    first = await rig.order("R-1")
    await rig.run()
    assert rig.get(first).status == OrderStatus.SUCCEEDED
    assert rig.tried(first) == [("supA", "failed"), ("supB", "succeeded")]
    assert (rig.reasons(first)[0] or "").startswith("rejected: E01")
    assert rig.active_channel() == "supB"
    assert rig.switches() == [("supA", "supB", "failover")]
    # Later orders start at the active channel.
    second = await rig.order("R-2")
    await rig.run()
    assert rig.tried(second) == [("supB", "succeeded")]
    assert rig.balance() == (BALANCE - 2 * PRICE, 0)
    rig.assert_books_balance()


async def test_failure_callback_fails_over() -> None:
    rig = Rig({"supA": ACCEPTED, "supB": SUCCEEDED})
    order_id = await rig.order()
    await rig.run(wait_until=rig.clock.now())  # dispatched; no deadline yet
    assert rig.tried(order_id) == [("supA", "pending")]
    assert await rig.callback("supA", f"{order_id}-1", "failed", "E42") == "failed_over"
    assert await rig.callback("supA", f"{order_id}-1", "failed", "E42") == "repeat"
    await rig.run()
    assert rig.tried(order_id) == [("supA", "failed"), ("supB", "succeeded")]
    assert rig.reasons(order_id)[0] == "supplier_failed: E42"
    assert rig.get(order_id).status == OrderStatus.SUCCEEDED
    kinds = [k for k, _ in rig.timeline(order_id)]
    assert "callback" in kinds and "dispatch_reply" in kinds


async def test_silence_then_query_not_found_fails_over() -> None:
    rig = Rig({"supA": ACCEPTED, "supB": SUCCEEDED}, queries={"supA": QueryOutcome("not_found")})
    order_id = await rig.order()
    await rig.run()
    assert rig.tried(order_id) == [("supA", "failed"), ("supB", "succeeded")]
    assert rig.reasons(order_id)[0] == "query_not_found"
    assert [q.req.ref for q in rig.supplier.query_calls] == [f"{order_id}-1"]


async def test_query_success_completes_without_a_callback() -> None:
    rig = Rig({"supA": ACCEPTED, "supB": SUCCEEDED}, queries={"supA": QueryOutcome("success")})
    order_id = await rig.order()
    await rig.run()
    assert rig.tried(order_id) == [("supA", "succeeded")]
    assert rig.get(order_id).status == OrderStatus.SUCCEEDED
    assert rig.active_channel() is None  # never moved


async def test_processing_extends_until_max_wait_then_abandons_and_late_success_is_an_exception() -> None:
    rig = Rig({"supA": ACCEPTED, "supB": SUCCEEDED}, timeout_s=0.5, max_wait_s=1.5)
    start = rig.clock.now()
    order_id = await rig.order()
    await rig.run()
    assert rig.tried(order_id) == [("supA", "abandoned"), ("supB", "succeeded")]
    # Asked at +0.5 and +1.0 (processing: wait another timeout_s), abandoned at max_wait (+1.5).
    queries = [(e.at - start, e.detail["status"]) for e in rig.db.state.events if e.kind == "query"]
    assert [(round(at, 3), status) for at, status in queries] == [
        (0.5, "processing"),
        (1.0, "processing"),
        (1.5, "processing"),
    ]
    kinds = rig.timeline(order_id)
    assert kinds.index(("attempt_abandoned", 1)) < kinds.index(("dispatch", 2))
    # supA's success arrives after the order succeeded at supB: recorded, charged once.
    assert await rig.callback("supA", f"{order_id}-1", "success") == "duplicate_fulfilment"
    assert rig.tried(order_id) == [("supA", "succeeded"), ("supB", "succeeded")]
    assert rig.exceptions() == [("duplicate_fulfilment", order_id, "supA")]
    assert rig.balance() == (BALANCE - PRICE, 0)
    assert rig.transfer_kinds(order_id) == ["hold", "capture"]
    rig.assert_books_balance()


async def test_late_success_after_the_order_failed_is_an_exception_and_the_refund_stands() -> None:
    rig = Rig({"supA": ACCEPTED}, supports_query=False, costs={"supA": {PRODUCT: 4900}})
    order_id = await rig.order()
    await rig.run()
    assert rig.get(order_id).status == OrderStatus.FAILED
    assert rig.balance() == (BALANCE, 0)
    assert await rig.callback("supA", f"{order_id}-1", "success") == "late_success"
    assert rig.get(order_id).status == OrderStatus.FAILED
    assert rig.exceptions() == [("late_success", order_id, "supA")]
    assert rig.balance() == (BALANCE, 0)
    # The supplier did the top-up: its cost is owed all the same.
    assert rig.transfer_kinds(order_id) == ["hold", "release", "cost"]
    rig.assert_books_balance()


async def test_no_query_support_abandons_at_timeout_without_asking() -> None:
    rig = Rig({"supA": ACCEPTED, "supB": SUCCEEDED}, supports_query=False)
    order_id = await rig.order()
    await rig.run()
    assert rig.tried(order_id) == [("supA", "abandoned"), ("supB", "succeeded")]
    assert rig.reasons(order_id)[0] == "timeout: no callback"
    assert rig.supplier.query_calls == []


async def test_every_channel_failing_fails_the_order_and_refunds() -> None:
    rig = Rig({"supA": REJECTED, "supB": DispatchOutcome("failed", code="E9")})
    order_id = await rig.order()
    await rig.run()
    order = rig.get(order_id)
    assert order.status == OrderStatus.FAILED
    assert rig.tried(order_id) == [("supA", "failed"), ("supB", "failed")]
    assert (order.failure_reason or "").startswith("all_channels_failed: supplier_failed: E9")
    assert rig.balance() == (BALANCE, 0)
    assert rig.transfer_kinds(order_id) == ["hold", "release"]
    assert [e["type"] for e in rig.db.state.outbox] == ["order.failed"]
    rig.assert_books_balance()


async def test_sticky_switch_returns_to_the_home_channel_after_recovery() -> None:
    rig = Rig({"supA": REJECTED, "supB": SUCCEEDED}, recovery_s=60.0)
    await rig.order("S-1")
    await rig.run()
    assert rig.active_channel() == "supB"
    rig.answers["supA"] = SUCCEEDED  # supA is healthy again
    # Within the recovery window later orders stay on the active channel.
    rig.clock.advance(30)
    within = await rig.order("S-2")
    await rig.run()
    assert rig.tried(within) == [("supB", "succeeded")]
    # Past it, one order probes the home channel; its success switches the group back.
    rig.clock.advance(31)
    probe = await rig.order("S-3")
    await rig.run()
    assert rig.tried(probe) == [("supA", "succeeded")]
    assert rig.get(probe).is_probe
    assert rig.active_channel() == "supA"
    assert rig.switches() == [("supA", "supB", "failover"), ("supB", "supA", "recovered")]


async def test_a_group_that_is_not_sticky_keeps_no_active_channel() -> None:
    rig = Rig({"supA": REJECTED, "supB": SUCCEEDED}, sticky=False)
    for n in (1, 2):
        order_id = await rig.order(f"N-{n}")
        await rig.run()
        assert rig.tried(order_id) == [("supA", "failed"), ("supB", "succeeded")]
    assert rig.switches() == []


async def test_success_after_a_failure_callback_is_an_exception() -> None:
    rig = Rig({"supA": ACCEPTED, "supB": SUCCEEDED})
    order_id = await rig.order()
    await rig.run(wait_until=rig.clock.now())
    assert await rig.callback("supA", f"{order_id}-1", "failed") == "failed_over"
    await rig.run()
    assert await rig.callback("supA", f"{order_id}-1", "success") == "success_after_failure"
    assert rig.tried(order_id) == [("supA", "failed"), ("supB", "succeeded")]
    assert rig.exceptions() == [("success_after_failure", order_id, "supA")]


async def test_a_callback_and_a_deadline_racing_finish_the_attempt_once() -> None:
    rig = Rig({"supA": ACCEPTED, "supB": ACCEPTED})
    order_id = await rig.order()
    await rig.run(wait_until=rig.clock.now())
    async with rig.db.transaction() as uow:
        attempt = await uow.orders.attempt(f"{order_id}-1")
        assert attempt is not None
        late = await uow.orders.attempt(f"{order_id}-1")
        assert await rig.engine.fail_attempt(uow, attempt, "timeout: no callback", AttemptStatus.ABANDONED)
        assert late is not None and late.status == AttemptStatus.PENDING  # read before the move
        assert not await rig.engine.fail_attempt(uow, late, "supplier_failed: E1")
    assert rig.tried(order_id) == [("supA", "abandoned")]
    route_jobs = [j for j in rig.db.state.jobs.values() if j.kind == "route"]
    assert len(route_jobs) == 1


async def test_an_order_moves_only_as_the_transition_table_allows() -> None:
    rig = Rig({"supA": SUCCEEDED})
    order_id = await rig.order()
    await rig.run()
    async with rig.db.transaction() as uow:
        order = await uow.orders.lock(order_id)
        assert order is not None and order.status == OrderStatus.SUCCEEDED
        with pytest.raises(ForbiddenTransition):
            await uow.orders.move(order, OrderStatus.FAILED, failure_reason="too late")
    # A stale copy (processing) loses against the stored status instead of overwriting it.
    stale = Order(**{**vars(rig.get(order_id)), "status": OrderStatus.PROCESSING})
    async with rig.db.transaction() as uow:
        assert not await uow.orders.move(stale, OrderStatus.FAILED, failure_reason="lost race")
    assert rig.get(order_id).status == OrderStatus.SUCCEEDED


async def test_a_rollback_leaves_nothing_behind() -> None:
    rig = Rig({"supA": SUCCEEDED})
    before = vars(rig.db.state).copy()
    with pytest.raises(RuntimeError):
        async with rig.db.transaction() as uow:
            snap = await rig.cache.get(uow)
            await orders.place_order(uow, snap, MERCHANT, orders.OrderRequest("RB-1", PRODUCT, ACCOUNT))
            raise RuntimeError("boom")
    assert rig.db.state.orders == {} and rig.db.state.jobs == {}
    assert rig.db.state.balances == before["balances"]
