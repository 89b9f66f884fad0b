"""Group commit (`adapters/db/group_commit.py`) on SQLite and PostgreSQL: concurrent callers share one
transaction and are answered after its COMMIT; a caller whose fn raises, or a group whose COMMIT fails,
gets each caller the outcome it would have had alone, nothing doubled; a group of one and the setting
switched off behave as before."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
from tests.support.money import MERCHANT, PRICE, PRODUCT, Money, accepted, rejected, succeeded

from topup.adapters.db.engine import Database, Tx
from topup.clock import Clock
from topup.config import Settings
from topup.domain.errors import InsufficientBalance, NotFound
from topup.domain.suppliers import CallbackData
from topup.entrypoints.api.deps import MerchantCtx
from topup.entrypoints.api.merchant_routes import place
from topup.entrypoints.api.schemas import OrderIn
from topup.services import jobs
from topup.services.jobs import Job, JobKind
from topup.services.uow import Declined, UnitOfWork

INSERT = "INSERT INTO jobs (kind, key, payload, run_at, tries, created_at) VALUES ('t', $1, NULL, 0, 0, 0)"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    d = Database(database_url, Clock(), pool_size=4)
    try:
        yield d
    finally:
        await d.dispose()


async def _rows(db: Database) -> Counter[str]:
    async with db.reads() as tx:
        return Counter(r.key for r in await tx.fetch("SELECT key FROM jobs WHERE kind = 't'"))


def _insert(key: str, calls: Counter[str] | None = None) -> Callable[[UnitOfWork], Awaitable[str]]:
    async def fn(uow: UnitOfWork) -> str:
        assert isinstance(uow, Tx)
        if calls is not None:
            calls[key] += 1
        await uow.exec(INSERT, key)
        if key.startswith("bad"):
            raise ValueError(key)
        return key

    return fn


async def test_concurrent_callers_share_one_transaction(db: Database) -> None:
    keys = [f"k{i}" for i in range(10)]
    before = db.commits
    results = await asyncio.gather(*(db.run_grouped(_insert(k)) for k in keys))
    assert results == keys
    assert db.commits - before == 1  # ten callers, one COMMIT
    assert db.group is not None
    assert (db.group.stats.groups, db.group.stats.grouped_calls, db.group.stats.sizes) == (1, 10, [10])
    assert await _rows(db) == Counter(keys)


async def test_a_group_is_capped_and_later_callers_go_in_the_next(database_url: str) -> None:
    db = Database(database_url, Clock(), pool_size=2, group_max=4)
    try:
        keys = [f"k{i}" for i in range(10)]
        before = db.commits
        assert await asyncio.gather(*(db.run_grouped(_insert(k)) for k in keys)) == keys
        assert db.group is not None
        assert db.group.stats.sizes == [4, 4, 2]
        assert db.commits - before == 3
        assert await _rows(db) == Counter(keys)
    finally:
        await db.dispose()


async def test_results_and_after_commit_work_come_only_after_the_commit(db: Database) -> None:
    gate = asyncio.Event()
    after: dict[str, int] = {}  # key -> commits counted when its after-commit work ran
    base = db.commits

    def fn(key: str) -> Callable[[UnitOfWork], Awaitable[str]]:
        async def work(uow: UnitOfWork) -> str:
            assert isinstance(uow, Tx)
            await uow.exec(INSERT, key)
            if key == "k0":
                uow.before_commit(gate.wait)  # the COMMIT waits until the test opens the gate
            uow.after_commit(lambda: after.__setitem__(key, db.commits))
            return key

        return work

    async def caller(key: str) -> str:
        result = await db.run_grouped(fn(key))
        assert key in after  # its after-commit work ran before its result came back
        return result

    tasks = [asyncio.create_task(caller(f"k{i}")) for i in range(5)]
    await asyncio.sleep(0.2)
    assert not any(t.done() for t in tasks) and after == {}
    if db.is_postgres:  # (SQLite's reads would wait for the writer)
        assert await _rows(db) == Counter()  # nothing visible before the COMMIT
    gate.set()
    assert await asyncio.gather(*tasks) == [f"k{i}" for i in range(5)]
    assert after == {f"k{i}": base + 1 for i in range(5)}
    assert db.commits - base == 1


async def test_an_fn_that_raises_gets_its_own_exception_and_the_others_commit(db: Database) -> None:
    keys = ["k0", "k1", "bad", "k3", "k4"]
    calls: Counter[str] = Counter()
    before = db.commits
    results = await asyncio.gather(*(db.run_grouped(_insert(k, calls)) for k in keys), return_exceptions=True)
    assert results[:2] == ["k0", "k1"] and results[3:] == ["k3", "k4"]
    assert isinstance(results[2], ValueError) and str(results[2]) == "bad"
    # The group rolled back at "bad"; "bad" ran again alone (and raised again), the others went
    # together in the next group: one COMMIT in all.
    assert db.commits - before == 1
    assert calls == Counter({"k0": 2, "k1": 2, "bad": 2, "k3": 1, "k4": 1})
    assert await _rows(db) == Counter(["k0", "k1", "k3", "k4"])  # each once; nothing of "bad"
    assert db.group is not None and db.group.stats.fallbacks == 1


class AtLimit(Declined):
    """A unit that declines (a route job at its channel's rate limit)."""


async def test_a_declined_fn_runs_again_alone_after_its_group_mates_committed(db: Database) -> None:
    keys = ["k0", "k1", "full", "k3"]
    calls: Counter[str] = Counter()
    seen: list[Counter[str]] = []  # what "full" found committed each time it ran

    def fn(key: str) -> Callable[[UnitOfWork], Awaitable[str]]:
        inner = _insert(key, calls)

        async def work(uow: UnitOfWork) -> str:
            if key == "full":
                assert isinstance(uow, Tx)
                rows = await uow.fetch("SELECT key FROM jobs WHERE kind = 't'")
                seen.append(Counter(r.key for r in rows))
            result = await inner(uow)
            if key == "full":
                raise AtLimit(key)  # after writing: the rollback takes that back
            return result

        return work

    before = db.commits
    results = await asyncio.gather(*(db.run_grouped(fn(k)) for k in keys), return_exceptions=True)
    assert results[:2] == ["k0", "k1"] and results[3] == "k3"
    assert isinstance(results[2], AtLimit)
    # The group rolled back at "full"; k0, k1 and k3 went together again and committed; only then
    # did "full" run again, alone, and find their rows (as one after the other). Nothing of "full".
    assert calls == Counter({"k0": 2, "k1": 2, "full": 2, "k3": 1})
    assert seen[1] == Counter(["k0", "k1", "k3"])
    assert db.commits - before == 1
    assert await _rows(db) == Counter(["k0", "k1", "k3"])


async def test_a_caller_regrouped_once_runs_alone_if_its_next_group_fails_too(db: Database) -> None:
    keys = ["k0", "bad1", "k2", "bad2", "k4"]
    calls: Counter[str] = Counter()
    results = await asyncio.gather(*(db.run_grouped(_insert(k, calls)) for k in keys), return_exceptions=True)
    assert [r if isinstance(r, str) else type(r).__name__ for r in results] == [
        "k0",
        "ValueError",
        "k2",
        "ValueError",
        "k4",
    ]
    assert await _rows(db) == Counter(["k0", "k2", "k4"])
    assert db.group is not None and db.group.stats.fallbacks == 2


async def test_a_group_of_one_runs_once_in_its_callers_own_transaction(db: Database) -> None:
    calls: Counter[str] = Counter()
    before = db.commits
    assert await db.run_grouped(_insert("solo", calls)) == "solo"
    with pytest.raises(ValueError, match="bad-solo"):
        await db.run_grouped(_insert("bad-solo", calls))
    assert calls == Counter({"solo": 1, "bad-solo": 1})  # never run again
    assert db.commits - before == 1
    assert db.group is not None
    assert (db.group.stats.alone, db.group.stats.groups, db.group.stats.fallbacks) == (2, 0, 0)
    assert await _rows(db) == Counter(["solo"])


async def test_nested_grouped_work_is_refused_not_deadlocked(db: Database) -> None:
    async def outer(uow: UnitOfWork) -> None:
        await db.run_grouped(_insert("inner"))

    with pytest.raises(RuntimeError, match="inside a grouped unit of work"):
        await asyncio.wait_for(db.run_grouped(outer), 5)


async def test_a_caller_cancelled_in_the_queue_drops_out_and_the_queue_keeps_going(db: Database) -> None:
    gate = asyncio.Event()

    async def held(uow: UnitOfWork) -> str:
        assert isinstance(uow, Tx)
        await uow.exec(INSERT, "held")
        uow.before_commit(gate.wait)
        return "held"

    first = asyncio.create_task(db.run_grouped(held))
    await asyncio.sleep(0.1)  # its transaction is in flight (a group of one), waiting at the gate
    queued = asyncio.create_task(db.run_grouped(_insert("queued")))
    await asyncio.sleep(0.05)
    queued.cancel()
    gate.set()
    assert await first == "held"
    assert (await asyncio.gather(queued, return_exceptions=True))[0].__class__ is asyncio.CancelledError
    assert await asyncio.wait_for(db.run_grouped(_insert("after")), 5) == "after"
    assert await _rows(db) == Counter(["held", "after"])


async def test_a_group_of_one_whose_caller_is_cancelled_does_not_hold_the_queue(db: Database) -> None:
    task = asyncio.create_task(db.run_grouped(_insert("gone")))
    await asyncio.sleep(0)  # the caller queues its fn and starts the group task
    await asyncio.sleep(0)  # the group task hands the fn back to its caller (a group of one)...
    assert db.group is not None and db.group.stats.alone == 1 and not task.done()
    task.cancel()  # ...which is cancelled before it could run it
    assert isinstance((await asyncio.gather(task, return_exceptions=True))[0], asyncio.CancelledError)
    assert await asyncio.wait_for(db.run_grouped(_insert("after")), 5) == "after"
    assert await _rows(db) == Counter(["after"])


async def test_switched_off_every_caller_has_its_own_transaction(database_url: str) -> None:
    assert Settings().group_commit is True
    assert Settings(group_commit=False).group_commit is False
    db = Database(database_url, Clock(), pool_size=4, group_commit=False)
    try:
        assert db.group is None
        keys = [f"k{i}" for i in range(6)]
        before = db.commits
        assert await asyncio.gather(*(db.run_grouped(_insert(k)) for k in keys)) == keys
        assert db.commits - before == 6
        assert await _rows(db) == Counter(keys)
    finally:
        await db.dispose()


def test_the_setting_reads_topup_group_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOPUP_GROUP_COMMIT", "false")
    assert Settings().group_commit is False


# ---- the order path, through the real services ------------------------------------------------------


@pytest.fixture
async def money(database_url: str) -> AsyncIterator[Money]:
    m = await Money(database_url).start()
    try:
        yield m
    finally:
        await m.close()


async def _ledger_ok(m: Money) -> None:
    check = await m.ok("GET", "/admin/v1/ledger/check")
    assert check["balanced"], check


async def test_a_short_balance_at_commit_fails_only_that_merchants_order(money: Money) -> None:
    """Seven orders placed at once, one group: m1's five and m2's two, where m2 can pay for one. The
    group's balance block (at COMMIT) finds m2 short; every intake runs again alone: all of m1's and
    one of m2's are placed, the other m2 caller alone gets InsufficientBalance."""
    m = money
    await m.catalog({"a": {}})
    await m.ok("PUT", "/admin/v1/merchants/m2", json={"name": "m2", "secret": "merchant-secret-0002"})
    await m.ok(
        "POST", "/admin/v1/merchants/m2/credits", json={"amount": PRICE + PRICE // 2, "reference": "m2"}
    )
    c = m.c
    assert c.db.group is not None
    base_commits, base_fallbacks = c.db.commits, c.db.group.stats.fallbacks

    def order(merchant: str, n: int) -> Awaitable[Any]:
        body = OrderIn(merchant_order_id=f"{merchant}-{n}", product_code=PRODUCT, account="13800138000")
        return place(c, MerchantCtx(merchant, "", None), body)

    calls = [order(MERCHANT, n) for n in range(5)] + [order("m2", n) for n in range(2)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert c.db.group.stats.fallbacks == base_fallbacks + 1
    assert all(not isinstance(r, BaseException) and r[1] for r in results[:5]), results[:5]
    m2 = results[5:]
    assert sorted(type(r).__name__ for r in m2) == ["InsufficientBalance", "tuple"], m2
    assert any(isinstance(r, InsufficientBalance) for r in m2)
    # Six intakes committed, each in its own transaction (the group committed nothing).
    assert c.db.commits - base_commits == 6
    holds = await m.fetch(
        "SELECT merchant_id, COUNT(*) AS n FROM transfers WHERE kind = 'hold' GROUP BY merchant_id"
    )
    assert {r.merchant_id: int(r.n) for r in holds} == {MERCHANT: 5, "m2": 1}
    orders = await m.fetch("SELECT merchant_id, COUNT(*) AS n FROM orders GROUP BY merchant_id")
    assert {r.merchant_id: int(r.n) for r in orders} == {MERCHANT: 5, "m2": 1}
    balance = await m.fetch("SELECT balance FROM ledger_accounts WHERE id = 'merchant:m2:available'")
    assert int(balance[0].balance) == PRICE // 2
    await _ledger_ok(m)


async def test_concurrent_callbacks_apply_once_each_and_an_unknown_ref_alone_is_refused(money: Money) -> None:
    m = money
    await m.catalog({"a": {}})
    ids = []
    for n in range(6):
        m.script(accepted())
        ids.append(await m.order(f"cb-{n}"))
    refs = {r.order_id: r.supplier_ref for r in await m.fetch("SELECT order_id, supplier_ref FROM attempts")}
    c = m.c

    def callback(ref: str) -> Awaitable[str]:
        data = CallbackData(ref, "success")
        return c.db.run_grouped(lambda tx: c.fulfilment.receive_callback(tx, "a", data))

    refs_in_order = [refs[i] for i in ids]
    # Each success twice (a repeat must be a no-op) and one callback for a ref nobody sent.
    results = await asyncio.gather(
        *(callback(r) for r in [*refs_in_order, "no-such-ref", *refs_in_order]), return_exceptions=True
    )
    assert results[:6] == ["completed"] * 6
    assert isinstance(results[6], NotFound)
    assert results[7:] == ["repeat"] * 6
    captures = await m.fetch("SELECT COUNT(*) AS n FROM transfers WHERE kind = 'capture'")
    assert int(captures[0].n) == 6
    done = await m.fetch("SELECT COUNT(*) AS n FROM orders WHERE status = 'succeeded'")
    assert int(done[0].n) == 6
    stored = await m.fetch("SELECT COUNT(*) AS n FROM callbacks")
    assert int(stored[0].n) == 6
    await _ledger_ok(m)


async def test_concurrent_dispatch_replies_each_finish_their_order_once(money: Money) -> None:
    """Eight orders routed at once: their dispatch replies (successes with a cost, and one rejection
    that fails over) are recorded through group commit; every order ends once, money balances."""
    m = money
    await m.catalog({"a": {}, "b": {}})
    c = m.c
    bodies = [
        OrderIn(merchant_order_id=f"d-{n}", product_code=PRODUCT, account="13800138000") for n in range(8)
    ]
    placed = await asyncio.gather(*(place(c, MerchantCtx(MERCHANT, "", None), b) for b in bodies))
    assert all(created for _, created in placed)
    m.script(rejected(), *[succeeded(cost=4900)] * 8)
    rows = await m.fetch("SELECT id, key, payload, tries FROM jobs WHERE kind = 'route'")
    await asyncio.gather(
        *(
            c.fulfilment.handle_route(
                Job(int(r.id), JobKind.ROUTE, r.key, jobs.from_json(jobs.RoutePayload, _json(r.payload)), 0)
            )
            for r in rows
        )
    )
    await m.run_routes()  # the rejected order's fail-over
    done = await m.fetch("SELECT COUNT(*) AS n FROM orders WHERE status = 'succeeded'")
    assert int(done[0].n) == 8
    for kind in ("capture", "cost"):
        n = await m.fetch("SELECT COUNT(*) AS n FROM transfers WHERE kind = $1", kind)
        assert int(n[0].n) == 8, kind
    await _ledger_ok(m)


def _json(payload: Any) -> Any:
    return orjson.loads(payload) if isinstance(payload, str | bytes) else payload
