"""Inline first dispatch: the process that accepts an order routes it in the intake's own unit of work
and sends it right after the commit, instead of queueing a route job for a worker.

That saves, per order, the route job's insert, claim and delete, its routing transaction and the
wake-up of the workers, and the first dispatch leaves as soon as the order is stored. The attempt is
stored `sent` with its deadline job, exactly as a route job stores it, so the crash story is the
route job's: a process that dies between the commit and the send leaves an attempt whose deadline
asks the supplier (a dispatch that never left answers `not_found`) and fails over.

Only the plain case goes inline; anything else queues the route job as before, with nothing of the
routing written: a sticky group's recovery probe (decided under the group's lock), a channel under a
rate limit (orders wait their turn in line), a stuck channel (no dispatch slot), no channel at all,
and more than `inline_max` inline dispatches in flight in this process (the route jobs' bound).
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from topup.domain import routing as R
from topup.domain.orders import Attempt, Order
from topup.services import catalog
from topup.services.dispatch_slots import Slot
from topup.services.fulfilment.dispatch import Dispatching
from topup.services.fulfilment.route import NextDispatch
from topup.services.order_views import OrderView
from topup.services.orders import OrderRequest, place_order
from topup.services.uow import UnitOfWork

log = structlog.get_logger()


class Inline(Dispatching):
    async def accept(
        self, merchant_id: str, req: OrderRequest, *, allow_private_notify: bool = False
    ) -> tuple[OrderView, bool]:
        """Order intake (POST /v1/orders and the WebSocket): store and hold the order and, when it can
        go inline, its first attempt, in a unit of work grouped with other intakes at that moment;
        the dispatch starts once that committed. (order, created)."""
        held: list[Slot] = []

        def drop() -> None:
            for slot in held:
                self.slots.release(slot)
            held.clear()

        async def route(uow: UnitOfWork, order: Order) -> Attempt | None:
            first = await self._first_attempt(uow, order)
            if first is None:
                return None
            sent, slot = first
            held.append(slot)
            # Runs only if this unit commits (a group that rolls back drops it): the dispatch task
            # then owns the slot.
            uow.after_commit(lambda: self._start(sent, slot, held))
            return sent.attempt

        async def intake(uow: UnitOfWork) -> tuple[OrderView, bool]:
            drop()  # a unit run again (its group rolled back) starts from scratch
            snap = await self.cache.get(uow)
            inline = route if self.inline_max > 0 else None
            return await place_order(
                uow, snap, merchant_id, req, allow_private_notify=allow_private_notify, route=inline
            )

        try:
            return await self.db.run_grouped(intake)
        finally:
            drop()  # a slot no dispatch took over (the unit failed, or its caller left before it ran)

    async def _first_attempt(self, uow: UnitOfWork, order: Order) -> tuple[NextDispatch, Slot] | None:
        """The new order's first attempt, stored, with its dispatch slot; None (nothing written) when
        the route job must decide."""
        if len(self._inline) >= self.inline_max:
            return None
        snap = await self.cache.get(uow)
        group = snap.groups.get(order.group_code or "")
        if group is None:
            return None
        ranking, home = await self._ranking(uow, snap, group, order)
        state = await catalog.group_state(uow, group.code)
        if state is None:
            return None
        route = R.plan_route(state, ranking, home, uow.now)
        if route.probe:
            return None
        code = R.next_channel(route.channels, set(), set(ranking))
        if code is None:
            return None
        channel = snap.channels[code]
        if channel.rate_limit_per_s:
            return None
        slot = self.slots.try_take(code)
        if slot is None:
            return None
        sent = await self._store_attempt(uow, order, group.code, channel, 1, None, (route.channels, False))
        return sent, slot

    def _start(self, sent: NextDispatch, slot: Slot, held: list[Slot]) -> None:
        with contextlib.suppress(ValueError):
            held.remove(slot)
        task = asyncio.create_task(self._send_inline(sent, slot), name=f"dispatch-{sent.ref}")
        self._inline.add(task)
        task.add_done_callback(self._inline.discard)

    async def _send_inline(self, sent: NextDispatch, slot: Slot) -> None:
        try:
            await self._dispatch(sent)
        except Exception as e:  # the attempt is stored: its deadline job takes over
            log.warning("inline_dispatch_failed", order_id=sent.order_id, ref=sent.ref, error=str(e)[:300])
        finally:
            self.slots.release(slot)

    async def drain_inline(self, timeout_s: float = 5.0) -> None:
        """On shutdown: let inline dispatches in flight record their replies (up to `timeout_s`), then
        cancel the rest (their deadline jobs take over)."""
        tasks = list(self._inline)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
