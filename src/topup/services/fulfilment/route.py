"""Routing: rank the order's group, fix its route plan, create its next attempt (or fail the order
when no channel is left), and move the sticky group's active channel on a fail-over."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

from topup.domain import routing as R
from topup.domain import suppliers as port
from topup.domain.orders import Attempt, AttemptStatus, Order, OrderStatus, attempt_ref
from topup.services import catalog, jobs, rate_limits
from topup.services.catalog import Snapshot
from topup.services.fulfilment.base import DISPATCH_SENT
from topup.services.fulfilment.outcomes import Outcomes
from topup.services.orders import add_event
from topup.services.ports.orders import NewAttempt
from topup.services.uow import UnitOfWork


class NextDispatch(NamedTuple):
    """An attempt stored in the routing unit of work, to be sent once that unit committed."""

    order_id: str
    no: int
    ref: str
    channel: catalog.Channel
    req: port.DispatchRequest
    rate_slot: tuple[str, int] | None = None
    """The channel's rate-limit slot this dispatch took (`rate_limits.take_turn`), if it has a limit."""
    attempt: Attempt | None = None
    """The attempt as stored."""


class Routing(Outcomes):
    async def success_rates(self, uow: UnitOfWork, channels: list[str], window: int = 50) -> dict[str, float]:
        """Success share of each channel's last `window` finished attempts (cached a few seconds)."""
        out: dict[str, float] = {}
        now = time.monotonic()
        for ch in channels:
            cached = self._rates.get(ch)
            if cached and now - cached[1] < 5.0:
                out[ch] = cached[0]
                continue
            rate = R.success_rate(await uow.orders.channel_outcomes(ch, window))
            self._rates[ch] = (rate, now)
            out[ch] = rate
        return out

    async def _ranking(
        self, uow: UnitOfWork, snap: Snapshot, group: catalog.Group, order: Order
    ) -> tuple[list[str], str | None]:
        members = snap.members_of(group, order.product_code, R.Destination(order.carrier, order.region))
        rates = None
        if group.strategy == R.Strategy.SUCCESS_RATE:
            rates = await self.success_rates(uow, [m.channel for m in members])
        ranking = R.rank(members, group.strategy, order.product_code, int(order.price), rates, self.rng)
        home = R.home_channel(members, group.strategy, order.product_code, int(order.price), rates)
        return ranking, home

    async def _next_attempt(
        self,
        uow: UnitOfWork,
        order_id: str,
        take_slot: Callable[[str], None],
        held: rate_limits.Turn | None = None,
    ) -> NextDispatch | None:
        order = await uow.orders.lock(order_id)
        if order is None or order.status != OrderStatus.PROCESSING:
            return None
        attempts = await uow.orders.attempts(order_id) if order.attempt_count else []
        if any(a.status == AttemptStatus.PENDING for a in attempts):
            return None  # one attempt at a time; its outcome will queue the next step
        snap = await self.cache.get(uow)
        group = snap.groups.get(order.group_code or "")
        if group is None:
            await self.fail_order(uow, order, "no_route: group removed")
            return None
        ranking, home = await self._ranking(uow, snap, group, order)
        plan = order.route_plan
        new_plan = plan is None
        probe = bool(order.is_probe)
        if plan is None:
            state = await catalog.group_state(uow, group.code)
            assert state is not None
            route = R.plan_route(state, ranking, home, uow.now)
            if route.probe:
                # Re-check under the group's lock so only one order probes.
                state = await catalog.group_state(uow, group.code, for_update=True)
                assert state is not None
                route = R.plan_route(state, ranking, home, uow.now)
                if route.probe and home is not None:
                    home_ch = snap.channels[home]
                    until = uow.now + max(home_ch.max_wait_s, home_ch.timeout_s) + 1.0
                    await catalog.save_group_state(uow, group.code, R.start_probe(state, order_id, until))
            plan, probe = route.channels, route.probe
        tried = {a.channel_code for a in attempts}
        channel_code = R.next_channel(plan, tried, set(ranking))
        if channel_code is None:
            if new_plan:
                await uow.orders.save_plan(order_id, plan, probe, len(attempts))
            last = attempts[-1].reason if attempts else None
            await self.fail_order(
                uow, order, f"all_channels_failed: {last}" if last else "no_channel_available"
            )
            return None
        # A stuck channel raises ChannelBusy, which rolls all of this back.
        take_slot(channel_code)
        if attempts and group.sticky:
            # A group that is not sticky has no active channel to move: skip locking its row.
            await self._sticky_failover(uow, group.code, attempts[-1].channel_code, channel_code, order_id)
        # A rate-limited channel without a free slot now raises RateLimited, which rolls all of this back
        # too (as late as possible: the slot holds the dispatch's start).
        limit = snap.channels[channel_code].rate_limit_per_s
        rate_slot = await rate_limits.take_turn(uow, channel_code, limit, held)
        channel = snap.channels[channel_code]
        fixed = (plan, probe) if new_plan else None
        return await self._store_attempt(uow, order, group.code, channel, len(attempts) + 1, rate_slot, fixed)

    async def _store_attempt(
        self,
        uow: UnitOfWork,
        order: Order,
        group_code: str,
        channel: catalog.Channel,
        no: int,
        rate_slot: tuple[str, int] | None,
        plan: tuple[list[str], bool] | None = None,
    ) -> NextDispatch:
        """Store attempt `no` of `order` at `channel` (`plan`: a new route plan and whether it probes,
        saved with the count), its deadline job and its timeline line: what is sent after the commit."""
        order_id = order.id
        ref = attempt_ref(order_id, no)
        supplier_ref = self.suppliers[channel.protocol].supplier_ref(order_id, no)
        attempt = await uow.orders.add_attempt(
            NewAttempt(
                order_id,
                no,
                ref,
                channel.code,
                group_code,
                DISPATCH_SENT,
                uow.now + channel.timeout_s,
                supplier_ref,
            )
        )
        if plan is not None:
            await uow.orders.save_plan(order_id, plan[0], plan[1], no)
        else:
            await uow.orders.count_attempts(order_id, no)
        await jobs.enqueue(uow, jobs.DeadlinePayload(ref), uow.now + channel.timeout_s)
        detail = {"channel": channel.code, "ref": ref}
        if supplier_ref != ref:
            detail["supplier_ref"] = supplier_ref
        await add_event(uow, order_id, no, "dispatch", detail)
        req = port.DispatchRequest(
            supplier_ref=supplier_ref,
            ref=ref,
            product_code=order.product_code,
            business_type=order.business_type,
            account=order.account,
            face_value=int(order.face_value),
            carrier=order.carrier,
            extra=dict(order.extra or {}),
        )
        return NextDispatch(order_id, no, ref, channel, req, rate_slot, attempt)

    async def _sticky_failover(
        self, uow: UnitOfWork, group_code: str, from_ch: str, to_ch: str, order_id: str
    ) -> None:
        state = await catalog.group_state(uow, group_code, for_update=True)
        if state is None or not state.sticky:
            return
        new = R.after_failover(state, to_ch, uow.now)
        await catalog.save_group_state(uow, group_code, new)
        if state.active_channel != to_ch:
            await catalog.record_switch(
                uow, group_code, state.active_channel or from_ch, to_ch, "failover", order_id
            )
