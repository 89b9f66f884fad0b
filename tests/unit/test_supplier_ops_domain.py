"""Supplier operations rules without a database (SPEC section 7): regions from the geocoding data,
coverage, the routing view of paused and non-covering members, pause rules, rate-limit slots."""

from __future__ import annotations

import random

import pytest
from phonenumbers.geodata import GEOCODE_DATA

from topup.domain import coverage as C
from topup.domain import routing as R
from topup.domain.accounts import validate_account
from topup.domain.regions import MAINLAND, PROVINCES, REGION_CODES, from_description, region_of
from topup.domain.supplier_ops import WINDOW_S, low_balance, means_insufficient_balance, next_start
from topup.services.catalog import Channel, Group, Snapshot


@pytest.mark.parametrize(
    ("number", "region"),
    [
        ("13800138000", "CN-BJ"),
        ("13712345678", "CN-GD"),
        ("18620001234", "CN-GD"),
        ("13312345678", "CN-GZ"),
        ("18912345678", "CN-JS"),
        ("13512345678", "CN-CQ"),
        ("15012345678", "CN-YN"),
        ("19212345678", None),  # the data says only "China"
        ("17012345678", None),
    ],
)
def test_region_of_a_mobile_number(number: str, region: str | None) -> None:
    assert region_of(number) == region


def test_the_table_has_the_34_province_level_divisions_and_maps_every_mainland_one() -> None:
    assert len(PROVINCES) == 34 == len(REGION_CODES) and len(MAINLAND) == 31
    found = set()
    for prefix, names in GEOCODE_DATA.items():
        if prefix.startswith("861") and len(prefix) >= 4:
            english, chinese = names.get("en", ""), names.get("zh", "")
            code = from_description(english)
            assert code is not None, (prefix, english)
            assert from_description("", chinese) == code, (prefix, english, chinese)
            found.add(code)
    assert found == {p.code for p in MAINLAND}


def test_descriptions_in_either_language() -> None:
    assert from_description("Dongguan, Guangdong") == "CN-GD"
    assert from_description("", "内蒙古呼和浩特市") == "CN-NM"
    assert from_description("", "黑龙江省哈尔滨市") == "CN-HL"
    assert from_description("Shaanxi") == "CN-SN" and from_description("Shanxi") == "CN-SX"
    assert from_description("China", "中国") is None


def test_accounts_carry_the_region_of_mobile_numbers_only() -> None:
    assert validate_account("mobile_airtime", "+86 137 1234 5678").region == "CN-GD"
    assert validate_account("membership", "13800138000", "iqiyi").region == "CN-BJ"
    assert validate_account("membership", "12345678", "iqiyi").region is None
    assert validate_account("fuel_card", "1000113200001234567").region is None


def test_a_member_covers_only_what_it_lists_and_a_list_never_covers_unknown() -> None:
    everyone = R.Member("a")
    gd = C.with_coverage(R.Member("b"), None, ["CN-GD"])
    cu = C.with_coverage(R.Member("c"), ["cucc"], None)
    assert everyone.covers(R.Destination(None, None))
    assert gd.covers(R.Destination("cmcc", "CN-GD")) and not gd.covers(R.Destination("cmcc", "CN-BJ"))
    assert not gd.covers(R.Destination("cmcc", None))
    assert cu.covers(R.Destination("cucc", None)) and not cu.covers(R.Destination(None, "CN-GD"))


def test_coverage_lists_are_checked_and_normalised() -> None:
    assert C.normalise("mobile_airtime", [" CUCC", "cmcc", "cmcc"], ["cn-gd"]) == (
        ["cmcc", "cucc"],
        ["CN-GD"],
    )
    assert C.normalise("mobile_data", None, None) == (None, None)
    assert C.normalise("membership", ["iqiyi"], None) == (["iqiyi"], None)
    for args in (
        ("mobile_airtime", [], None),
        ("mobile_airtime", None, []),
        ("mobile_airtime", ["sinopec"], None),
        ("mobile_airtime", None, ["CN-XX"]),
        ("fuel_card", None, ["CN-GD"]),
    ):
        with pytest.raises(C.CoverageError):
            C.normalise(*args)


