"""The pure routing rules of SPEC section 3: strategies, margin guard, rotation, sticky switch, deadlines."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from topup.domain.routing import (
    DeadlineAction,
    GroupState,
    Member,
    Strategy,
    after_failover,
    after_probe_success,
    eligible,
    group_ranking,
    home_channel,
    next_channel,
    on_deadline,
    plan_route,
    probe_due,
    rank,
    rotate,
    start_probe,
    success_rate,
)

P = "airtime.50"
PRICE = 4980


# --- strategies -------------------------------------------------------------------------------------


def test_priority_orders_by_priority_then_code() -> None:
    members = [Member("c", priority=3), Member("a", priority=2), Member("b", priority=1), Member("z", 2)]
    assert rank(members, "priority", P, PRICE) == ["b", "a", "z", "c"]


def test_priority_ignores_costs_and_weights() -> None:
    members = [
        Member("a", priority=2, weight=100, costs={P: 1}),
        Member("b", priority=1, weight=1, costs={P: 4000}),
    ]
    assert rank(members, Strategy.PRIORITY, P, PRICE) == ["b", "a"]


def test_cost_cheapest_first_ties_by_priority_members_without_cost_last() -> None:
    members = [
        Member("nocost_hi", priority=1),
        Member("dear", priority=1, costs={P: 4900}),
        Member("cheap_p3", priority=3, costs={P: 4000}),
        Member("cheap_p2", priority=2, costs={P: 4000}),
        Member("nocost_lo", priority=0),
        Member("other_product_cost", priority=5, costs={"airtime.100": 1}),
        Member("cheapest", priority=9, costs={P: 3000}),
    ]
    assert rank(members, "cost", P, PRICE) == [
        "cheapest",
        "cheap_p2",
        "cheap_p3",
        "dear",
        # no cost for this product: last, by priority
        "nocost_lo",
        "nocost_hi",
        "other_product_cost",
    ]


def test_cost_of_zero_is_a_cost() -> None:
    members = [Member("none", priority=0), Member("free", priority=5, costs={P: 0})]
    assert rank(members, "cost", P, PRICE) == ["free", "none"]


def test_success_rate_best_first_ties_by_priority_unknown_is_healthy() -> None:
    members = [Member("a", 1), Member("b", 2), Member("c", 3), Member("d", 4), Member("new", 5)]
    rates = {"a": 0.5, "b": 0.9, "c": 0.9, "d": 0.1}
    assert rank(members, "success_rate", P, PRICE, rates) == ["new", "b", "c", "a", "d"]
    # Without any history every channel looks healthy: priority order.
    assert rank(members, "success_rate", P, PRICE) == ["a", "b", "c", "d", "new"]


def test_success_rate_window() -> None:
    assert success_rate([]) == 1.0
    assert success_rate([], prior=0.5) == 0.5
    assert success_rate([True, False, True, True]) == 0.75
    assert success_rate([False, False]) == 0.0


WEIGHTED = [
    Member("a", priority=1, weight=1),
    Member("b", priority=2, weight=3),
    Member("zero", priority=3, weight=0),
    Member("d", priority=4, weight=6),
]


def test_weighted_first_pick_follows_weights_rest_by_priority() -> None:
    rng = random.Random(20240601)
    draws = 20_000
    firsts: Counter[str] = Counter()
    by_priority = ["a", "b", "zero", "d"]
    for _ in range(draws):
        ranking = rank(WEIGHTED, "weighted", P, PRICE, rng=rng)
        assert sorted(ranking) == sorted(by_priority)
        firsts[ranking[0]] += 1
        # Everyone else follows in priority order.
        assert ranking[1:] == [c for c in by_priority if c != ranking[0]]
    assert firsts["zero"] == 0  # weight 0 is never picked first
    for ch, share in {"a": 0.1, "b": 0.3, "d": 0.6}.items():
        assert abs(firsts[ch] / draws - share) < 0.02, (ch, firsts)


def test_weighted_is_reproducible_with_a_seed() -> None:
    a = [rank(WEIGHTED, "weighted", P, PRICE, rng=random.Random(7)) for _ in range(3)]
    b = [rank(WEIGHTED, "weighted", P, PRICE, rng=random.Random(7)) for _ in range(3)]
    assert a == b


def test_weighted_without_rng_or_weights_falls_back_to_priority() -> None:
    assert rank(WEIGHTED, "weighted", P, PRICE) == ["a", "b", "zero", "d"]
    zero = [Member("x", 2, weight=0), Member("y", 1, weight=0)]
    assert rank(zero, "weighted", P, PRICE, rng=random.Random(1)) == ["y", "x"]


def test_weighted_respects_margin_guard() -> None:
    members = [Member("heavy", 1, weight=1000, costs={P: PRICE + 1}), Member("light", 2, weight=1)]
    rng = random.Random(3)
    for _ in range(200):
        assert rank(members, "weighted", P, PRICE, rng=rng) == ["light"]


def test_unknown_strategy_is_an_error() -> None:
    with pytest.raises(ValueError):
        rank([Member("a")], "fastest", P, PRICE)


# --- margin guard and disabled members --------------------------------------------------------------


@pytest.mark.parametrize("strategy", list(Strategy))
def test_margin_guard_under_every_strategy(strategy: Strategy) -> None:
    members = [
        Member("loss", priority=0, weight=100, costs={P: PRICE + 1}),
        Member("even", priority=1, costs={P: PRICE}),  # cost == price is allowed
        Member("unknown_cost", priority=2),
    ]
    rng = random.Random(0)
    for _ in range(50):
        ranking = rank(members, strategy, P, PRICE, {"loss": 1.0, "even": 0.0}, rng=rng)
        assert "loss" not in ranking
        assert sorted(ranking) == ["even", "unknown_cost"]


@pytest.mark.parametrize("strategy", list(Strategy))
def test_no_channel_left_gives_empty_ranking(strategy: Strategy) -> None:
    members = [
        Member("a", costs={P: PRICE + 1}),
        Member("b", costs={P: 10**9}),
        Member("c", enabled=False),
    ]
    assert rank(members, strategy, P, PRICE, rng=random.Random(1)) == []
    assert home_channel(members, strategy, P, PRICE) is None


def test_margin_guard_is_per_product() -> None:
    m = Member("a", costs={P: 9000, "airtime.100": 9000})
    assert eligible([m], P, PRICE) == []
    assert eligible([m], "airtime.100", 9960) == [m]


@pytest.mark.parametrize("strategy", list(Strategy))
def test_disabled_members_are_skipped(strategy: Strategy) -> None:
    members = [
        Member("off", priority=0, weight=1000, costs={P: 1}, enabled=False),
        Member("on", priority=1, costs={P: 2}),
    ]
    rng = random.Random(5)
    for _ in range(50):
        assert rank(members, strategy, P, PRICE, {"off": 1.0, "on": 0.0}, rng=rng) == ["on"]
    assert home_channel(members, strategy, P, PRICE) == "on"


def test_home_channel_is_the_deterministic_top() -> None:
    assert home_channel(WEIGHTED, "weighted", P, PRICE) == "d"  # the heaviest
    assert home_channel(WEIGHTED, "priority", P, PRICE) == "a"
    members = [Member("a", 1, costs={P: 4000}), Member("b", 2, costs={P: 3000})]
    assert home_channel(members, "cost", P, PRICE) == "b"
    assert home_channel(members, "success_rate", P, PRICE, {"a": 0.2, "b": 0.1}) == "a"


# --- rotation and plans -----------------------------------------------------------------------------

RANK = ["a", "b", "c", "d"]


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (None, ["a", "b", "c", "d"]),
        ("a", ["a", "b", "c", "d"]),
        ("c", ["c", "d", "a", "b"]),
        ("d", ["d", "a", "b", "c"]),
        ("gone", ["a", "b", "c", "d"]),  # an active channel no longer ranked: start at the top
    ],
)
def test_rotate_from_active_channel_wraps_round(start: str | None, expected: list[str]) -> None:
    assert rotate(RANK, start) == expected


def test_rotate_empty() -> None:
    assert rotate([], "a") == []
    assert rotate([], None) == []


def test_plan_without_switch_starts_at_top() -> None:
    plan = plan_route(GroupState(), RANK, "a", now=1000.0)
    assert plan.channels == RANK and plan.probe is False


def test_plan_starts_at_active_channel() -> None:
    state = GroupState(active_channel="c", switched_at=1000.0, recovery_s=300)
    plan = plan_route(state, RANK, "a", now=1100.0)
    assert plan.channels == ["c", "d", "a", "b"] and plan.probe is False
    assert group_ranking(state, RANK, "a", 1100.0) == ["c", "d", "a", "b"]


def test_plan_not_sticky_ignores_active_channel() -> None:
    state = GroupState(sticky=False, active_channel="c", switched_at=0.0, recovery_s=0)
    plan = plan_route(state, RANK, "a", now=10_000.0)
    assert plan.channels == RANK and plan.probe is False


def test_plan_probes_home_after_recovery() -> None:
    state = GroupState(active_channel="c", switched_at=1000.0, recovery_s=300)
    assert plan_route(state, RANK, "a", now=1299.9).probe is False
    plan = plan_route(state, RANK, "a", now=1300.0)
    assert plan.probe is True
    assert plan.channels == ["a", "b", "c", "d"]
    assert group_ranking(state, RANK, "a", 1300.0) == ["a", "b", "c", "d"]


def test_plan_probe_starts_at_home_even_when_home_is_not_first() -> None:
    # Weighted groups: home is the heaviest member, not the priority top.
    state = GroupState(active_channel="a", switched_at=0.0, recovery_s=10)
    plan = plan_route(state, RANK, "c", now=100.0)
    assert plan.probe is True and plan.channels == ["c", "d", "a", "b"]


# --- probe_due --------------------------------------------------------------------------------------

SWITCHED = GroupState(sticky=True, recovery_s=60.0, active_channel="b", switched_at=100.0)


@pytest.mark.parametrize(
    ("state", "home", "now", "due"),
    [
        (SWITCHED, "a", 159.9, False),  # still inside the recovery window
        (SWITCHED, "a", 160.0, True),  # exactly at recovery_s
        (SWITCHED, "a", 10_000.0, True),
        (replace(SWITCHED, sticky=False), "a", 10_000.0, False),
        (SWITCHED, None, 10_000.0, False),  # nothing to return to
        (replace(SWITCHED, active_channel=None), "a", 10_000.0, False),
        (replace(SWITCHED, active_channel="a"), "a", 10_000.0, False),  # already home
        (replace(SWITCHED, switched_at=None), "a", 10_000.0, False),
        # a probe is in flight: no second probe until it expires
        (replace(SWITCHED, probe_order_id="ord_1", probe_until=200.0), "a", 199.0, False),
        (replace(SWITCHED, probe_order_id="ord_1", probe_until=200.0), "a", 200.0, True),
        (replace(SWITCHED, recovery_s=0.0), "a", 100.0, True),
    ],
)
def test_probe_due(state: GroupState, home: str | None, now: float, due: bool) -> None:
    assert probe_due(state, home, now) is due


def test_start_probe_blocks_a_second_probe() -> None:
    state = start_probe(SWITCHED, "ord_probe", until=500.0)
    assert state.probe_order_id == "ord_probe" and state.probe_until == 500.0
    assert state.active_channel == "b" and state.switched_at == 100.0
    assert probe_due(state, "a", 300.0) is False
    assert plan_route(state, RANK, "a", 300.0).channels == ["b", "c", "d", "a"]


# --- sticky switch transitions ----------------------------------------------------------------------


def test_after_failover_moves_active_and_restarts_timer() -> None:
    state = start_probe(SWITCHED, "ord_probe", until=500.0)
    after = after_failover(state, "c", now=400.0)
    assert after.active_channel == "c"
    assert after.switched_at == 400.0
    assert after.probe_order_id is None and after.probe_until is None
    assert after.recovery_s == state.recovery_s and after.sticky


def test_failed_probe_restarts_the_recovery_timer() -> None:
    # The probe at home "a" fails over back to "b": timer restarts from now.
    state = start_probe(SWITCHED, "ord_probe", until=500.0)
    after = after_failover(state, "b", now=300.0)
    assert after.active_channel == "b" and after.switched_at == 300.0
    assert probe_due(after, "a", 359.0) is False
    assert probe_due(after, "a", 360.0) is True


def test_after_failover_not_sticky_changes_nothing() -> None:
    state = GroupState(sticky=False)
    assert after_failover(state, "c", now=5.0) == state


def test_after_probe_success_returns_home() -> None:
    state = start_probe(SWITCHED, "ord_probe", until=500.0)
    after = after_probe_success(state, "a", now=310.0)
    assert after.active_channel == "a" and after.switched_at == 310.0
    assert after.probe_order_id is None and after.probe_until is None
    assert probe_due(after, "a", 10**9) is False
    assert plan_route(after, RANK, "a", 10**9).channels == RANK


# --- next_channel -----------------------------------------------------------------------------------


def test_next_channel_takes_first_untried_available() -> None:
    plan = ["c", "d", "a", "b"]
    assert next_channel(plan, [], set(plan)) == "c"
    assert next_channel(plan, ["c"], set(plan)) == "d"
    assert next_channel(plan, ["c", "d"], {"a", "b", "c"}) == "a"  # wraps to the top
    assert next_channel(plan, ["c"], {"b"}) == "b"  # d, a disabled meanwhile
    assert next_channel(plan, ["c", "d", "a", "b"], set(plan)) is None
    assert next_channel(plan, [], set()) is None
    assert next_channel([], [], {"a"}) is None
    assert next_channel(plan, ["b"], {"b", "x"}) is None  # "x" is not in the plan


# --- deadlines --------------------------------------------------------------------------------------

T0 = 1000.0


@pytest.mark.parametrize("status", ["success", "failed", "not_found", "processing", None, "weird"])
def test_no_query_support_abandons_whatever_the_status(status: str | None) -> None:
    d = on_deadline(status, T0 + 1, T0, timeout_s=1, max_wait_s=10, supports_query=False)
    assert d.action is DeadlineAction.ABANDON and d.next_check_at is None


def test_query_success_completes() -> None:
    d = on_deadline("success", T0 + 30, T0, timeout_s=1, max_wait_s=10, supports_query=True)
    assert d.action is DeadlineAction.COMPLETE  # even past max_wait: the supplier did it


@pytest.mark.parametrize("status", ["failed", "not_found"])
def test_query_failed_or_not_found_fails_over(status: str) -> None:
    d = on_deadline(status, T0 + 1, T0, timeout_s=1, max_wait_s=10, supports_query=True)
    assert d.action is DeadlineAction.FAIL_OVER
    d = on_deadline(status, T0 + 30, T0, timeout_s=1, max_wait_s=10, supports_query=True)
    assert d.action is DeadlineAction.FAIL_OVER


@pytest.mark.parametrize("status", ["processing", None, "unexpected"])
def test_processing_or_query_error_waits_another_timeout(status: str | None) -> None:
    d = on_deadline(status, T0 + 2, T0, timeout_s=2, max_wait_s=10, supports_query=True)
    assert d.action is DeadlineAction.WAIT
    assert d.next_check_at == T0 + 4


def test_wait_is_capped_at_max_wait() -> None:
    d = on_deadline("processing", T0 + 8.5, T0, timeout_s=2, max_wait_s=10, supports_query=True)
    assert d.action is DeadlineAction.WAIT
    assert d.next_check_at == T0 + 10


@pytest.mark.parametrize(
    ("now", "action"),
    [
        (T0 + 9.99, DeadlineAction.WAIT),
        (T0 + 10 - 1e-7, DeadlineAction.ABANDON),  # within the float tolerance of the boundary
        (T0 + 10, DeadlineAction.ABANDON),
        (T0 + 11, DeadlineAction.ABANDON),
    ],
)
@pytest.mark.parametrize("status", ["processing", None])
def test_max_wait_boundary(now: float, action: DeadlineAction, status: str | None) -> None:
    d = on_deadline(status, now, T0, timeout_s=2, max_wait_s=10, supports_query=True)
    assert d.action is action


def test_max_wait_shorter_than_timeout_allows_one_timeout() -> None:
    d = on_deadline("processing", T0 + 1, T0, timeout_s=2, max_wait_s=1, supports_query=True)
    assert d.action is DeadlineAction.WAIT and d.next_check_at == T0 + 2
    d = on_deadline("processing", T0 + 2, T0, timeout_s=2, max_wait_s=1, supports_query=True)
    assert d.action is DeadlineAction.ABANDON


def test_repeated_waits_end_in_abandon_at_max_wait() -> None:
    now, checks = T0 + 0.3, []
    while True:
        d = on_deadline("processing", now, T0, timeout_s=0.3, max_wait_s=1.0, supports_query=True)
        if d.action is DeadlineAction.ABANDON:
            break
        assert d.next_check_at is not None and d.next_check_at > now
        checks.append(d.next_check_at)
        now = d.next_check_at
    assert now == pytest.approx(T0 + 1.0)
    assert len(checks) == 3  # 0.6, 0.9, 1.0


# --- properties -------------------------------------------------------------------------------------

CHANNELS = [f"ch{i}" for i in range(6)]


@st.composite
def group_and_order(draw: st.DrawFn) -> tuple[list[str], GroupState, str | None, float, set[str]]:
    ranking = list(draw(st.permutations(CHANNELS)))[: draw(st.integers(0, len(CHANNELS)))]
    active = draw(st.one_of(st.none(), st.sampled_from(CHANNELS)))
    home = ranking[0] if ranking else None
    state = GroupState(
        sticky=draw(st.booleans()),
        recovery_s=draw(st.floats(0, 100)),
        active_channel=active,
        switched_at=draw(st.one_of(st.none(), st.floats(0, 100))),
        probe_order_id=draw(st.one_of(st.none(), st.just("ord_p"))),
        probe_until=draw(st.one_of(st.none(), st.floats(0, 200))),
    )
    now = draw(st.floats(0, 200))
    available = set(draw(st.sets(st.sampled_from(CHANNELS))))
    return ranking, state, home, now, available


@settings(max_examples=400, deadline=None)
@given(
    setup=group_and_order(),
    outcomes=st.lists(st.sampled_from(["rejected", "failed", "abandoned", "success"]), max_size=10),
    disable=st.lists(st.sets(st.sampled_from(CHANNELS), max_size=2), max_size=10),
)
def test_route_tries_each_channel_once_and_skips_none(
    setup: tuple[list[str], GroupState, str | None, float, set[str]],
    outcomes: list[str],
    disable: list[set[str]],
) -> None:
    ranking, state, home, now, available = setup
    plan = plan_route(state, ranking, home, now)
    # The plan is the ranking rotated: every ranked channel exactly once.
    assert sorted(plan.channels) == sorted(ranking)
    if ranking:
        i = plan.channels.index(ranking[0])
        assert plan.channels[i:] + plan.channels[:i] == list(ranking)

    tried: list[str] = []
    for step in range(len(CHANNELS) + 2):
        # Channels may be switched off while the order is in flight.
        if step < len(disable):
            available = available - disable[step]
        ch = next_channel(plan.channels, tried, available)
        untried = [c for c in plan.channels if c in available and c not in tried]
        if ch is None:
            assert untried == [], "gave up with an untried available channel"
            break
        assert ch not in tried, "tried a channel twice"
        assert ch == untried[0], "skipped an untried available channel"
        tried.append(ch)
        outcome = outcomes[step] if step < len(outcomes) else "failed"
        if outcome == "success":
            break
    assert len(tried) == len(set(tried))
    assert set(tried) <= set(ranking)


@settings(max_examples=200, deadline=None)
@given(
    ranking=st.permutations(CHANNELS).map(lambda p: list(p[:4])),
    orders=st.lists(
        st.tuples(st.floats(0, 50), st.lists(st.booleans(), min_size=1, max_size=5)), max_size=15
    ),
)
def test_sticky_switch_over_many_orders(ranking: list[str], orders: list[tuple[float, list[bool]]]) -> None:
    """Orders with random outcomes keep the active channel a ranked member and probe only when due."""
    state, home, now = GroupState(recovery_s=20.0), ranking[0], 0.0
    for gap, results in orders:
        now += gap
        due = probe_due(state, home, now)
        plan = plan_route(state, ranking, home, now)
        assert plan.probe is due
        if plan.probe:
            assert plan.channels[0] == home
            state = start_probe(state, "ord", until=now + 10)
        elif state.active_channel is not None:
            assert plan.channels[0] == state.active_channel
        tried: list[str] = []
        succeeded_at = None
        for ok in results:
            ch = next_channel(plan.channels, tried, set(ranking))
            if ch is None:
                break
            tried.append(ch)
            if ok:
                succeeded_at = ch
                break
        assert len(tried) == len(set(tried))
        if len(tried) > 1:
            state = after_failover(state, tried[-1], now)
            assert state.active_channel == tried[-1] and state.switched_at == now
        elif plan.probe and succeeded_at == home:
            state = after_probe_success(state, home, now)
            assert state.active_channel == home
        assert state.active_channel is None or state.active_channel in ranking
