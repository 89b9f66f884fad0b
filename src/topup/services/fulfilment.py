"""Fulfilment: route an order to its next channel, dispatch, apply callbacks and deadlines, finish it.

Every change that can race (a callback against a deadline, two workers) is a conditional UPDATE
whose row count decides who won.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import select, update

from topup.adapters.db import tables as t
from topup.adapters.db.engine import Database, Tx
from topup.adapters.db.helpers import insert_ignore, new_id
from topup.domain import ledger as L
from topup.domain import routing as R
from topup.domain import suppliers as port
from topup.domain.errors import NotFound
from topup.domain.orders import AttemptStatus, OrderStatus, attempt_ref
from topup.domain.supplier_ops import means_insufficient_balance
from topup.services import catalog, channel_pause, costs, jobs, ledger, outbox, rate_limits
from topup.services.catalog import ConfigCache, Snapshot
from topup.services.dispatch_slots import ChannelSlots, Slot
from topup.services.jobs import Job
from topup.services.orders import add_event, attempts_of_order

FinalHook = Callable[[Tx, Any], Awaitable[None]]

# An attempt is stored as `sent` before its dispatch; the dispatch reply replaces that with the reply's
# kind. A deadline finding it still `sent` waits for the reply until `2 * timeout_s` (the dispatch
# itself is bounded by `timeout_s`) plus this long after the attempt was stored.
DISPATCH_SENT = "sent"
DISPATCH_GRACE_S = 2.0
# A route job deferred because its channel is stuck runs again after 0.1 s, doubling with each
# deferral up to DEFER_MAX_S, each delay spread by x0.5-1.5 so a backlog does not come back at once.
DEFER_BASE_S = 0.1
DEFER_MAX_S = 10.0


class ChannelBusy(Exception):
    """The chosen channel is stuck: no new dispatch slot for it in this process (see ChannelSlots)."""

    def __init__(self, channel_code: str, in_flight: int) -> None:
        super().__init__(channel_code)
        self.channel_code = channel_code
        self.in_flight = in_flight


def defer_delay(deferrals: int) -> float:
    """How long a route job deferred for the n-th time waits, before jitter: 0.1 s, 0.2 s ... 10 s."""
    return float(min(DEFER_MAX_S, DEFER_BASE_S * 2 ** max(deferrals - 1, 0)))


@dataclass
class Fulfilment:
    """The routing engine's ports: database, config cache, supplier protocols, callback base URL."""

    db: Database
    cache: ConfigCache
    suppliers: Mapping[str, port.SupplierProtocol]
    callback_base: str
    rng: random.Random = field(default_factory=random.Random)
    # Called inside the transaction that makes an order final (batches keep their counts with it).
    final_hooks: list[FinalHook] = field(default_factory=list)
    # Dispatch slots per channel in this process (limit 0: none).
    slots: ChannelSlots = field(default_factory=lambda: ChannelSlots(0))
    _rates: dict[str, tuple[float, float]] = field(default_factory=dict)

    # ---- routing -------------------------------------------------------------------------------

    async def success_rates(self, tx: Tx, channels: list[str], window: int = 50) -> dict[str, float]:
        """Success share of each channel's last `window` finished attempts (cached a few seconds)."""
        out: dict[str, float] = {}
        now = time.monotonic()
        for ch in channels:
            cached = self._rates.get(ch)
            if cached and now - cached[1] < 5.0:
                out[ch] = cached[0]
                continue
            rows = (
                await tx.conn.execute(
                    select(t.attempts.c.status)
                    .where(t.attempts.c.channel_code == ch, t.attempts.c.finished_at.is_not(None))
                    .order_by(t.attempts.c.finished_at.desc())
                    .limit(window)
                )
            ).all()
            rate = R.success_rate([r.status == AttemptStatus.SUCCEEDED for r in rows])
            self._rates[ch] = (rate, now)
            out[ch] = rate
        return out

    async def _ranking(
        self, tx: Tx, snap: Snapshot, group: catalog.Group, order: Any
    ) -> tuple[list[str], str | None]:
        members = snap.members_of(group, order.product_code, R.Destination(order.carrier, order.region))
        rates = None
        if group.strategy == R.Strategy.SUCCESS_RATE:
            rates = await self.success_rates(tx, [m.channel for m in members])
        ranking = R.rank(members, group.strategy, order.product_code, int(order.price), rates, self.rng)
        home = R.home_channel(members, group.strategy, order.product_code, int(order.price), rates)
        return ranking, home

    async def handle_route(self, job: Job) -> None:
        """Create the order's next attempt and dispatch it, or fail the order when no channel is left.

        Each dispatch holds a slot of its channel (`ChannelSlots`) until its reply is recorded. A slow
        channel (a dispatch out longer than `slow_after_s`) with `limit` in flight gives no slot: the
        unit rolls back (nothing stored) and the job is deferred, so a supplier that hangs holds a
        bounded share of the worker's dispatch slots and orders for other channels keep going out.
        """
        order_id = job.payload["order_id"]
        taken: list[Slot] = []

        def take_slot(code: str) -> None:
            slot = self.slots.try_take(code)
            if slot is None:
                raise ChannelBusy(code, self.slots.in_flight(code))
            taken.append(slot)

        held = rate_limits.held_turn(job.payload)
        if held is not None:
            await rate_limits.sleep_until_turn(self.db, job.payload)
        try:
            try:
                async with self.db.transaction() as tx:
                    sent = await self._next_attempt(tx, order_id, take_slot, held)
                    await jobs.finish(tx, job.id)
            except ChannelBusy as busy:
                await self._defer(job, order_id, busy)
                return
            except rate_limits.RateLimited as limited:
                await rate_limits.wait_turn(self.db, job, order_id, limited)  # SPEC 7: wait in line
                return
            if sent is not None:
                await self._dispatch(*sent)
        finally:
            for slot in taken:
                self.slots.release(slot)

    async def _defer(self, job: Job, order_id: str, busy: ChannelBusy) -> None:
        """Put a route job back for later (not counted as a failed try; the payload counts deferrals);
        its first deferral goes on the order's timeline."""
        deferrals = int(job.payload.get("deferrals", 0)) + 1
        delay = defer_delay(deferrals) * (0.5 + self.rng.random())
        async with self.db.transaction() as tx:
            payload = {**job.payload, "deferrals": deferrals, "channel": busy.channel_code}
            await jobs.defer(tx, job.id, tx.now + delay, payload)
            if deferrals == 1:
                detail = {"channel": busy.channel_code, "in_flight": busy.in_flight}
                await add_event(tx, order_id, None, "dispatch_deferred", detail)

    async def _next_attempt(
        self,
        tx: Tx,
        order_id: str,
        take_slot: Callable[[str], None],
        held: rate_limits.Turn | None = None,
    ) -> tuple[str, int, str, catalog.Channel, port.DispatchRequest] | None:
        order = await lock_order(tx, order_id)
        if order is None or order.status != OrderStatus.PROCESSING:
            return None
        attempts = await attempts_of_order(tx, order_id) if order.attempt_count else []
        if any(a.status == AttemptStatus.PENDING for a in attempts):
            return None  # one attempt at a time; its outcome will queue the next step
        snap = await self.cache.get(tx)
        group = snap.groups.get(order.group_code or "")
        if group is None:
            await self.fail_order(tx, order, "no_route: group removed")
            return None
        ranking, home = await self._ranking(tx, snap, group, order)
        plan = order.route_plan
        new_plan = plan is None
        probe = bool(order.is_probe)
        if plan is None:
            state = await catalog.group_state(tx, group.code)
            assert state is not None
            route = R.plan_route(state, ranking, home, tx.now)
            if route.probe:
                # Re-check under the group's lock so only one order probes.
                state = await catalog.group_state(tx, group.code, for_update=True)
                assert state is not None
                route = R.plan_route(state, ranking, home, tx.now)
                if route.probe and home is not None:
                    home_ch = snap.channels[home]
                    until = tx.now + max(home_ch.max_wait_s, home_ch.timeout_s) + 1.0
                    await catalog.save_group_state(tx, group.code, R.start_probe(state, order_id, until))
            plan, probe = route.channels, route.probe
        tried = {a.channel_code for a in attempts}
        channel_code = R.next_channel(plan, tried, set(ranking))
        if channel_code is None:
            if new_plan:
                await _save_plan(tx, order_id, plan, probe, len(attempts))
            last = attempts[-1].reason if attempts else None
            await self.fail_order(
                tx, order, f"all_channels_failed: {last}" if last else "no_channel_available"
            )
            return None
        # A stuck channel raises ChannelBusy, which rolls all of this back.
        take_slot(channel_code)
        if attempts and group.sticky:
            # A group that is not sticky has no active channel to move: skip locking its row.
            await self._sticky_failover(tx, group.code, attempts[-1].channel_code, channel_code, order_id)
        # A rate-limited channel without a free slot now raises RateLimited, which rolls all of this back
        # too (as late as possible: the slot holds the dispatch's start).
        await rate_limits.take_turn(tx, channel_code, snap.channels[channel_code].rate_limit_per_s, held)
        channel = snap.channels[channel_code]
        no = len(attempts) + 1
        ref = attempt_ref(order_id, no)
        supplier_ref = self.suppliers[channel.protocol].supplier_ref(order_id, no)
        await tx.exec(
            "INSERT INTO attempts (order_id, no, ref, channel_code, group_code, status, dispatch_state,"
            " started_at, dispatched_at, deadline_at, supplier_ref)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10)",
            order_id,
            no,
            ref,
            channel_code,
            group.code,
            str(AttemptStatus.PENDING),
            DISPATCH_SENT,
            tx.now,
            tx.now + channel.timeout_s,
            supplier_ref,
        )
        if new_plan:
            await _save_plan(tx, order_id, plan, probe, no)
        else:
            await tx.exec(
                "UPDATE orders SET attempt_count = $1, updated_at = $2 WHERE id = $3", no, tx.now, order_id
            )
        await jobs.enqueue(tx, "deadline", f"deadline:{ref}", {"ref": ref}, tx.now + channel.timeout_s)
        detail = {"channel": channel_code, "ref": ref}
        if supplier_ref != ref:
            detail["supplier_ref"] = supplier_ref
        await add_event(tx, order_id, no, "dispatch", detail)
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
        return order_id, no, ref, channel, req

    async def _sticky_failover(
        self, tx: Tx, group_code: str, from_ch: str, to_ch: str, order_id: str
    ) -> None:
        state = await catalog.group_state(tx, group_code, for_update=True)
        if state is None or not state.sticky:
            return
        new = R.after_failover(state, to_ch, tx.now)
        await catalog.save_group_state(tx, group_code, new)
        if state.active_channel != to_ch:
            await catalog.record_switch(
                tx, group_code, state.active_channel or from_ch, to_ch, "failover", order_id
            )

    async def _dispatch(
        self, order_id: str, no: int, ref: str, channel: catalog.Channel, req: port.DispatchRequest
    ) -> None:
        """Send outside any transaction (the attempt is already stored), then record the reply.

        The channel's time runs from the dispatch: when the supplier has answered, the attempt's
        deadline moves to `sent_at + timeout_s`, so time an overloaded platform spent before sending
        is not counted against the supplier.
        """
        sent_at = self.db.clock.now()
        marking = rate_limits.mark_start(self.db, sent_at)  # a rate limit's slot records this start
        adapter = self.suppliers[channel.protocol]
        out = await adapter.dispatch(channel.access(self.callback_base), req)
        if marking is not None:
            await marking
        async with self.db.transaction() as tx:
            await add_event(
                tx,
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
            deadline = sent_at + channel.timeout_s
            attempt = await tx.fetchrow(
                "UPDATE attempts SET supplier_order_id = $1, latency_ms = $2, dispatch_state = $3,"
                " dispatched_at = $4, deadline_at = CASE WHEN status = $5 THEN $6 ELSE deadline_at END,"
                " cost = $8 WHERE ref = $7 RETURNING *",
                out.supplier_order_id,
                out.latency_ms,
                out.kind,
                sent_at,
                str(AttemptStatus.PENDING),
                deadline,
                ref,
                out.cost,
            )
            if attempt is None:
                return
            if attempt.status == AttemptStatus.SUCCEEDED and out.cost is not None:
                # A callback overtook this reply: the supplier's charge is known only now (once per attempt).
                order = await lock_order(tx, order_id)
                await costs.post_attempt_cost(tx, await self.cache.get(tx), order, attempt)
            if out.kind == "rejected" and means_insufficient_balance(out.code) and adapter.has_balance:
                await channel_pause.schedule_check(tx, channel.code)  # SPEC 7: is the account short?
            if out.kind == "rejected":
                await self.fail_attempt(
                    tx, attempt, f"rejected: {out.code or ''} {out.message or ''}".strip()
                )
            elif out.kind == "failed":
                # The reply itself is final (e.g. Reloadly's synchronous FAILED).
                await self.fail_attempt(tx, attempt, f"supplier_failed: {out.code or 'failed'}")
            elif out.kind == "succeeded":
                await self.succeed_attempt(tx, attempt, "dispatch")
            elif attempt.status == AttemptStatus.PENDING:
                await tx.exec(
                    "UPDATE jobs SET run_at = $1 WHERE key = $2 AND locked_until IS NULL AND run_at < $1",
                    deadline,
                    f"deadline:{ref}",
                )

    # ---- attempt outcomes -------------------------------------------------------------------------

    async def fail_attempt(
        self, tx: Tx, attempt: Any, reason: str, status: str = AttemptStatus.FAILED
    ) -> bool:
        """pending -> failed/abandoned, then queue the fail-over. False if someone else finished it."""
        changed = await tx.exec(
            "UPDATE attempts SET status = $1, reason = $2, finished_at = $3 WHERE id = $4 AND status = $5",
            str(status),
            reason[:500],
            tx.now,
            attempt.id,
            str(AttemptStatus.PENDING),
        )
        if changed != 1:
            return False
        await jobs.delete_key(tx, f"deadline:{attempt.ref}")
        await add_event(tx, attempt.order_id, attempt.no, f"attempt_{status}", {"reason": reason})
        await jobs.enqueue(tx, "route", f"route:{attempt.order_id}", {"order_id": attempt.order_id})
        return True

    async def succeed_attempt(self, tx: Tx, attempt: Any, source: str) -> str:
        """Record a supplier success and finish the order; returns what it meant for the order."""
        changed = await tx.exec(
            "UPDATE attempts SET status = $1, finished_at = $2 WHERE id = $3 AND status IN ($4, $5)",
            str(AttemptStatus.SUCCEEDED),
            tx.now,
            attempt.id,
            str(AttemptStatus.PENDING),
            str(AttemptStatus.ABANDONED),
        )
        if changed != 1:
            row = await tx.fetchrow("SELECT status FROM attempts WHERE id = $1", attempt.id)
            current = row.status if row else None
            if current != AttemptStatus.FAILED:
                return "repeat"
            # The supplier contradicts its own failure after the order moved on: a person must look.
            await record_exception(
                tx,
                "success_after_failure",
                attempt.order_id,
                attempt.ref,
                attempt.channel_code,
                {"source": source},
            )
            return "success_after_failure"
        await jobs.delete_key(tx, f"deadline:{attempt.ref}")
        await add_event(tx, attempt.order_id, attempt.no, "attempt_succeeded", {"source": source})
        order = await lock_order(tx, attempt.order_id)
        assert order is not None
        # Every success costs (a duplicate fulfilment or a late success too), in this transaction.
        await costs.post_attempt_cost(tx, await self.cache.get(tx), order, attempt)
        if order.status == OrderStatus.PROCESSING:
            await self.complete_order(tx, order, attempt)
            return "completed"
        kind = "duplicate_fulfilment" if order.status == OrderStatus.SUCCEEDED else "late_success"
        await record_exception(
            tx,
            kind,
            order.id,
            attempt.ref,
            attempt.channel_code,
            {"order_status": order.status, "succeeded_ref": order.succeeded_ref, "source": source},
        )
        return kind

    # ---- order outcomes ---------------------------------------------------------------------------

    async def complete_order(self, tx: Tx, order: Any, attempt: Any) -> None:
        final = await tx.fetchrow(
            "UPDATE orders SET status = $1, succeeded_ref = $2, updated_at = $3, completed_at = $3"
            " WHERE id = $4 AND status = $5 RETURNING *",
            str(OrderStatus.SUCCEEDED),
            attempt.ref,
            tx.now,
            order.id,
            str(OrderStatus.PROCESSING),
        )
        if final is None:
            return
        funding = L.funding_for(order.merchant_id, order.funding)
        await ledger.post(
            tx,
            L.TransferKind.CAPTURE,
            order.id,
            L.transfer(funding.held, L.REVENUE, int(order.price)),
            merchant_id=order.merchant_id,
            order_id=order.id,
            payment_id=order.payment_id,
        )
        await add_event(tx, order.id, attempt.no, "order_succeeded", {"channel": attempt.channel_code})
        if order.is_probe and attempt.no == 1 and order.group_code:
            await self._probe_succeeded(tx, order.group_code, attempt.channel_code, order.id)
        await self._finalised(tx, order, final)

    async def _probe_succeeded(self, tx: Tx, group_code: str, channel_code: str, order_id: str) -> None:
        state = await catalog.group_state(tx, group_code, for_update=True)
        if state is None or state.probe_order_id != order_id:
            return
        await catalog.save_group_state(tx, group_code, R.after_probe_success(state, channel_code, tx.now))
        if state.active_channel != channel_code:
            await catalog.record_switch(
                tx, group_code, state.active_channel, channel_code, "recovered", order_id
            )

    async def fail_order(self, tx: Tx, order: Any, reason: str) -> None:
        """Final failure: refund the held price to where it came from, exactly once."""
        final = await tx.fetchrow(
            "UPDATE orders SET status = $1, failure_reason = $2, updated_at = $3, completed_at = $3"
            " WHERE id = $4 AND status = $5 RETURNING *",
            str(OrderStatus.FAILED),
            reason[:500],
            tx.now,
            order.id,
            str(OrderStatus.PROCESSING),
        )
        if final is None:
            return
        await refund(tx, order)
        await add_event(tx, order.id, None, "order_failed", {"reason": reason})
        if order.is_probe and order.group_code:
            state = await catalog.group_state(tx, order.group_code, for_update=True)
            if state is not None and state.probe_order_id == order.id:
                # Nothing answered at all: restart the recovery timer.
                await catalog.save_group_state(
                    tx,
                    order.group_code,
                    R.GroupState(**{**state.__dict__, "probe_order_id": None, "switched_at": tx.now}),
                )
        await self._finalised(tx, order, final)

    async def _finalised(self, tx: Tx, order: Any, final: Any) -> None:
        """Outbox event (from `final`, the row as the final update left it) and feature hooks; hooks
        get the row read before that update, so they must only use fields that never change (id,
        merchant_id, batch_id, payment_id, price)."""
        await outbox.emit_final(tx, order.id, final)
        for hook in self.final_hooks:
            await hook(tx, order)

    # ---- deadlines --------------------------------------------------------------------------------

    async def handle_deadline(self, job: Job) -> None:
        """No callback in time: ask the supplier (when it can be asked), then act per SPEC section 3."""
        ref = job.payload["ref"]
        async with self.db.reads() as tx:
            attempt = await tx.fetchrow(
                "SELECT a.*, o.product_code, o.business_type FROM attempts a"
                " JOIN orders o ON o.id = a.order_id WHERE a.ref = $1",
                ref,
            )
            if attempt is None or attempt.status != AttemptStatus.PENDING:
                await jobs.finish(tx, job.id)
                return
        snap = await self.cache.current(self.db)
        channel = snap.channels.get(attempt.channel_code)
        wake_at = self._too_early(attempt, channel)
        if wake_at is not None:
            async with self.db.transaction() as tx:
                await jobs.reschedule(tx, job.id, wake_at)
            return
        query = None
        if channel is not None and channel.supports_query and channel.protocol in self.suppliers:
            question = port.QueryRequest(
                attempt.supplier_ref or ref, ref, attempt.product_code, attempt.business_type
            )
            access = channel.access(self.callback_base)
            query = await self.suppliers[channel.protocol].query(access, question)
        async with self.db.transaction() as tx:
            attempt = await tx.fetchrow("SELECT * FROM attempts WHERE ref = $1", ref)
            if attempt is None or attempt.status != AttemptStatus.PENDING:
                await jobs.finish(tx, job.id)
                return
            if query is not None:
                await add_event(
                    tx,
                    attempt.order_id,
                    attempt.no,
                    "query",
                    {
                        "status": query.status,
                        "http_status": query.http_status,
                        "latency_ms": round(query.latency_ms, 1),
                    },
                )
            timeout_s = channel.timeout_s if channel else 0.0
            decision = R.on_deadline(
                query.status if query else None,
                tx.now,
                attempt.dispatched_at or attempt.started_at,
                timeout_s,
                channel.max_wait_s if channel else 0.0,
                bool(channel and channel.supports_query),
            )
            if decision.action is R.DeadlineAction.COMPLETE:
                await self.succeed_attempt(tx, attempt, "query")
            elif decision.action is R.DeadlineAction.FAIL_OVER:
                assert query is not None
                await self.fail_attempt(tx, attempt, f"query_{query.status}")
            elif decision.action is R.DeadlineAction.ABANDON:
                await self.fail_attempt(tx, attempt, "timeout: no callback", AttemptStatus.ABANDONED)
            else:
                assert decision.next_check_at is not None
                await tx.exec(
                    "UPDATE attempts SET deadline_at = $1 WHERE id = $2", decision.next_check_at, attempt.id
                )
                await jobs.reschedule(tx, job.id, decision.next_check_at)
                return
            await jobs.finish(tx, job.id)

    def _too_early(self, attempt: Any, channel: catalog.Channel | None) -> float | None:
        """When a deadline job that ran too soon should run again; None when it is really due."""
        now = self.db.clock.now()
        if channel is not None and attempt.dispatch_state == DISPATCH_SENT:
            # No dispatch reply recorded yet: the dispatch is still on its way (a busy worker) or its
            # worker died. Look again soon (the reply, which moves the deadline, may be being recorded
            # right now) up to a grace period; past it, ask the supplier as usual (a dispatch that
            # never left answers `not_found`).
            until = attempt.started_at + 2 * channel.timeout_s + DISPATCH_GRACE_S
            if now < until:
                return float(min(until, now + max(0.1, channel.timeout_s / 2)))
        due = attempt.deadline_at
        if due is not None and now < due - 0.001:
            # The reply moved the deadline while this job was already claimed (it could not move
            # the job): run again when the channel's time from the dispatch is really up.
            return float(due)
        return None

    # ---- callbacks --------------------------------------------------------------------------------

    async def receive_callback(self, tx: Tx, channel_code: str, data: port.CallbackData) -> str:
        """Store a verified callback idempotently by (channel, ref, status), then apply it once."""
        attempt = await tx.fetchrow(
            "SELECT * FROM attempts WHERE channel_code = $1 AND supplier_ref = $2",
            channel_code,
            data.supplier_ref,
        )
        if attempt is None:
            raise NotFound(f"unknown ref {data.supplier_ref}")
        ref, status = attempt.ref, data.status
        body = {"supplier_order_id": data.supplier_order_id, "code": data.code, "message": data.message}
        inserted = await tx.exec(
            "INSERT INTO callbacks (channel_code, ref, status, supplier_order_id, code, message, received_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (channel_code, ref, status) DO NOTHING",
            channel_code,
            ref,
            status,
            body.get("supplier_order_id"),
            body.get("code"),
            body.get("message"),
            tx.now,
        )
        if not inserted:
            return "repeat"
        await add_event(
            tx,
            attempt.order_id,
            attempt.no,
            "callback",
            {
                "status": status,
                "code": body.get("code"),
                "message": body.get("message"),
                "supplier_order_id": body.get("supplier_order_id"),
                "attempt_status": attempt.status,
            },
        )
        if status == "success":
            outcome = await self.succeed_attempt(tx, attempt, "callback")
        elif status == "processing":
            outcome = "recorded"  # progress only; the deadline and query still decide
        elif attempt.status == AttemptStatus.PENDING:
            code = body.get("code") or "unknown"
            await self.fail_attempt(tx, attempt, f"supplier_failed: {code}")
            outcome = "failed_over"
        elif attempt.status == AttemptStatus.SUCCEEDED:
            outcome = "failure_after_success"
            await record_exception(
                tx,
                outcome,
                attempt.order_id,
                ref,
                channel_code,
                {"code": body.get("code"), "message": body.get("message")},
            )
        else:
            outcome = "recorded"
        await tx.exec(
            "UPDATE callbacks SET outcome = $1 WHERE channel_code = $2 AND ref = $3 AND status = $4",
            outcome,
            channel_code,
            ref,
            status,
        )
        return outcome


async def lock_order(tx: Tx, order_id: str) -> Any | None:
    """The order row, locked until commit on PostgreSQL (SQLite's writer lock covers it)."""
    sql = "SELECT * FROM orders WHERE id = $1"
    row = await tx.fetchrow(sql + " FOR UPDATE" if tx.is_postgres else sql, order_id)
    if row is not None:
        for key in ("route_plan", "extra"):
            if isinstance(row[key], str):
                row[key] = orjson.loads(row[key])
    return row


async def _save_plan(tx: Tx, order_id: str, plan: list[str], probe: bool, attempt_count: int) -> None:
    await tx.exec(
        "UPDATE orders SET route_plan = $1, is_probe = $2, attempt_count = $3, updated_at = $4 WHERE id = $5",
        orjson.dumps(plan).decode(),
        probe,
        attempt_count,
        tx.now,
        order_id,
    )


async def refund(tx: Tx, order: Any) -> None:
    """Release the held price of a failed/cancelled order back to its source, exactly once."""
    funding = L.funding_for(order.merchant_id, order.funding)
    posted = await ledger.post(
        tx,
        L.TransferKind.RELEASE,
        order.id,
        L.transfer(funding.held, funding.refund_to, int(order.price)),
        merchant_id=order.merchant_id,
        order_id=order.id,
        payment_id=order.payment_id,
    )
    if posted and order.funding == "sandbox" and order.payment_id:
        await tx.conn.execute(
            t.payment_refunds.insert().values(
                id=new_id("rfd", tx.now),
                payment_id=order.payment_id,
                order_id=order.id,
                amount=int(order.price),
                created_at=tx.now,
            )
        )
    if posted and order.payment_id:
        await tx.conn.execute(
            update(t.payments)
            .where(t.payments.c.id == order.payment_id)
            .values(refunded=t.payments.c.refunded + int(order.price), updated_at=tx.now)
        )


async def record_exception(
    tx: Tx, kind: str, order_id: str | None, ref: str | None, channel: str | None, detail: dict[str, Any]
) -> None:
    """Something an operator must look at; one per (kind, ref)."""
    await insert_ignore(
        tx,
        t.exceptions,
        {
            "id": new_id("exc", tx.now),
            "kind": kind,
            "order_id": order_id,
            "ref": ref or order_id,
            "channel_code": channel,
            "detail": detail,
            "created_at": tx.now,
        },
        ["kind", "ref"],
    )
    if order_id:
        await add_event(tx, order_id, None, "exception", {"kind": kind, "ref": ref})
