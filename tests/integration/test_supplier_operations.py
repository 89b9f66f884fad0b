"""Supplier operations (SPEC section 7) on a running platform, SQLite and PostgreSQL: the order's region,
coverage by carrier and province, balances that pause and resume a channel, rate limits."""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from tests.integration.test_console import ConsoleClient
from tests.support.platform import Platform, sim_channel, wait_until

BALANCE = 1_000_000
GD_CMCC = "13712345678"  # China Mobile, Guangdong
GD_CUCC = "18620001234"  # China Unicom, Guangdong
BJ_CUCC = "18612345678"  # China Unicom, Beijing
BJ_CMCC = "13800138000"  # China Mobile, Beijing
NOWHERE_CBN = "19212345678"  # China Broadnet; the geocoding data places it nowhere more precise than China


def tried(order: dict[str, Any]) -> list[tuple[str, str]]:
    return [(a["channel"], a["status"]) for a in order["attempts"]]


def place(platform: Platform, m: Any, moid: str, account: str, product: str = "airtime.50") -> dict[str, Any]:
    r = m.order(moid, product_code=product, account=account)
    assert r.status_code == 201, r.text
    return platform.wait_order(r.json()["order_id"])


def channel(platform: Platform, code: str) -> dict[str, Any]:
    r = platform.admin.get(f"/admin/v1/channels/{code}")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def exceptions(platform: Platform, kind: str) -> list[dict[str, Any]]:
    r = platform.admin.get("/admin/v1/exceptions", params={"kind": kind})
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


def scrape(platform: Platform) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    platform.site.metrics.collector.min_interval_s = 0
    r = httpx.get(f"{platform.url}/metrics", trust_env=False)
    assert r.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def run_db(platform: Platform, sql: str, *args: Any) -> list[Any]:
    """Rows of one read in a connection of our own (the platform's engine belongs to its server thread)."""
    from topup.adapters.db.engine import Database
    from topup.clock import Clock

    async def main() -> list[Any]:
        db = Database(platform.database_url, Clock())
        try:
            async with db.transaction() as tx:
                return await tx.fetch(sql, *args)
        finally:
            await db.dispose()

    return asyncio.run(main())


def max_in_window(times: list[float], window_s: float = 1.0) -> int:
    """The most of `times` inside any half-open interval [t, t + window_s)."""
    times = sorted(times)
    return max((sum(1 for u in times[i:] if u < t + window_s) for i, t in enumerate(times)), default=0)


# ---- region and coverage -------------------------------------------------------------------------------


def test_coverage_routes_by_carrier_and_region_and_refuses_what_nothing_covers(
    platform: Platform, sim
) -> None:
    platform.product("airtime.50")
    for code in ("gd", "cu"):
        platform.channel(code, sim_channel(sim, code))
    group = platform.group(
        "air",
        "mobile_airtime",
        [
            {"channel": "gd", "priority": 1, "regions": ["cn-gd"]},
            {"channel": "cu", "priority": 2, "carriers": ["CUCC"]},
        ],
    )
    assert group["members"][0]["regions"] == ["CN-GD"] and "carriers" not in group["members"][0]
    assert group["members"][1]["carriers"] == ["cucc"] and "regions" not in group["members"][1]
    m = platform.merchant(balance=BALANCE)

    o = place(platform, m, "C-1", GD_CMCC)
    assert (o["carrier"], o["region"]) == ("cmcc", "CN-GD")
    assert tried(o) == [("gd", "succeeded")]
    assert tried(place(platform, m, "C-2", BJ_CUCC)) == [("cu", "succeeded")]
    # Both cover a Guangdong Unicom number: the group's own order decides.
    assert tried(place(platform, m, "C-3", GD_CUCC)) == [("gd", "succeeded")]
    # The merchant sees the region too.
    mine = m.get(f"/v1/orders/{o['order_id']}").json()
    assert mine["region"] == "CN-GD"

    before = m.get("/v1/balance").json()
    for moid, account in (("C-4", BJ_CMCC), ("C-5", NOWHERE_CBN)):
        r = m.order(moid, account=account)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "no_route"
        assert m.get(f"/v1/orders?merchant_order_id={moid}").json()["items"] == []
    assert r.json()["error"]["details"] == {"carrier": "cbn", "region": None}
    assert m.get("/v1/balance").json() == before, "nothing is charged for an order no one covers"

    # The operator's view: the ranking for a carrier and region, and the grid with its gaps.
    assert platform.admin.get("/admin/v1/groups/air", params={"carrier": "cucc", "region": "CN-GD"}).json()[
        "ranking"
    ] == ["gd", "cu"]
    assert (
        platform.admin.get("/admin/v1/groups/air", params={"carrier": "cmcc", "region": "cn-bj"}).json()[
            "ranking"
        ]
        == []
    )
    grid = platform.admin.get("/admin/v1/groups/air/coverage").json()
    assert grid["carriers"] == ["cmcc", "cucc", "ctcc", "cbn"] and grid["regions"][-1] is None
    cells = {(row["region"], c["carrier"]): c for row in grid["rows"] for c in row["cells"]}
    assert cells[("CN-GD", "cucc")]["ranking"] == ["gd", "cu"]
    assert cells[("CN-GD", "ctcc")]["ranking"] == ["gd"]
    assert cells[("CN-BJ", "cucc")]["ranking"] == ["cu"]
    assert cells[("CN-BJ", "cmcc")]["gap"] and cells[(None, "cbn")]["gap"]
    assert not cells[(None, "cucc")]["gap"], "a carriers-only member covers numbers of unknown region"
    # Outside Guangdong (30 provinces and the unknown row) only Unicom numbers are served.
    assert grid["gaps"] == sum(1 for c in cells.values() if c["gap"]) == 31 * 3


