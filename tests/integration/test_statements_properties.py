"""Properties of statement reconciliation on SQLite and PostgreSQL (SPEC 8), over random scenarios played
through the real engine (tests/support/money.py): a statement generated from the platform's own attempts
reconciles with no discrepancy, and one with planted discrepancies shows each of them."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from tests.support.money import Loop, Money, accepted, failed, rejected, succeeded

from topup.clock import rfc3339

OUTCOMES = {"ok": succeeded, "failed": failed, "rejected": rejected, "silent": accepted}
channel_ids = itertools.count()


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    channels = draw(st.integers(min_value=1, max_value=3))
    costs = [draw(st.sampled_from(["member", "channel", "reported", "none"])) for _ in range(channels)]
    orders = draw(
        st.lists(
            st.tuples(
                st.lists(st.sampled_from(sorted(OUTCOMES)), min_size=1, max_size=channels),
                st.booleans(),  # a silent attempt's success arrives later (duplicate / late success)
                st.integers(min_value=1, max_value=3 * 3600),  # seconds since the previous order
            ),
            min_size=1,
            max_size=6,
        )
    )
    window = sorted(
        draw(st.lists(st.integers(min_value=0, max_value=7 * 3600), min_size=2, max_size=2, unique=True))
    )
    return {"costs": costs, "orders": orders, "window": window, "seed": draw(st.integers(0, 100))}


async def play(m: Money, scenario: dict[str, Any]) -> list[str]:
    """Set up fresh channels (the group `air` now routes to them) and place the scenario's orders."""
    n = next(channel_ids)
    codes = [f"p{n}c{i}" for i in range(len(scenario["costs"]))]
    conf: dict[str, dict[str, Any]] = {}
    for code, how in zip(codes, scenario["costs"], strict=True):
        conf[code] = {
            "costs": {"airtime.50": 4900 + len(conf)} if how == "member" else {},
            "products": {"airtime.50": {"price": 4800 + len(conf)}} if how == "channel" else {},
        }
    await m.catalog(conf)
    m.fake.default_dispatch = rejected()  # channels past the plan refuse: every order ends
    m.clock.advance(1)
    for i, (plan, late, gap) in enumerate(scenario["orders"]):
        m.clock.advance(gap)
        reported = 4950 if "reported" in scenario["costs"] else None
        plan = plan[: plan.index("ok") + 1] if "ok" in plan else plan  # every scripted reply gets used
        m.script(*(OUTCOMES[o]() if o != "ok" else succeeded(cost=reported) for o in plan))
        order_id = await m.order(f"P{n}-{i}")
        # Silent attempts are abandoned in turn (what the deadline would do) and the order moves on, so
        # every scripted reply is used; then, with `late`, their successes arrive after all.
        abandoned = []
        for no, outcome in enumerate(plan, start=1):
            if outcome == "silent":
                (row,) = await m.fetch(
                    "SELECT channel_code, supplier_ref FROM attempts WHERE ref = $1", f"{order_id}-{no}"
                )
                await m.abandon(f"{order_id}-{no}")
                abandoned.append(row)
        assert m.fake.dispatched_refs[-1].startswith(order_id) and not m.fake._dispatch_script
        for row in abandoned if late else []:
            assert await m.callback(row.channel_code, row.supplier_ref, "success") in (
                "late_success",
                "duplicate_fulfilment",
            )
    return codes


@pytest.fixture
def loop_money(database_url: str) -> Iterator[tuple[Loop, Money]]:
    loop = Loop()
    m = loop.run(Money(database_url).start())
    try:
        yield loop, m
    finally:
        loop.run(m.close())
        loop.close()


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    # Examples share one database, so a failure does not replay exactly: report it, do not shrink it.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(scenario=scenarios())
def test_a_statement_generated_from_our_own_attempts_finds_no_discrepancy(
    loop_money: tuple[Loop, Money], scenario: dict[str, Any]
) -> None:
    loop, m = loop_money

    async def check() -> None:
        start = m.clock.now()
        codes = await play(m, scenario)
        t0, t1 = (start + w for w in scenario["window"])
        params = {"from": iso(t0), "to": iso(t1)}
        for code in codes:
            sample = await m.admin("GET", f"/admin/v1/channels/{code}/statements/sample.csv", params=params)
            assert sample.status_code == 200, sample.text
            r = await m.admin(
                "POST", f"/admin/v1/channels/{code}/statements", params=params, content=sample.content
            )
            assert r.status_code == 201, r.text
            s = r.json()
            assert s["discrepancies"] == [], s
            assert s["rows"] == s["matched"] == s["agreed"] == len(sample.text.splitlines()) - 1
        check = await m.ok("GET", "/admin/v1/ledger/check")
        assert check["balanced"], check

    loop.run(check())


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    # Examples share one database, so a failure does not replay exactly: report it, do not shrink it.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(scenario=scenarios())
def test_planted_discrepancies_are_each_found(
    loop_money: tuple[Loop, Money], scenario: dict[str, Any]
) -> None:
    loop, m = loop_money

    async def check() -> None:
        start = m.clock.now()
        codes = await play(m, scenario)
        params = {
            "from": iso(start),
            "to": iso(m.clock.now() + 1),
            "with_discrepancies": "true",
            "seed": str(scenario["seed"]),
        }
        for code in codes:
            sample = await m.admin("GET", f"/admin/v1/channels/{code}/statements/sample.csv", params=params)
            attempts = await m.fetch("SELECT status FROM attempts WHERE channel_code = $1", code)
            successes = sum(1 for a in attempts if a.status == "succeeded")
            failures = len(attempts) - successes
            post = {k: v for k, v in params.items() if k in ("from", "to")}
            r = await m.admin(
                "POST", f"/admin/v1/channels/{code}/statements", params=post, content=sample.content
            )
            counts = r.json()["counts"]
            assert counts["missing_here"] == 1
            assert counts["amount_mismatch"] == (1 if successes >= 2 else 0)
            assert counts["status_mismatch"] == (1 if failures else 0)
            assert counts["missing_there"] == (1 if successes >= 1 or failures >= 2 else 0)
            assert counts["duplicate_row"] == 0

    loop.run(check())


def iso(ts: float) -> str:
    return str(rfc3339(ts))
