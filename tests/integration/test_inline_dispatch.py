"""The inline first dispatch (services/fulfilment/inline.py): an order accepted by this process gets its
first attempt in the intake's own transaction and leaves right after the commit, with no route job;
whatever the inline path cannot decide goes to a route job with nothing of the routing written; an
inline dispatch that never left (the process died after the commit) is settled by its deadline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from tests.support.money import Money, accepted, rejected

from topup.domain.suppliers import DispatchOutcome, QueryOutcome
from topup.services.dispatch_slots import ChannelSlots
from topup.services.fulfilment.route import NextDispatch


@pytest.fixture
async def money(database_url: str) -> AsyncIterator[Money]:
    m = await Money(database_url, inline_dispatch_max=64).start()
    try:
        await m.catalog({"a": {}, "b": {}})
        yield m
    finally:
        await m.close()


async def _jobs(m: Money) -> list[str]:
    return sorted(
        r.key.split(":")[0] for r in await m.fetch("SELECT key FROM jobs WHERE kind <> 'balance_check'")
    )


async def _attempts(m: Money, order_id: str) -> list[tuple[int, str, str, str]]:
    rows = await m.fetch(
        "SELECT no, channel_code, status, dispatch_state FROM attempts WHERE order_id = $1 ORDER BY no",
        order_id,
    )
    return [(int(r.no), r.channel_code, r.status, r.dispatch_state) for r in rows]


async def _timeline(m: Money, order_id: str) -> list[str]:
    rows = await m.fetch("SELECT kind FROM order_events WHERE order_id = $1 ORDER BY id", order_id)
    return [r.kind for r in rows]


async def _ledger_ok(m: Money) -> None:
    check = await m.ok("GET", "/admin/v1/ledger/check")
    assert check["balanced"], check


async def test_an_accepted_order_leaves_with_its_intake_and_no_route_job(money: Money) -> None:
    m = money
    order_id = await m.order("I-1", route=False)
    # Committed with the order: attempt 1 at the first channel, its deadline job, no route job.
    assert (await _attempts(m, order_id))[0][:2] == (1, "a")
    assert await _jobs(m) == ["deadline"]
    await m.c.fulfilment.drain_inline()
    assert m.fake.dispatched_refs == [f"{order_id}-1"]
    assert await _attempts(m, order_id) == [(1, "a", "pending", "accepted")]
    assert await _timeline(m, order_id) == ["created", "dispatch", "dispatch_reply"]
    assert await m.callback("a", f"{order_id}-1", "success") == "completed"
    order = (await m.fetch("SELECT status FROM orders WHERE id = $1", order_id))[0]
    assert order.status == "succeeded"
    assert await _jobs(m) == []  # the deadline job went with the success (no webhook URL here)
    await _ledger_ok(m)


async def test_many_concurrent_intakes_each_dispatch_once(money: Money) -> None:
    m = money
    ids = await asyncio.gather(*(m.order(f"C-{n}", route=False) for n in range(12)))
    await m.c.fulfilment.drain_inline()
    assert sorted(m.fake.dispatched_refs) == sorted(f"{i}-1" for i in ids)
    assert "route" not in await _jobs(m)
    for i in ids:
        assert await _attempts(m, i) == [(1, "a", "pending", "accepted")]


async def test_a_rejected_inline_dispatch_fails_over_through_a_route_job(money: Money) -> None:
    m = money
    m.script(rejected(), accepted())
    order_id = await m.order("R-1", route=False)
    await m.c.fulfilment.drain_inline()
    assert await _jobs(m) == ["route"]
    await m.run_routes()
    assert [(a[0], a[1], a[2]) for a in await _attempts(m, order_id)] == [
        (1, "a", "failed"),
        (2, "b", "pending"),
    ]
    assert m.fake.dispatched_refs == [f"{order_id}-1", f"{order_id}-2"]


@pytest.mark.parametrize("why", ["rate_limit", "stuck_channel", "inline_bound"])
async def test_what_inline_cannot_decide_goes_to_a_route_job_with_nothing_written(
    money: Money, why: str
) -> None:
    m = money
    if why == "rate_limit":
        body = await m.ok("GET", "/admin/v1/channels/a")
        await m.ok("PUT", "/admin/v1/channels/a", json={**_channel_body(body), "rate_limit_per_s": 5})
        m.c.cache.invalidate()
        assert (await m.ok("GET", "/admin/v1/channels/a"))["rate_limit_per_s"] == 5
    elif why == "stuck_channel":
        m.c.fulfilment.slots = ChannelSlots(1, 0.0)
        assert m.c.fulfilment.slots.try_take("a") is not None  # one dispatch out "too long"
    else:
        m.c.fulfilment.inline_max = 1
        m.c.fulfilment._inline.add(asyncio.create_task(asyncio.sleep(5)))
    order_id = await m.order(f"N-{why}", route=False)
    assert await _attempts(m, order_id) == []
    assert await _jobs(m) == ["route"]
    assert await _timeline(m, order_id) == ["created"]
    order = (await m.fetch("SELECT route_plan, attempt_count FROM orders WHERE id = $1", order_id))[0]
    assert order.route_plan is None and int(order.attempt_count) == 0
    assert m.fake.dispatched_refs == []
    for task in list(m.c.fulfilment._inline):
        task.cancel()


def _channel_body(got: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "name",
        "protocol",
        "base_url",
        "timeout_s",
        "max_wait_s",
        "supports_query",
        "enabled",
        "products",
    )
    return {**{k: got[k] for k in keys if k in got}, "secret": "sim-secret"}


async def test_an_inline_dispatch_that_never_left_is_settled_by_its_deadline(money: Money) -> None:
    """The process dies between the intake's commit and the send: the attempt stays `sent`; its
    deadline waits out the grace, asks the supplier (not_found) and fails over to the next channel."""
    m = money
    lost: list[NextDispatch] = []
    m.c.fulfilment._start = lambda sent, slot, held: lost.append(sent)  # type: ignore[method-assign]
    order_id = await m.order("L-1", route=False)
    assert [s.ref for s in lost] == [f"{order_id}-1"]
    assert m.fake.dispatched_refs == []
    assert await _attempts(m, order_id) == [(1, "a", "pending", "sent")]
    m.fake.script_query(QueryOutcome("not_found", http_status=200))
    m.clock.advance(30 * 2 + 2.0 + 1.0)  # 2 x timeout_s + the dispatch grace
    assert await m.run_jobs("deadline") == 1
    await m.run_routes()
    attempts = await _attempts(m, order_id)
    assert [(a[0], a[1], a[2]) for a in attempts] == [(1, "a", "failed"), (2, "b", "pending")]
    assert m.fake.dispatched_refs == [f"{order_id}-2"]  # attempt 1 was never sent, and is not resent
    await _ledger_ok(m)


async def test_a_final_dispatch_reply_on_the_inline_path_completes_the_order_once(money: Money) -> None:
    """A final dispatch reply (succeeded) on the inline path completes the order once."""
    m = money
    m.script(DispatchOutcome("succeeded", "sup-1", cost=4900))
    order_id = await m.order("S-1", route=False)
    await m.c.fulfilment.drain_inline()
    order = (await m.fetch("SELECT status FROM orders WHERE id = $1", order_id))[0]
    assert order.status == "succeeded"
    captures = await m.fetch("SELECT COUNT(*) AS n FROM transfers WHERE kind = 'capture'")
    assert int(captures[0].n) == 1
    await _ledger_ok(m)
