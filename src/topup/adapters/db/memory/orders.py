"""Orders, attempts, timeline, callbacks and exceptions in memory (implements `services.ports.orders`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from topup.adapters.db.memory.state import Event
from topup.domain.orders import (
    Attempt,
    AttemptStatus,
    ForbiddenTransition,
    Order,
    OrderStatus,
    attempt_sources,
)
from topup.services.ports.orders import DispatchReply, DueAttempt, NewAttempt, OrderFilter, StoredCallback

if TYPE_CHECKING:
    from topup.adapters.db.memory.uow import MemoryUnitOfWork


class MemoryOrders:
    """Every value handed out is a copy: a change reaches the state only through a method."""

    def __init__(self, uow: MemoryUnitOfWork) -> None:
        self.uow = uow

    # ---- orders -----------------------------------------------------------------------------------

    async def insert_many(self, orders: Sequence[Order]) -> None:
        for order in orders:
            await self.insert(order)

    async def insert(self, order: Order) -> bool:
        s = self.uow.state
        if any(
            o.merchant_id == order.merchant_id and o.merchant_order_id == order.merchant_order_id
            for o in s.orders.values()
        ):
            return False
        s.orders[order.id] = replace(order)
        return True

    async def get(self, order_id: str, merchant_id: str | None = None) -> Order | None:
        o = self.uow.state.orders.get(order_id)
        if o is None or (merchant_id is not None and o.merchant_id != merchant_id):
            return None
        return replace(o)

    async def by_merchant_order_id(self, merchant_id: str, merchant_order_id: str) -> Order | None:
        for o in self.uow.state.orders.values():
            if o.merchant_id == merchant_id and o.merchant_order_id == merchant_order_id:
                return replace(o)
        return None

    async def lock(self, order_id: str) -> Order | None:
        return await self.get(order_id)

    async def page(
        self, where: OrderFilter, limit: int, before: tuple[float, str] | None = None
    ) -> list[Order]:
        def wanted(o: Order) -> bool:
            return (
                (where.merchant_id is None or o.merchant_id == where.merchant_id)
                and (not where.status or o.status == where.status)
                and (not where.merchant_order_id or o.merchant_order_id == where.merchant_order_id)
                and (not where.account or o.account == where.account)
                and (not where.batch_id or o.batch_id == where.batch_id)
                and (before is None or (o.created_at, o.id) < before)
            )

        found = sorted(
            (o for o in self.uow.state.orders.values() if wanted(o)),
            key=lambda o: (o.created_at, o.id),
            reverse=True,
        )
        return [replace(o) for o in found[:limit]]

    async def move(
        self,
        order: Order,
        to: OrderStatus,
        *,
        failure_reason: str | None = None,
        succeeded_ref: str | None = None,
    ) -> bool:
        moved = replace(order)
        expected = moved.move_to(to, self.uow.now, failure_reason=failure_reason, succeeded_ref=succeeded_ref)
        stored = self.uow.state.orders.get(order.id)
        if stored is None or stored.status != expected:
            return False
        stored.status = moved.status
        stored.updated_at = moved.updated_at
        stored.completed_at = moved.completed_at
        if to is OrderStatus.SUCCEEDED:
            stored.succeeded_ref = moved.succeeded_ref
        if to is OrderStatus.FAILED:
            stored.failure_reason = moved.failure_reason
        for name, value in vars(stored).items():
            setattr(order, name, value)
        return True

    async def save_plan(self, order_id: str, plan: list[str], probe: bool, attempt_count: int) -> None:
        o = self.uow.state.orders[order_id]
        o.route_plan, o.is_probe, o.attempt_count, o.updated_at = (
            list(plan),
            probe,
            attempt_count,
            self.uow.now,
        )

    async def count_attempts(self, order_id: str, attempt_count: int) -> None:
        o = self.uow.state.orders[order_id]
        o.attempt_count, o.updated_at = attempt_count, self.uow.now

    # ---- attempts ---------------------------------------------------------------------------------

    async def attempts(self, order_id: str) -> list[Attempt]:
        found = [a for a in self.uow.state.attempts.values() if a.order_id == order_id]
        return [replace(a) for a in sorted(found, key=lambda a: a.no)]

    async def attempts_of(self, order_ids: list[str]) -> dict[str, list[Attempt]]:
        return {oid: await self.attempts(oid) for oid in order_ids}

    async def attempt(self, ref: str) -> Attempt | None:
        for a in self.uow.state.attempts.values():
            if a.ref == ref:
                return replace(a)
        return None

    async def attempt_by_supplier_ref(self, channel_code: str, supplier_ref: str) -> Attempt | None:
        for a in self.uow.state.attempts.values():
            if a.channel_code == channel_code and a.supplier_ref == supplier_ref:
                return replace(a)
        return None

    async def due_attempt(self, ref: str) -> DueAttempt | None:
        a = await self.attempt(ref)
        if a is None:
            return None
        o = self.uow.state.orders[a.order_id]
        return DueAttempt(a, o.product_code, o.business_type)

    async def attempt_status(self, attempt_id: int) -> AttemptStatus | None:
        a = self.uow.state.attempts.get(attempt_id)
        return None if a is None else a.status

    async def add_attempt(self, new: NewAttempt) -> Attempt:
        s, now = self.uow.state, self.uow.now
        if any(a.ref == new.ref or (a.order_id, a.no) == (new.order_id, new.no) for a in s.attempts.values()):
            raise ValueError(f"attempt {new.ref} exists")  # the unique constraints
        attempt_id = s.next_id()
        s.attempts[attempt_id] = Attempt(
            id=attempt_id,
            order_id=new.order_id,
            no=new.no,
            ref=new.ref,
            channel_code=new.channel_code,
            group_code=new.group_code,
            status=AttemptStatus.PENDING,
            dispatch_state=new.dispatch_state,
            started_at=now,
            dispatched_at=now,
            deadline_at=new.deadline_at,
            supplier_ref=new.supplier_ref,
        )
        return replace(s.attempts[attempt_id])

    async def record_reply(self, ref: str, reply: DispatchReply) -> Attempt | None:
        for a in self.uow.state.attempts.values():
            if a.ref == ref:
                a.supplier_order_id = reply.supplier_order_id
                a.latency_ms = reply.latency_ms
                a.dispatch_state = reply.dispatch_state
                a.dispatched_at = reply.dispatched_at
                if a.status == AttemptStatus.PENDING:
                    a.deadline_at = reply.deadline_at
                a.cost = reply.cost
                return replace(a)
        return None

    async def move_attempt(self, attempt: Attempt, to: AttemptStatus, reason: str | None = None) -> bool:
        sources = attempt_sources(to)
        if not sources:
            raise ForbiddenTransition(f"attempt cannot move to {to}")
        stored = self.uow.state.attempts.get(attempt.id)
        if stored is None or stored.status not in sources:
            return False
        stored.move_to(to, self.uow.now, reason)
        attempt.status, attempt.finished_at, attempt.reason = stored.status, stored.finished_at, stored.reason
        return True

    async def extend_deadline(self, attempt_id: int, deadline_at: float) -> None:
        self.uow.state.attempts[attempt_id].deadline_at = deadline_at

    async def channel_outcomes(self, channel_code: str, window: int) -> list[bool]:
        done = [
            a
            for a in self.uow.state.attempts.values()
            if a.channel_code == channel_code and a.finished_at is not None
        ]
        done.sort(key=lambda a: a.finished_at or 0.0, reverse=True)
        return [a.status == AttemptStatus.SUCCEEDED for a in done[:window]]

    # ---- timeline, callbacks, exceptions ----------------------------------------------------------

    def add_event(self, order_id: str, attempt_no: int | None, kind: str, detail: Mapping[str, Any]) -> None:
        self.uow.state.events.append(Event(order_id, attempt_no, kind, dict(detail), self.uow.now))

    async def store_callback(self, callback: StoredCallback) -> bool:
        key = (callback.channel_code, callback.ref, callback.status)
        if key in self.uow.state.callbacks:
            return False
        self.uow.state.callbacks[key] = {**callback._asdict(), "outcome": None, "received_at": self.uow.now}
        return True

    async def set_callback_outcome(self, callback: StoredCallback, outcome: str) -> None:
        self.uow.state.callbacks[(callback.channel_code, callback.ref, callback.status)]["outcome"] = outcome

    async def add_exception(
        self,
        kind: str,
        order_id: str | None,
        ref: str | None,
        channel_code: str | None,
        detail: Mapping[str, Any],
    ) -> None:
        key = (kind, ref or order_id)
        self.uow.state.exceptions.setdefault(
            key,
            {
                "kind": kind,
                "order_id": order_id,
                "ref": ref or order_id,
                "channel_code": channel_code,
                "detail": dict(detail),
                "created_at": self.uow.now,
            },
        )