def test_coverage_that_names_what_no_order_can_have_is_refused(platform: Platform, sim) -> None:
    platform.channel("supA", sim_channel(sim, "supA"))
    for member, field in (
        ({"regions": ["CN-XX"]}, "regions"),
        ({"regions": []}, "regions"),
        ({"carriers": ["sinopec"]}, "carriers"),
    ):
        body = {"business_type": "mobile_airtime", "members": [{"channel": "supA", **member}]}
        r = platform.admin.put("/admin/v1/groups/air", json=body)
        assert r.status_code == 400, (member, r.text)
        assert r.json()["error"]["code"] == "invalid_request" and field in r.text
    fuel = {"business_type": "fuel_card", "members": [{"channel": "supA", "regions": ["CN-GD"]}]}
    assert platform.admin.put("/admin/v1/groups/fuel", json=fuel).status_code == 400
    assert platform.admin.get("/admin/v1/groups/air").status_code == 404, "nothing half-written"


# ---- balances ------------------------------------------------------------------------------------------


def test_a_low_balance_pauses_the_channel_and_a_top_up_resumes_it(platform: Platform, sim) -> None:
    platform.product("airtime.50", brand=None)  # the brandless group; airtime.cm has a group of its own
    platform.product("airtime.cm", brand="cmcc")
    # supA's supplier account holds 120 yuan; an airtime.50 order takes 50; below 80 it pauses.
    platform.channel("supA", sim_channel(sim, "supA", balance=12_000), min_balance=8_000, balance_check_s=0.2)
    platform.channel("supB", sim_channel(sim, "supB"))
    members = [{"channel": "supA", "priority": 1}, {"channel": "supB", "priority": 2}]
    platform.group("air", "mobile_airtime", members)
    platform.group("cm", "mobile_airtime", [{"channel": "supA"}], brand="cmcc")  # supA alone
    m = platform.merchant(balance=BALANCE)
    assert tried(place(platform, m, "B-1", BJ_CMCC)) == [("supA", "succeeded")]

    shown = wait_until(lambda: (ch := channel(platform, "supA"))["paused"] and ch, 10, "supA to pause")
    assert shown["paused"] == "low_balance" and shown["paused_at"]
    assert shown["balance"]["amount"] == 7_000 and shown["min_balance"] == 8_000
    [entry] = exceptions(platform, "channel_paused")
    assert entry["channel"] == "supA" and entry["detail"]["balance"] == 7_000 and entry["resolved_at"] is None
    # Paused: skipped for new orders (no failover, no attempt at all), refused where it is the only one.
    assert tried(place(platform, m, "B-2", BJ_CMCC)) == [("supB", "succeeded")]
    assert platform.get_group("air")["ranking"] == ["supB"]
    before = m.get("/v1/balance").json()
    r = m.order("B-3", product_code="airtime.cm", account=BJ_CMCC)
    assert r.status_code == 400 and r.json()["error"]["code"] == "no_route", r.text
    assert m.get("/v1/balance").json() == before
    got = scrape(platform)
    assert got[("topup_channel_paused", (("channel", "supA"), ("reason", "low_balance")))] == 1
    assert got[("topup_channel_balance", (("channel", "supA"), ("currency", "CNY")))] == 7_000
    # Later checks that find it still low raise nothing new.
    checks = len(platform.admin.get("/admin/v1/channels/supA/balances").json()["items"])
    wait_until(
        lambda: len(platform.admin.get("/admin/v1/channels/supA/balances").json()["items"]) >= checks + 2,
        10,
        "two more balance checks",
    )
    assert len(exceptions(platform, "channel_paused")) == 1

    # The supplier account is topped up: the next check resumes the channel by itself.
    sim_channel(sim, "supA", balance=100_000)
    wait_until(lambda: channel(platform, "supA")["paused"] is None, 10, "supA to resume")
    assert tried(place(platform, m, "B-4", BJ_CMCC)) == [("supA", "succeeded")]
    assert tried(place(platform, m, "B-5", BJ_CMCC, product="airtime.cm")) == [("supA", "succeeded")]
    [entry] = exceptions(platform, "channel_paused")
    assert entry["detail"]["resumed_balance"] == 100_000 and entry["detail"]["resumed_at"]
    assert scrape(platform)[("topup_channel_paused", (("channel", "supA"), ("reason", "")))] == 0
    assert platform.ledger_check()["balanced"]


