"""Every statement the orders services run (implements `services.ports.orders`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import and_, or_, select

from topup.adapters.db import tables as t
from topup.adapters.db.helpers import insert_ignore, new_id
from topup.domain.orders import (
    Attempt,
    AttemptStatus,
    ForbiddenTransition,
    Order,
    OrderStatus,
    attempt_sources,
)
from topup.services.ports.orders import (
    DispatchReply,
    DueAttempt,
    NewAttempt,
    OrderFilter,
    StoredCallback,
)

if TYPE_CHECKING:
    from topup.adapters.db.engine import Tx

_ORDER_FIELDS = tuple(f.name for f in fields(Order))
_ATTEMPT_FIELDS = tuple(f.name for f in fields(Attempt))


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str) else value


def _order(row: Mapping[Any, Any]) -> Order:
    """An `orders` row (raw or SQLAlchemy mapping) as the domain object."""
    values = {k: row[k] for k in _ORDER_FIELDS if k in row}
    values["status"] = OrderStatus(row["status"])
    values["face_value"] = int(row["face_value"])
    values["price"] = int(row["price"])
    values["is_probe"] = bool(row.get("is_probe") or False)
    values["attempt_count"] = int(row.get("attempt_count") or 0)
    values["extra"] = _json(row.get("extra"))
    values["route_plan"] = _json(row.get("route_plan"))
    return Order(**values)


def _attempt(row: Mapping[Any, Any]) -> Attempt:
    values = {k: row[k] for k in _ATTEMPT_FIELDS if k in row}
    values["status"] = AttemptStatus(row["status"])
    cost = row.get("cost")
    values["cost"] = None if cost is None else int(cost)
    return Attempt(**values)


def _refresh(order: Order, row: Mapping[Any, Any]) -> None:
    """Make `order` the row as an UPDATE ... RETURNING left it."""
    stored = _order(row)
    for name in _ORDER_FIELDS:
        setattr(order, name, getattr(stored, name))


_ORDER_COLUMNS = (
    "id, merchant_id, merchant_order_id, request_hash, batch_id, business_type, product_code, account,"
    " carrier, face_value, price, status, notify_url, extra, funding, group_code, is_probe, attempt_count,"
    " created_at, updated_at, region"
)
_INSERT_FIELDS = tuple(c.strip() for c in _ORDER_COLUMNS.split(","))


def _order_values(order: Order) -> tuple[Any, ...]:
    values = [getattr(order, c) for c in _INSERT_FIELDS]
    values[11] = str(order.status)
    if values[13] is not None:  # extra (JSON)
        values[13] = orjson.dumps(values[13]).decode()
    return tuple(values)


_INSERT_ORDER = (
    f"INSERT INTO orders ({_ORDER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,"
    " $14, $15, $16, $17, $18, $19, $20, $21) ON CONFLICT (merchant_id, merchant_order_id) DO NOTHING"
)
_SUCCEED_ORDER = (
    "UPDATE orders SET status = $1, succeeded_ref = $2, updated_at = $3, completed_at = $3"
    " WHERE id = $4 AND status = $5 RETURNING *"
)
_FAIL_ORDER = (
    "UPDATE orders SET status = $1, failure_reason = $2, updated_at = $3, completed_at = $3"
    " WHERE id = $4 AND status = $5 RETURNING *"
)
_MOVE_ORDER = "UPDATE orders SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4 RETURNING *"
_INSERT_ATTEMPT = (
    "INSERT INTO attempts (order_id, no, ref, channel_code, group_code, status, dispatch_state,"
    " started_at, dispatched_at, deadline_at, supplier_ref)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10) RETURNING *"
)
_RECORD_REPLY = (
    "UPDATE attempts SET supplier_order_id = $1, latency_ms = $2, dispatch_state = $3,"
    " dispatched_at = $4, deadline_at = CASE WHEN status = $5 THEN $6 ELSE deadline_at END,"
    " cost = $8 WHERE ref = $7 RETURNING *"
)
_FAIL_ATTEMPT = "UPDATE attempts SET status = $1, reason = $2, finished_at = $3 WHERE id = $4 AND status = $5"
_SUCCEED_ATTEMPT = "UPDATE attempts SET status = $1, finished_at = $2 WHERE id = $3 AND status IN ($4, $5)"
_INSERT_EVENTS = (
    "INSERT INTO order_events (order_id, attempt_no, kind, detail, at) VALUES ($1, $2, $3, $4, $5)"
)
_INSERT_CALLBACK = (
    "INSERT INTO callbacks (channel_code, ref, status, supplier_order_id, code, message, received_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (channel_code, ref, status) DO NOTHING"
)


class SqlOrders:
    __slots__ = ("_events", "tx")

    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        self._events: list[tuple[Any, ...]] | None = None

    # ---- orders -----------------------------------------------------------------------------------

    async def insert(self, order: Order) -> bool:
        return await self.tx.exec(_INSERT_ORDER, *_order_values(order)) == 1

    async def insert_many(self, orders: Sequence[Order]) -> None:
        # One executemany (pipelined on PostgreSQL): a 10,000-row batch is one round trip.
        await self.tx.executemany(_INSERT_ORDER, [_order_values(o) for o in orders])

    async def get(self, order_id: str, merchant_id: str | None = None) -> Order | None:
        stmt = select(t.orders).where(t.orders.c.id == order_id)
        if merchant_id is not None:
            stmt = stmt.where(t.orders.c.merchant_id == merchant_id)
        row = (await self.tx.conn.execute(stmt)).first()
        return None if row is None else _order(row._mapping)

    async def by_merchant_order_id(self, merchant_id: str, merchant_order_id: str) -> Order | None:
        row = await self.tx.fetchrow(
            "SELECT * FROM orders WHERE merchant_id = $1 AND merchant_order_id = $2",
            merchant_id,
            merchant_order_id,
        )
        return None if row is None else _order(row)

    async def lock(self, order_id: str) -> Order | None:
        sql = "SELECT * FROM orders WHERE id = $1"
        row = await self.tx.fetchrow(sql + " FOR UPDATE" if self.tx.is_postgres else sql, order_id)
        return None if row is None else _order(row)

    async def page(
        self, where: OrderFilter, limit: int, before: tuple[float, str] | None = None
    ) -> list[Order]:
        stmt = select(t.orders)
        if where.merchant_id is not None:
            stmt = stmt.where(t.orders.c.merchant_id == where.merchant_id)
        if where.status:
            stmt = stmt.where(t.orders.c.status == where.status)
        if where.merchant_order_id:
            stmt = stmt.where(t.orders.c.merchant_order_id == where.merchant_order_id)
        if where.account:
            stmt = stmt.where(t.orders.c.account == where.account)
        if where.batch_id:
            stmt = stmt.where(t.orders.c.batch_id == where.batch_id)
        if before:
            c_at, c_id = before
            stmt = stmt.where(
                or_(t.orders.c.created_at < c_at, and_(t.orders.c.created_at == c_at, t.orders.c.id < c_id))
            )
        rows = (
            await self.tx.conn.execute(
                stmt.order_by(t.orders.c.created_at.desc(), t.orders.c.id.desc()).limit(limit)
            )
        ).all()
        return [_order(r._mapping) for r in rows]

    async def move(
        self,
        order: Order,
        to: OrderStatus,
        *,
        failure_reason: str | None = None,
        succeeded_ref: str | None = None,
    ) -> bool:
        tx = self.tx
        moved = replace(order)
        expected = moved.move_to(to, tx.now, failure_reason=failure_reason, succeeded_ref=succeeded_ref)
        if moved.status is OrderStatus.SUCCEEDED:
            row = await tx.fetchrow(
                _SUCCEED_ORDER, str(moved.status), moved.succeeded_ref, tx.now, order.id, str(expected)
            )
        elif moved.status is OrderStatus.FAILED:
            row = await tx.fetchrow(
                _FAIL_ORDER, str(moved.status), moved.failure_reason, tx.now, order.id, str(expected)
            )
        else:
            row = await tx.fetchrow(_MOVE_ORDER, str(moved.status), tx.now, order.id, str(expected))
        if row is None:
            return False
        _refresh(order, row)
        return True

    async def save_plan(self, order_id: str, plan: list[str], probe: bool, attempt_count: int) -> None:
        await self.tx.exec(
            "UPDATE orders SET route_plan = $1, is_probe = $2, attempt_count = $3, updated_at = $4"
            " WHERE id = $5",
            orjson.dumps(plan).decode(),
            probe,
            attempt_count,
            self.tx.now,
            order_id,
        )

    async def count_attempts(self, order_id: str, attempt_count: int) -> None:
        await self.tx.exec(
            "UPDATE orders SET attempt_count = $1, updated_at = $2 WHERE id = $3",
            attempt_count,
            self.tx.now,
            order_id,
        )

    # ---- attempts ---------------------------------------------------------------------------------

    async def attempts(self, order_id: str) -> list[Attempt]:
        rows = await self.tx.fetch("SELECT * FROM attempts WHERE order_id = $1 ORDER BY no", order_id)
        return [_attempt(r) for r in rows]

    async def attempts_of(self, order_ids: list[str]) -> dict[str, list[Attempt]]:
        out: dict[str, list[Attempt]] = {oid: [] for oid in order_ids}
        if not order_ids:
            return out
        rows = (
            await self.tx.conn.execute(
                select(t.attempts).where(t.attempts.c.order_id.in_(order_ids)).order_by(t.attempts.c.no)
            )
        ).all()
        for r in rows:
            out[r.order_id].append(_attempt(r._mapping))
        return out

    async def attempt(self, ref: str) -> Attempt | None:
        row = await self.tx.fetchrow("SELECT * FROM attempts WHERE ref = $1", ref)
        return None if row is None else _attempt(row)

    async def attempt_by_supplier_ref(self, channel_code: str, supplier_ref: str) -> Attempt | None:
        row = await self.tx.fetchrow(
            "SELECT * FROM attempts WHERE channel_code = $1 AND supplier_ref = $2",
            channel_code,
            supplier_ref,
        )
        return None if row is None else _attempt(row)

    async def due_attempt(self, ref: str) -> DueAttempt | None:
        row = await self.tx.fetchrow(
            "SELECT a.*, o.product_code, o.business_type FROM attempts a"
            " JOIN orders o ON o.id = a.order_id WHERE a.ref = $1",
            ref,
        )
        if row is None:
            return None
        return DueAttempt(_attempt(row), row.product_code, row.business_type)

    async def attempt_status(self, attempt_id: int) -> AttemptStatus | None:
        row = await self.tx.fetchrow("SELECT status FROM attempts WHERE id = $1", attempt_id)
        return None if row is None else AttemptStatus(row.status)

    async def add_attempt(self, new: NewAttempt) -> Attempt:
        tx = self.tx
        row = await tx.fetchrow(
            _INSERT_ATTEMPT,
            new.order_id,
            new.no,
            new.ref,
            new.channel_code,
            new.group_code,
            str(AttemptStatus.PENDING),
            new.dispatch_state,
            tx.now,
            new.deadline_at,
            new.supplier_ref,
        )
        assert row is not None
        return _attempt(row)

    async def record_reply(self, ref: str, reply: DispatchReply) -> Attempt | None:
        row = await self.tx.fetchrow(
            _RECORD_REPLY,
            reply.supplier_order_id,
            reply.latency_ms,
            reply.dispatch_state,
            reply.dispatched_at,
            str(AttemptStatus.PENDING),
            reply.deadline_at,
            ref,
            reply.cost,
        )
        return None if row is None else _attempt(row)

    async def move_attempt(self, attempt: Attempt, to: AttemptStatus, reason: str | None = None) -> bool:
        tx = self.tx
        sources = attempt_sources(to)
        if sources == {AttemptStatus.PENDING, AttemptStatus.ABANDONED}:  # -> succeeded
            changed = await tx.exec(
                _SUCCEED_ATTEMPT,
                str(to),
                tx.now,
                attempt.id,
                str(AttemptStatus.PENDING),
                str(AttemptStatus.ABANDONED),
            )
        elif sources == {AttemptStatus.PENDING}:
            changed = await tx.exec(
                _FAIL_ATTEMPT, str(to), (reason or "")[:500], tx.now, attempt.id, str(AttemptStatus.PENDING)
            )
        else:
            raise ForbiddenTransition(f"attempt cannot move to {to}")
        if changed != 1:
            return False
        attempt.status = to  # the stored status was one the table allows `to` from
        attempt.finished_at = tx.now
        if reason is not None:
            attempt.reason = reason[:500]
        return True

    async def extend_deadline(self, attempt_id: int, deadline_at: float) -> None:
        await self.tx.exec("UPDATE attempts SET deadline_at = $1 WHERE id = $2", deadline_at, attempt_id)

    async def channel_outcomes(self, channel_code: str, window: int) -> list[bool]:
        rows = (
            await self.tx.conn.execute(
                select(t.attempts.c.status)
                .where(t.attempts.c.channel_code == channel_code, t.attempts.c.finished_at.is_not(None))
                .order_by(t.attempts.c.finished_at.desc())
                .limit(window)
            )
        ).all()
        return [r.status == AttemptStatus.SUCCEEDED for r in rows]

    # ---- timeline, callbacks, exceptions ----------------------------------------------------------

    def add_event(self, order_id: str, attempt_no: int | None, kind: str, detail: Mapping[str, Any]) -> None:
        # The unit of work's events are written together just before it commits (one round trip).
        if self._events is None:
            self._events = []
            self.tx.before_commit(self._write_events)
        self._events.append((order_id, attempt_no, kind, orjson.dumps(detail).decode(), self.tx.now))

    async def _write_events(self) -> None:
        events, self._events = self._events or [], None
        await self.tx.executemany(_INSERT_EVENTS, events)

    async def store_callback(self, callback: StoredCallback) -> bool:
        inserted = await self.tx.exec(_INSERT_CALLBACK, *callback, self.tx.now)
        return bool(inserted)

    async def set_callback_outcome(self, callback: StoredCallback, outcome: str) -> None:
        await self.tx.exec(
            "UPDATE callbacks SET outcome = $1 WHERE channel_code = $2 AND ref = $3 AND status = $4",
            outcome,
            callback.channel_code,
            callback.ref,
            callback.status,
        )

    async def add_exception(
        self,
        kind: str,
        order_id: str | None,
        ref: str | None,
        channel_code: str | None,
        detail: Mapping[str, Any],
    ) -> None:
        tx = self.tx
        await insert_ignore(
            tx,
            t.exceptions,
            {
                "id": new_id("exc", tx.now),
                "kind": kind,
                "order_id": order_id,
                "ref": ref or order_id,
                "channel_code": channel_code,
                "detail": dict(detail),
                "created_at": tx.now,
            },
            ["kind", "ref"],
        )
