"""Money with suppliers on SQLite and PostgreSQL (SPEC 8): cost postings from the real engine (every
success, duplicates and late successes too), prepayments, margin reports, and statements with every kind
of discrepancy. In-process (`tests/support/money.py`): a scripted supplier and a fake clock decide every
attempt and every time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from tests.support.money import PRICE, Money, accepted, failed, rejected, succeeded

from topup.domain.suppliers import CallbackData, DispatchOutcome

DAY = {"from": "2024-05-01", "to": "2024-05-02"}


@pytest.fixture
async def money(database_url: str) -> AsyncIterator[Money]:
    m = await Money(database_url).start()
    try:
        yield m
    finally:
        await m.close()


async def costs_of(m: Money, order_id: str) -> list[tuple[str, int]]:
    """The order's cost transfers as (attempt ref, fen)."""
    rows = await m.fetch(
        "SELECT reference, amount FROM transfers WHERE kind = 'cost' AND order_id = $1 ORDER BY reference",
        order_id,
    )
    return [(r.reference, int(r.amount)) for r in rows]


async def balanced(m: Money) -> dict[str, Any]:
    check = await m.ok("GET", "/admin/v1/ledger/check")
    assert check["balanced"], check
    return dict(check)


async def test_every_success_costs_member_cost_then_channel_price_then_supplier_charge(money: Money) -> None:
    await money.catalog(
        {
            "chA": {"costs": {"airtime.50": 4900}, "products": {"airtime.50": {"price": 4800}}},
            "chB": {"products": {"airtime.50": {"price": 4910}}},
            "chC": {},
            "chD": {},
        }
    )
    money.script(succeeded(cost=4700))
    a = await money.order("A")
    money.script(rejected(), succeeded(cost=4700))
    b = await money.order("B")
    money.script(rejected(), failed(), succeeded(cost=4950))
    c = await money.order("C")
    money.script(rejected(), failed(), rejected(), succeeded())  # nobody says what it cost
    d = await money.order("D")
    assert await costs_of(money, a) == [(f"{a}-1", 4900)]
    assert await costs_of(money, b) == [(f"{b}-2", 4910)]
    assert await costs_of(money, c) == [(f"{c}-3", 4950)]
    assert await costs_of(money, d) == []
    # The cost is posted with the success, to the supplier's account, and shows on the order's story.
    story = await money.ok("GET", f"/admin/v1/orders/{c}")
    cost = [t for t in story["ledger"] if t["kind"] == "cost"]
    assert cost[0]["postings"] == [
        {"account": "supplier:chC", "amount": -4950},
        {"account": "platform:cost", "amount": 4950},
    ]
    assert [e["detail"] for e in story["timeline"] if e["kind"] == "cost_posted"] == [
        {"channel": "chC", "amount": 4950, "source": "supplier"}
    ]
    await balanced(money)
    accounts = {a["channel"]: a for a in (await money.ok("GET", "/admin/v1/supplier-accounts"))["items"]}
    assert {k: (v["cost"], v["balance"], v["owed"]) for k, v in accounts.items()} == {
        "chA": (4900, -4900, 4900),
        "chB": (4910, -4910, 4910),
        "chC": (4950, -4950, 4950),
        "chD": (0, 0, 0),
    }
    report = await money.ok("GET", "/admin/v1/reports/margins", params={**DAY, "by": "channel"})
    assert [
        (i["key"], i["orders"], i["revenue"], i["cost"], i["margin"], i["uncosted"]) for i in report["items"]
    ] == [
        ("chA", 1, PRICE, 4900, PRICE - 4900, 0),
        ("chB", 1, PRICE, 4910, PRICE - 4910, 0),
        ("chC", 1, PRICE, 4950, PRICE - 4950, 0),
        ("chD", 1, PRICE, 0, PRICE, 1),
    ]


async def test_a_duplicate_fulfilment_and_a_late_success_each_cost_again(money: Money) -> None:
    await money.catalog({"chA": {"costs": {"airtime.50": 4900}}, "chB": {"costs": {"airtime.50": 4920}}})
    # chA goes silent and is abandoned; chB delivers; then chA's success arrives after all.
    money.script(accepted())
    dup = await money.order("DUP")
    money.script(succeeded())
    await money.abandon(f"{dup}-1")
    assert await money.callback("chA", f"{dup}-1", "success") == "duplicate_fulfilment"
    assert await money.callback("chA", f"{dup}-1", "success") == "repeat"
    assert await costs_of(money, dup) == [(f"{dup}-1", 4900), (f"{dup}-2", 4920)]
    # Every channel gives up: the order fails and is refunded; then chB says it did top up.
    money.clock.advance(10)
    money.script(failed(), accepted())
    late = await money.order("LATE")
    await money.abandon(f"{late}-2")
    assert (await money.ok("GET", f"/admin/v1/orders/{late}"))["status"] == "failed"
    assert await money.callback("chB", f"{late}-2", "success") == "late_success"
    assert await costs_of(money, late) == [(f"{late}-2", 4920)]
    await balanced(money)
    kinds = sorted(e["kind"] for e in (await money.ok("GET", "/admin/v1/exceptions"))["items"])
    assert kinds == ["duplicate_fulfilment", "late_success"]
    by_channel = await money.ok("GET", "/admin/v1/reports/margins", params={**DAY, "by": "channel"})
    assert [
        (i["key"], i["orders"], i["revenue"], i["cost"], i["fulfilments"]) for i in by_channel["items"]
    ] == [
        ("chA", 0, 0, 4900, 1),  # the duplicate adds cost only
        ("chB", 1, PRICE, 4920 * 2, 2),  # the late success too
    ]
    assert by_channel["totals"] == {
        "orders": 1,
        "revenue": PRICE,
        "cost": 4900 + 4920 * 2,
        "margin": PRICE - 4900 - 4920 * 2,
        "fulfilments": 3,
        "uncosted": 0,
    }
    by_product = await money.ok("GET", "/admin/v1/reports/margins", params={**DAY, "by": "product"})
    assert [(i["key"], i["orders"], i["cost"]) for i in by_product["items"]] == [("airtime.50", 1, 14740)]