def test_an_insufficient_balance_rejection_checks_the_balance_at_once(platform: Platform, sim) -> None:
    platform.product("airtime.50")
    # Checked when saved, then only hourly: the second check below is the rejection's.
    platform.channel(
        "supA", sim_channel(sim, "supA", balance=100_000), min_balance=8_000, balance_check_s=3600
    )
    platform.channel("supB", sim_channel(sim, "supB"))
    platform.group(
        "air", "mobile_airtime", [{"channel": "supA", "priority": 1}, {"channel": "supB", "priority": 2}]
    )

    def history() -> list[dict[str, Any]]:
        return platform.admin.get("/admin/v1/channels/supA/balances").json()["items"]  # type: ignore[no-any-return]

    wait_until(lambda: len(history()) == 1, 10, "the check made when the channel was saved")
    assert channel(platform, "supA")["paused"] is None
    sim_channel(sim, "supA", balance=3_000)  # less than an order takes: the supplier refuses it
    m = platform.merchant(balance=BALANCE)
    order = place(platform, m, "I-1", BJ_CMCC)
    assert tried(order) == [("supA", "failed"), ("supB", "succeeded")]
    assert "insufficient_balance" in order["attempts"][0]["reason"]
    wait_until(lambda: channel(platform, "supA")["paused"] == "low_balance", 10, "supA to pause")
    assert [c["amount"] for c in history()] == [3_000, 100_000]


# ---- rate limits ---------------------------------------------------------------------------------------


def test_a_rate_limited_channel_starts_at_most_n_dispatches_a_second_and_orders_wait(
    platform: Platform, sim
) -> None:
    platform.product("airtime.50")
    # Short supplier clocks: waiting for a turn must count toward neither.
    platform.channel("supA", sim_channel(sim, "supA"), rate_limit_per_s=2, timeout_s=0.5, max_wait_s=1.0)
    platform.channel("supB", sim_channel(sim, "supB"))
    platform.group(
        "air", "mobile_airtime", [{"channel": "supA", "priority": 1}, {"channel": "supB", "priority": 2}]
    )
    m = platform.merchant(balance=BALANCE)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        created = list(pool.map(lambda i: m.order(f"R-{i}", account=BJ_CMCC), range(8)))
    ids = [r.json()["order_id"] for r in created]
    wait_until(lambda: channel(platform, "supA")["rate_limit_waiting"] > 0, 5, "orders waiting their turn")
    # The console shows the queue too (overview card, channel page).
    console = ConsoleClient(platform.url)
    try:
        console.login()
        overview = console.get("/console").text
        shown = re.search(r'data-metric="rate-waiting">(\d+)<', overview)
        assert shown and int(shown.group(1)) > 0 and 'href="/console/channels/supA"' in overview
        assert 'id="waiting-count"' in console.get("/console/channels/supA").text
    finally:
        console.close()
    orders = [platform.wait_order(i, timeout_s=20) for i in ids]
    assert all(tried(o) == [("supA", "succeeded")] for o in orders), [tried(o) for o in orders]
    starts = [float(r.dispatched_at) for r in run_db(platform, "SELECT dispatched_at FROM attempts")]
    assert len(starts) == 8 and max_in_window(starts) <= 2, sorted(starts)
    assert max(starts) - min(starts) >= 3.0, "8 dispatches at 2 a second take at least 3 s"
    stories = [platform.admin_order(i) for i in ids]
    turns = {
        o["order_id"]: e["detail"]["turn_at"]
        for o in stories
        for e in o["timeline"]
        if e["kind"] == "rate_limited"
    }
    assert len(turns) == 6, "two went at once, the others waited their turn"
    if platform.database_url.startswith("sqlite"):
        # One worker: turns are handed out in arrival order (RFC 3339 strings sort by time). Arrival is
        # the insertion order: orders placed together share one group commit and so one created_at.
        created = run_db(platform, "SELECT id, rowid AS seq FROM orders")
        arrival = sorted((int(r.seq), r.id) for r in created if r.id in turns)
        assert [turns[oid] for _, oid in arrival] == sorted(turns.values())
    group = platform.get_group("air")
    assert group["active_channel"] == "supA"
    assert platform.admin.get("/admin/v1/groups/air/switches").json()["items"] == []
    assert channel(platform, "supA")["rate_limit_waiting"] == 0
