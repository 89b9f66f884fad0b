"""Routing: rank a group's members, plan an order's route, and move the sticky active channel.

Pure functions: (group, members, attempt history, now) -> next channel | give up.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum


class Strategy(StrEnum):
    PRIORITY = "priority"
    """Lowest priority number first."""
    COST = "cost"
    """Cheapest first, ties by priority, members without a cost last."""
    SUCCESS_RATE = "success_rate"
    """Best recent success rate first, ties by priority."""
    WEIGHTED = "weighted"
    """First pick random by weight, then the rest by priority."""


@dataclass(frozen=True)
class Member:
    channel: str
    priority: int = 0
    weight: int = 1
    costs: Mapping[str, int] = field(default_factory=dict)
    enabled: bool = True
    carriers: frozenset[str] | None = None
    """The carriers (brands) this member serves; None: every one (SPEC section 7)."""
    regions: frozenset[str] | None = None
    """The home regions (ISO 3166-2:CN) this member serves; None: every one."""

    def covers(self, to: Destination) -> bool:
        """A member that lists carriers (regions) serves only orders with one of them: an order whose
        carrier (region) is unknown is not covered by a list."""
        return (self.carriers is None or to.carrier in self.carriers) and (
            self.regions is None or to.region in self.regions
        )


@dataclass(frozen=True)
class Destination:
    """Where an order goes, as coverage sees it: its carrier (brand) and its home region."""

    carrier: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class GroupState:
    """The sticky switch: which member later orders start at, and the recovery probe."""

    sticky: bool = True
    recovery_s: float = 300.0
    active_channel: str | None = None
    switched_at: float | None = None
    probe_order_id: str | None = None
    probe_until: float | None = None


def eligible(members: Sequence[Member], product_code: str, price: int) -> list[Member]:
    """Enabled members whose cost for the product does not exceed its price (the margin guard)."""
    out = []
    for m in members:
        if not m.enabled:
            continue
        cost = m.costs.get(product_code)
        if cost is not None and cost > price:
            continue
        out.append(m)
    return out


def _by_priority(m: Member) -> tuple[int, str]:
    return (m.priority, m.channel)


def rank(
    members: Sequence[Member],
    strategy: str,
    product_code: str,
    price: int,
    success_rates: Mapping[str, float] | None = None,
    rng: random.Random | None = None,
) -> list[str]:
    """Members in the order an order tries them, before the active-channel rotation."""
    pool = eligible(members, product_code, price)
    strat = Strategy(strategy)
    if strat is Strategy.PRIORITY:
        ordered = sorted(pool, key=_by_priority)
    elif strat is Strategy.COST:

        def cost_key(m: Member) -> tuple[int, int, int, str]:
            cost = m.costs.get(product_code)
            return (cost is None, cost if cost is not None else 0, m.priority, m.channel)

        ordered = sorted(pool, key=cost_key)
    elif strat is Strategy.SUCCESS_RATE:
        rates = success_rates or {}
        ordered = sorted(pool, key=lambda m: (-rates.get(m.channel, 1.0), m.priority, m.channel))
    else:
        ordered = sorted(pool, key=_by_priority)
        if rng is not None and ordered:
            weights = [max(m.weight, 0) for m in ordered]
            if sum(weights) > 0:
                first = rng.choices(ordered, weights=weights, k=1)[0]
                ordered = [first] + [m for m in ordered if m is not first]
    return [m.channel for m in ordered]


def home_channel(
    members: Sequence[Member],
    strategy: str,
    product_code: str,
    price: int,
    success_rates: Mapping[str, float] | None = None,
) -> str | None:
    """The top-ranked member the sticky switch returns to (deterministic: weighted uses the heaviest)."""
    if Strategy(strategy) is Strategy.WEIGHTED:
        pool = sorted(
            eligible(members, product_code, price), key=lambda m: (-m.weight, m.priority, m.channel)
        )
        return pool[0].channel if pool else None
    ranking = rank(members, strategy, product_code, price, success_rates)
    return ranking[0] if ranking else None


def rotate(ranking: Sequence[str], start: str | None) -> list[str]:
    """Start at `start` (when it is in the ranking) and wrap round to the top."""
    if start is None or start not in ranking:
        return list(ranking)
    i = list(ranking).index(start)
    return list(ranking[i:]) + list(ranking[:i])


def probe_due(state: GroupState, home: str | None, now: float) -> bool:
    """True when this order should probe the home channel after the recovery window."""
    if not state.sticky or home is None or state.active_channel in (None, home):
        return False
    if state.switched_at is None or now - state.switched_at < state.recovery_s:
        return False
    return not (
        state.probe_order_id is not None and state.probe_until is not None and now < state.probe_until
    )


@dataclass(frozen=True)
class RoutePlan:
    channels: list[str]
    probe: bool


def plan_route(state: GroupState, ranking: Sequence[str], home: str | None, now: float) -> RoutePlan:
    """The order in which one order will try channels: from the active channel, or from home when probing."""
    if probe_due(state, home, now):
        return RoutePlan(rotate(ranking, home), probe=True)
    start = state.active_channel if state.sticky else None
    return RoutePlan(rotate(ranking, start), probe=False)


def next_channel(plan: Sequence[str], tried: Collection[str], available: Collection[str]) -> str | None:
    """The first channel of the plan not yet tried and still usable; None means give up."""
    for ch in plan:
        if ch not in tried and ch in available:
            return ch
    return None


def group_ranking(state: GroupState, ranking: Sequence[str], home: str | None, now: float) -> list[str]:
    """The ranking as the next order would try it (the operator's view)."""
    return plan_route(state, ranking, home, now).channels


def after_failover(state: GroupState, moved_to: str, now: float) -> GroupState:
    """Sticky switch: later orders start where this order moved to; the recovery timer restarts."""
    if not state.sticky:
        return state
    return replace(state, active_channel=moved_to, switched_at=now, probe_order_id=None, probe_until=None)


def start_probe(state: GroupState, order_id: str, until: float) -> GroupState:
    return replace(state, probe_order_id=order_id, probe_until=until)


def after_probe_success(state: GroupState, home: str, now: float) -> GroupState:
    """The home channel answered the probe: switch back to it."""
    return replace(state, active_channel=home, switched_at=now, probe_order_id=None, probe_until=None)


def success_rate(outcomes: Sequence[bool], prior: float = 1.0) -> float:
    """Share of successes in a recent window; an unknown channel is assumed healthy."""
    if not outcomes:
        return prior
    return sum(1 for o in outcomes if o) / len(outcomes)


class DeadlineAction(StrEnum):
    COMPLETE = "complete"
    """The status query says the supplier succeeded."""
    FAIL_OVER = "fail_over"
    """The query says failed / not_found: the attempt failed."""
    WAIT = "wait"
    """Still processing (or the query failed): wait another timeout_s."""
    ABANDON = "abandon"
    """Past max_wait_s, or no query support: give up on this attempt and fail over."""


@dataclass(frozen=True)
class DeadlineDecision:
    action: DeadlineAction
    next_check_at: float | None = None


def on_deadline(
    query_status: str | None,
    now: float,
    dispatched_at: float,
    timeout_s: float,
    max_wait_s: float,
    supports_query: bool,
) -> DeadlineDecision:
    """What to do when an attempt's timeout passes without a callback (SPEC section 3)."""
    if not supports_query:
        return DeadlineDecision(DeadlineAction.ABANDON)
    if query_status == "success":
        return DeadlineDecision(DeadlineAction.COMPLETE)
    if query_status in ("failed", "not_found"):
        return DeadlineDecision(DeadlineAction.FAIL_OVER)
    limit = dispatched_at + max(max_wait_s, timeout_s)
    if now >= limit - 1e-6:
        return DeadlineDecision(DeadlineAction.ABANDON)
    return DeadlineDecision(DeadlineAction.WAIT, min(now + timeout_s, limit))