def _snapshot(paused: set[str]) -> tuple[Snapshot, Group]:
    def channel(code: str) -> Channel:
        return Channel(
            code,
            code,
            "topup-json",
            "http://x",
            1.0,
            2.0,
            True,
            True,
            paused=("low_balance" if code in paused else None),
        )

    members = (
        C.with_coverage(R.Member("gd", priority=1), None, ["CN-GD"]),
        C.with_coverage(R.Member("cu", priority=2), ["cucc"], None),
        R.Member("all", priority=3),
    )
    group = Group("air", "mobile_airtime", None, "priority", True, 300.0, members)
    snap = Snapshot({}, {code: channel(code) for code in ("gd", "cu", "all")}, {"air": group}, 0.0)
    return snap, group


def test_routing_skips_paused_members_and_members_that_do_not_cover_the_order() -> None:
    snap, group = _snapshot(paused=set())

    def ranking(to: R.Destination | None) -> list[str]:
        return R.rank(snap.members_of(group, "p", to), "priority", "p", 100)

    assert ranking(R.Destination("cucc", "CN-GD")) == ["gd", "cu", "all"]
    assert ranking(R.Destination("cmcc", "CN-BJ")) == ["all"]
    assert ranking(None) == ["gd", "cu", "all"], "without a destination coverage does not apply"
    snap, group = _snapshot(paused={"all"})
    assert ranking(R.Destination("cmcc", "CN-BJ")) == [], "the only covering member is paused: no_route"
    assert ranking(R.Destination("cucc", "CN-BJ")) == ["cu"]


def test_the_grid_shows_rankings_idle_members_and_gaps() -> None:
    snap, group = _snapshot(paused={"all"})
    carriers, regions = C.grid_axes("mobile_airtime", None)
    assert carriers == ["cmcc", "cucc", "ctcc", "cbn"] and len(regions) == 32 and regions[-1] is None
    rows = C.grid(snap.members_of(group), "priority", carriers, regions)
    cell = {(c.region, c.carrier): c for row in rows for c in row}
    assert cell[("CN-GD", "cucc")].ranking == ["gd", "cu"]
    assert cell[("CN-BJ", "cmcc")].gap and cell[("CN-BJ", "cmcc")].idle == ["all"]
    assert C.grid_axes("mobile_data", "ctcc")[0] == ["ctcc"]
    assert C.grid_axes("fuel_card", None) == (["sinopec", "petrochina"], [None])


def test_pause_rules() -> None:
    for code in ("insufficient_balance", "INSUFFICIENT_BALANCE", "InsufficientBalance"):
        assert means_insufficient_balance(code)
    assert not means_insufficient_balance("R01") and not means_insufficient_balance(None)
    assert low_balance(7_999, 8_000) and not low_balance(8_000, 8_000)
    assert not low_balance(0, None) and not low_balance(None, 8_000)


@pytest.mark.parametrize("limit", [1, 2, 5])
def test_slots_keep_any_second_to_n_starts_however_late_dispatches_go_out(limit: int) -> None:
    """The slot rule as the database applies it: reserve the oldest slot at `next_start`; a dispatch
    starts at its turn or later (a busy worker), but never before its slot's previous start + window."""
    rng = random.Random(limit)
    slots = [{"at": 0.0, "started": 0.0} for _ in range(limit)]
    starts, now = [], 1000.0
    for _ in range(300):
        now += rng.expovariate(limit * 3)  # arrivals three times faster than the limit
        slot = min(slots, key=lambda s: s["at"])
        turn = next_start(max(slot["at"], slot["started"]), now)
        slot["at"] = turn
        start = turn + rng.choice([0.0, 0.0, 0.01, 0.3])  # sometimes late
        start = max(start, slot["started"] + WINDOW_S)  # the held turn waits for a late predecessor
        slot["started"] = start
        starts.append(start)
    starts.sort()
    assert max(sum(1 for u in starts[i:] if u < t + 1.0) for i, t in enumerate(starts)) <= limit