async def test_a_callback_that_overtakes_the_reply_still_gets_the_reported_charge(money: Money) -> None:
    await money.catalog({"chA": {}})

    async def overtaken(channel: Any, req: Any) -> DispatchOutcome:
        # The supplier's success callback is applied before its dispatch reply is recorded.
        async with money.c.db.transaction() as tx:
            await money.c.fulfilment.receive_callback(
                tx, channel.code, CallbackData(req.supplier_ref, "success")
            )
        return DispatchOutcome.accepted("sup-1", cost=4970)

    money.fake.dispatch = overtaken  # type: ignore[method-assign]
    order_id = await money.order("O")
    assert (await money.ok("GET", f"/admin/v1/orders/{order_id}"))["status"] == "succeeded"
    assert await costs_of(money, order_id) == [(f"{order_id}-1", 4970)]
    await balanced(money)


async def test_margins_count_orders_completed_in_the_period_by_merchant_product_and_channel(
    money: Money,
) -> None:
    await money.catalog({"chA": {"costs": {"airtime.50": 4900}}})
    money.script(succeeded())
    await money.order("DAY1")  # 2024-05-01T00:00:00Z
    money.clock.advance(86_400)
    money.script(succeeded(), succeeded())
    await money.order("DAY2-a")
    await money.order("DAY2-b")
    day1 = await money.ok("GET", "/admin/v1/reports/margins", params={**DAY, "by": "merchant"})
    assert day1["items"] == [
        {
            "key": "m1",
            "orders": 1,
            "revenue": PRICE,
            "cost": 4900,
            "margin": PRICE - 4900,
            "fulfilments": 1,
            "uncosted": 0,
        }
    ]
    assert (day1["from"], day1["to"]) == ("2024-05-01T00:00:00.000Z", "2024-05-02T00:00:00.000Z")
    both = await money.ok(
        "GET", "/admin/v1/reports/margins", params={"from": "2024-05-01", "to": "2024-05-03"}
    )
    assert both["by"] == "channel" and both["totals"]["orders"] == 3 and both["totals"]["cost"] == 3 * 4900
    # No period given: the 24 hours up to now (the fake clock).
    money.clock.advance(1)
    assert (await money.ok("GET", "/admin/v1/reports/margins"))["totals"]["orders"] == 2
    csv = await money.admin("GET", "/admin/v1/reports/margins.csv", params={**DAY, "by": "product"})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv.headers["content-disposition"]
    assert csv.text.splitlines() == [
        "product,orders,revenue,cost,margin,fulfilments,uncosted",
        f"airtime.50,1,{PRICE},4900,{PRICE - 4900},1,0",
        f"total,1,{PRICE},4900,{PRICE - 4900},1,0",
    ]
    for params in ({"by": "supplier"}, {"from": "yesterday"}, {"from": "2024-05-02", "to": "2024-05-01"}):
        r = await money.admin("GET", "/admin/v1/reports/margins", params=params)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request", params


async def test_prepayments_are_idempotent_transfers_to_the_supplier_account(money: Money) -> None:
    await money.catalog({"chA": {"costs": {"airtime.50": 4900}}})
    money.script(succeeded())
    await money.order("P")
    path = "/admin/v1/channels/chA/prepayments"
    first = await money.admin("POST", path, json={"amount": 100_000, "reference": "bank-0001"})
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["channel"], body["reference"], body["amount"]) == ("chA", "bank-0001", 100_000)
    assert (body["account"]["prepaid"], body["account"]["cost"], body["account"]["balance"]) == (
        100_000,
        4900,
        95_100,
    )
    again = await money.admin("POST", path, json={"amount": 100_000, "reference": "bank-0001"})
    assert again.status_code == 200 and again.json()["account"]["balance"] == 95_100
    conflict = await money.admin("POST", path, json={"amount": 5, "reference": "bank-0001"})
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "idempotency_conflict"
    for bad in ({"amount": 0, "reference": "x"}, {"amount": 1}, {"amount": "10", "reference": "x"}):
        r = await money.admin("POST", path, json=bad)
        assert r.status_code == 400, bad
    assert (
        await money.admin("POST", "/admin/v1/channels/nope/prepayments", json={"amount": 1, "reference": "x"})
    ).status_code == 404
    listed = await money.ok("GET", path)
    assert [(p["reference"], p["amount"]) for p in listed["items"]] == [("bank-0001", 100_000)]
    check = await balanced(money)
    assert check["negative_accounts"] == []
    audit = await money.ok("GET", "/admin/v1/audit")
    assert any(e["action"] == "supplier.prepay" for e in audit["items"])
