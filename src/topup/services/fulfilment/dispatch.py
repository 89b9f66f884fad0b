"""Dispatch: a route job creates the order's next attempt in one unit of work, sends it outside any
transaction, then records the supplier's reply in another."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from topup.domain.orders import AttemptStatus
from topup.domain.supplier_ops import means_insufficient_balance
from topup.services import channel_pause, costs, jobs, rate_limits
from topup.services.dispatch_slots import Slot
from topup.services.fulfilment.base import ChannelBusy, defer_delay
from topup.services.fulfilment.route import NextDispatch, Routing
from topup.services.jobs import Job
from topup.services.orders import add_event
from topup.services.ports.orders import DispatchReply
from topup.services.uow import UnitOfWork

RouteUnit = Callable[[UnitOfWork], Awaitable[NextDispatch | None]]


class Dispatching(Routing):
    async def handle_route(self, job: Job[jobs.RoutePayload]) -> None:
        """Create the order's next attempt and dispatch it, or fail the order when no channel is left.

        The routing unit is database work only, so it is grouped with the other route jobs this
        worker runs at that moment (`run_grouped`: one transaction for a claimed batch); the HTTP
        dispatch follows its commit.

        Each dispatch holds a slot of its channel (`ChannelSlots`) until its reply is recorded. A slow
        channel (a dispatch out longer than `slow_after_s`) with `limit` in flight gives no slot: the
        unit rolls back (nothing stored) and the job is deferred, so a supplier that hangs holds a
        bounded share of the worker's dispatch slots and orders for other channels keep going out.
        """
        order_id = job.payload.order_id
        taken: list[Slot] = []

        def release_slots() -> None:
            for slot in taken:
                self.slots.release(slot)
            taken.clear()

        def take_slot(code: str) -> None:
            slot = self.slots.try_take(code)
            if slot is None:
                raise ChannelBusy(code, self.slots.in_flight(code))
            taken.append(slot)

        async def route(uow: UnitOfWork) -> NextDispatch | None:
            # A group that rolled back runs this again (alone or regrouped): from scratch, slots too.
            release_slots()
            sent = await self._next_attempt(uow, order_id, take_slot, held)
            await jobs.finish(uow, job)
            return sent

        held = rate_limits.held_turn(job.payload)
        if held is not None:
            await rate_limits.sleep_until_turn(self.db, job.payload)
        # Orders wait for a rate-limited channel in arrival order (SPEC 7): while any channel has a
        # limit, route jobs keep to a transaction each, so a group rolled back by one order at its
        # limit never lets a later order take a turn before an earlier one.
        grouped = held is None and not (await self.cache.current(self.db)).rate_limited
        try:
            try:
                sent = await (self.db.run_grouped(route) if grouped else self._alone(route))
            except ChannelBusy as busy:
                await self._defer(job, order_id, busy)
                return
            except rate_limits.RateLimited as limited:
                await rate_limits.wait_turn(self.db, job, order_id, limited)  # SPEC 7: wait in line
                return
            if sent is not None:
                await self._dispatch(sent)
        finally:
            release_slots()

    async def _alone(self, route: RouteUnit) -> NextDispatch | None:
        async with self.db.transaction() as uow:
            return await route(uow)

    async def _defer(self, job: Job[jobs.RoutePayload], order_id: str, busy: ChannelBusy) -> None:
        """Put a route job back for later (not counted as a failed try; the payload counts deferrals);
        its first deferral goes on the order's timeline."""
        deferrals = job.payload.deferrals + 1
        delay = defer_delay(deferrals) * (0.5 + self.rng.random())
        async with self.db.transaction() as uow:
            payload = job.payload.deferred(busy.channel_code)
            await jobs.defer(uow, job, uow.now + delay, payload)
            if deferrals == 1:
                detail = {"channel": busy.channel_code, "in_flight": busy.in_flight}
                await add_event(uow, order_id, None, "dispatch_deferred", detail)

    async def _dispatch(self, sent: NextDispatch) -> None:
        """Send outside any transaction (the attempt is already stored), then record the reply.

        The channel's time runs from the dispatch: when the supplier has answered, the attempt's
        deadline moves to `sent_at + timeout_s`, so time an overloaded platform spent before sending
        is not counted against the supplier.
        """
        order_id, no, ref, channel, req, rate_slot, _ = sent
        sent_at = self.db.clock.now()
        marking = rate_limits.mark_start(
            self.db, rate_slot, sent_at
        )  # a rate limit's slot records this start
        adapter = self.suppliers[channel.protocol]
        out = await adapter.dispatch(channel.access(self.callback_base), req)
        if marking is not None:
            await marking
        deadline = sent_at + channel.timeout_s

        async def record(uow: UnitOfWork) -> None:
            # Grouped with other replies at that moment: database work only, safe to run again alone.
            await add_event(
                uow,
                order_id,
                no,
                "dispatch_reply",
                {
                    "result": out.kind,
                    "code": out.code,
                    "message": out.message,
                    "http_status": out.http_status,
                    "latency_ms": round(out.latency_ms, 1),
                    "supplier_order_id": out.supplier_order_id,
                },
            )
            reply = DispatchReply(
                out.supplier_order_id, out.latency_ms, out.kind, sent_at, deadline, out.cost
            )
            attempt = await uow.orders.record_reply(ref, reply)
            if attempt is None:
                return
            if attempt.status == AttemptStatus.SUCCEEDED and out.cost is not None:
                # A callback overtook this reply: the supplier's charge is known only now (once per attempt).
                order = await uow.orders.lock(order_id)
                assert order is not None
                await costs.post_attempt_cost(uow, await self.cache.get(uow), order, attempt)
            if out.kind == "rejected" and means_insufficient_balance(out.code) and adapter.has_balance:
                await channel_pause.schedule_check(uow, channel.code)  # SPEC 7: is the account short?
            if out.kind == "rejected":
                await self.fail_attempt(
                    uow, attempt, f"rejected: {out.code or ''} {out.message or ''}".strip()
                )
            elif out.kind == "failed":
                # The reply itself is final (e.g. Reloadly's synchronous FAILED).
                await self.fail_attempt(uow, attempt, f"supplier_failed: {out.code or 'failed'}")
            elif out.kind == "succeeded":
                await self.succeed_attempt(uow, attempt, "dispatch")
            elif attempt.status == AttemptStatus.PENDING:
                await uow.jobs.postpone(jobs.DeadlinePayload(ref).key, deadline)

        await self.db.run_grouped(record)
