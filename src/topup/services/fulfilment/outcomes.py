"""Attempt and order outcomes: an attempt fails (queue the fail-over) or succeeds (finish the order);
an order completes (capture) or fails (the `on_order_failed` hooks refund it), then its outbox event.

Every change that can race (a callback against a deadline, two workers) is a conditional UPDATE in the
orders repository whose row count decides who won.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from topup.domain import ledger as L
from topup.domain import routing as R
from topup.domain.orders import Attempt, AttemptStatus, Order, OrderStatus
from topup.services import catalog, costs, jobs, ledger, outbox
from topup.services.fulfilment.base import EngineBase
from topup.services.orders import add_event
from topup.services.uow import UnitOfWork


async def record_exception(
    uow: UnitOfWork,
    kind: str,
    order_id: str | None,
    ref: str | None,
    channel: str | None,
    detail: Mapping[str, Any],
) -> None:
    """Something an operator must look at; one per (kind, ref)."""
    await uow.orders.add_exception(kind, order_id, ref, channel, detail)
    if order_id:
        await add_event(uow, order_id, None, "exception", {"kind": kind, "ref": ref})


class Outcomes(EngineBase):
    # ---- attempt outcomes -------------------------------------------------------------------------

    async def fail_attempt(
        self, uow: UnitOfWork, attempt: Attempt, reason: str, status: str = AttemptStatus.FAILED
    ) -> bool:
        """pending -> failed/abandoned, then queue the fail-over. False if someone else finished it."""
        if not await uow.orders.move_attempt(attempt, AttemptStatus(status), reason):
            return False
        await jobs.delete_key(uow, jobs.DeadlinePayload(attempt.ref).key)
        await add_event(uow, attempt.order_id, attempt.no, f"attempt_{status}", {"reason": reason})
        await jobs.enqueue(uow, jobs.RoutePayload(attempt.order_id))
        return True

    async def succeed_attempt(self, uow: UnitOfWork, attempt: Attempt, source: str) -> str:
        """Record a supplier success and finish the order; returns what it meant for the order."""
        if not await uow.orders.move_attempt(attempt, AttemptStatus.SUCCEEDED):
            current = await uow.orders.attempt_status(attempt.id)
            if current != AttemptStatus.FAILED:
                return "repeat"
            # The supplier contradicts its own failure after the order moved on: a person must look.
            await record_exception(
                uow,
                "success_after_failure",
                attempt.order_id,
                attempt.ref,
                attempt.channel_code,
                {"source": source},
            )
            return "success_after_failure"
        await jobs.delete_key(uow, jobs.DeadlinePayload(attempt.ref).key)
        await add_event(uow, attempt.order_id, attempt.no, "attempt_succeeded", {"source": source})
        order = await uow.orders.lock(attempt.order_id)
        assert order is not None
        # Every success costs (a duplicate fulfilment or a late success too), in this transaction.
        await costs.post_attempt_cost(uow, await self.cache.get(uow), order, attempt)
        if order.status == OrderStatus.PROCESSING:
            await self.complete_order(uow, order, attempt)
            return "completed"
        kind = "duplicate_fulfilment" if order.status == OrderStatus.SUCCEEDED else "late_success"
        await record_exception(
            uow,
            kind,
            order.id,
            attempt.ref,
            attempt.channel_code,
            {"order_status": order.status, "succeeded_ref": order.succeeded_ref, "source": source},
        )
        return kind

    # ---- order outcomes ---------------------------------------------------------------------------

    async def complete_order(self, uow: UnitOfWork, order: Order, attempt: Attempt) -> None:
        if not await uow.orders.move(order, OrderStatus.SUCCEEDED, succeeded_ref=attempt.ref):
            return
        funding = L.funding_for(order.merchant_id, order.funding)
        await ledger.post(
            uow,
            L.TransferKind.CAPTURE,
            order.id,
            L.transfer(funding.held, L.REVENUE, int(order.price)),
            merchant_id=order.merchant_id,
            order_id=order.id,
            payment_id=order.payment_id,
        )
        await add_event(uow, order.id, attempt.no, "order_succeeded", {"channel": attempt.channel_code})
        if order.is_probe and attempt.no == 1 and order.group_code:
            await self._probe_succeeded(uow, order.group_code, attempt.channel_code, order.id)
        await self._finalised(uow, order)

    async def _probe_succeeded(
        self, uow: UnitOfWork, group_code: str, channel_code: str, order_id: str
    ) -> None:
        state = await catalog.group_state(uow, group_code, for_update=True)
        if state is None or state.probe_order_id != order_id:
            return
        await catalog.save_group_state(uow, group_code, R.after_probe_success(state, channel_code, uow.now))
        if state.active_channel != channel_code:
            await catalog.record_switch(
                uow, group_code, state.active_channel, channel_code, "recovered", order_id
            )

    async def fail_order(self, uow: UnitOfWork, order: Order, reason: str) -> None:
        """Final failure: the `on_order_failed` hooks (the refund of the held price) run exactly once."""
        if not await uow.orders.move(order, OrderStatus.FAILED, failure_reason=reason):
            return
        for hook in self.on_order_failed:
            await hook(uow, order)
        await add_event(uow, order.id, None, "order_failed", {"reason": reason})
        if order.is_probe and order.group_code:
            state = await catalog.group_state(uow, order.group_code, for_update=True)
            if state is not None and state.probe_order_id == order.id:
                # Nothing answered at all: restart the recovery timer.
                await catalog.save_group_state(
                    uow,
                    order.group_code,
                    R.GroupState(**{**state.__dict__, "probe_order_id": None, "switched_at": uow.now}),
                )
        await self._finalised(uow, order)

    async def _finalised(self, uow: UnitOfWork, order: Order) -> None:
        """Outbox event (the order as its final update left it) and feature hooks."""
        await outbox.emit_final(uow, order.id, order)
        for hook in self.final_hooks:
            await hook(uow, order)
