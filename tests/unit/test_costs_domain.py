"""What an attempt costs (SPEC 8's order of sources), margin lines, and the supplier accounts' rules."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from topup.domain import ledger as L
from topup.domain.costs import Cost, CostSource, MarginLine, attempt_cost, margin_report

P = "airtime.50"


@pytest.mark.parametrize(
    ("member", "products", "reported", "expected"),
    [
        ({P: 4900}, {P: {"price": 4910}}, 4950, Cost(4900, CostSource.MEMBER)),
        ({}, {P: {"price": 4910}}, 4950, Cost(4910, CostSource.CHANNEL)),
        ({"other": 1}, {P: {"cardnum": "50"}}, 4950, Cost(4950, CostSource.SUPPLIER)),
        (None, None, 4950, Cost(4950, CostSource.SUPPLIER)),
        ({}, {}, None, None),
        # A member's cost of 0 is a cost (nothing is posted for it), not a missing one.
        ({P: 0}, {P: {"price": 4910}}, 4950, Cost(0, CostSource.MEMBER)),
    ],
)
def test_member_cost_then_channel_price_then_supplier_charge(
    member: Any, products: Any, reported: int | None, expected: Cost | None
) -> None:
    assert attempt_cost(P, member, products, reported) == expected


@pytest.mark.parametrize("bad", [-1, 1.5, "4900", True, None, [4900]])
def test_an_unusable_amount_falls_through_to_the_next_source(bad: Any) -> None:
    assert attempt_cost(P, {P: bad}, {P: {"price": bad}}, 4950) == Cost(4950, CostSource.SUPPLIER)
    assert attempt_cost(P, {P: bad}, {P: {"price": 4910}}, None) == Cost(4910, CostSource.CHANNEL)
    assert attempt_cost(P, {}, {P: "not an entry"}, bad) is None


def test_margin_report_merges_revenue_and_costs_by_key() -> None:
    items, totals = margin_report(
        {"supA": (2, 9960, 0), "supB": (1, 4980, 1)},
        {"supA": (9800, 2), "supC": (4900, 1)},  # supC: a late success, cost only
    )
    assert [i.public() for i in items] == [
        {
            "key": "supA",
            "orders": 2,
            "revenue": 9960,
            "cost": 9800,
            "margin": 160,
            "fulfilments": 2,
            "uncosted": 0,
        },
        {
            "key": "supB",
            "orders": 1,
            "revenue": 4980,
            "cost": 0,
            "margin": 4980,
            "fulfilments": 0,
            "uncosted": 1,
        },
        {
            "key": "supC",
            "orders": 0,
            "revenue": 0,
            "cost": 4900,
            "margin": -4900,
            "fulfilments": 1,
            "uncosted": 0,
        },
    ]
    assert (totals.orders, totals.revenue, totals.cost, totals.margin) == (3, 14940, 14700, 240)


amounts = st.integers(min_value=0, max_value=10**9)


@given(
    st.dictionaries(st.text(min_size=1, max_size=5), st.tuples(amounts, amounts, amounts), max_size=8),
    st.dictionaries(st.text(min_size=1, max_size=5), st.tuples(amounts, amounts), max_size=8),
)
def test_margin_totals_are_the_sums_of_the_lines(
    revenue: dict[str, tuple[int, int, int]], costs: dict[str, tuple[int, int]]
) -> None:
    items, totals = margin_report(revenue, costs)
    assert [i.key for i in items] == sorted(set(revenue) | set(costs))
    assert totals.revenue == sum(r for _, r, _ in revenue.values())
    assert totals.cost == sum(c for c, _ in costs.values())
    assert totals.margin == totals.revenue - totals.cost == sum(i.margin for i in items)
    assert all(isinstance(i, MarginLine) and i.margin == i.revenue - i.cost for i in items)


def test_supplier_and_cost_accounts() -> None:
    assert L.supplier_account("supA") == "supplier:supA"
    # A supplier billed in arrears is owed: its account may go negative, like the outside world's.
    assert not L.must_stay_non_negative("supplier:supA")
    assert not L.must_stay_non_negative(L.WORLD_PREPAYMENTS)
    assert L.must_stay_non_negative(L.COST)
    assert L.must_stay_non_negative(L.REVENUE)
    postings = L.transfer(L.supplier_account("supA"), L.COST, 4900)
    L.check_balanced(postings)
    assert postings == [L.Posting("supplier:supA", -4900), L.Posting("platform:cost", 4900)]
