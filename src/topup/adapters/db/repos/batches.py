"""The batch statements of `SqlPayments` (implements the batch half of `services.ports.payments`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update

from topup.adapters.db import tables as t
from topup.adapters.db.helpers import insert_ignore
from topup.domain import batches as B
from topup.domain.orders import Order, OrderStatus
from topup.services.ports.payments import Batch, BatchOrderState

if TYPE_CHECKING:
    from topup.adapters.db.engine import Tx


def batch_of(r: Any) -> Batch:
    return Batch(
        id=r.id,
        merchant_id=r.merchant_id,
        merchant_batch_id=r.merchant_batch_id,
        request_hash=r.request_hash,
        status=r.status,
        total_rows=int(r.total_rows),
        valid_rows=int(r.valid_rows),
        amount=int(r.amount),
        notify_url=r.notify_url,
        payment_id=r.payment_id,
        rows=list(r.rows),
        created_at=r.created_at,
        updated_at=r.updated_at,
        completed_at=r.completed_at,
    )


class BatchStatements:
    __slots__ = ()
    tx: Tx

    async def add_batch(self, batch: Batch) -> bool:
        return await insert_ignore(
            self.tx,
            t.batches,
            {
                "id": batch.id,
                "merchant_id": batch.merchant_id,
                "merchant_batch_id": batch.merchant_batch_id,
                "request_hash": batch.request_hash,
                "status": batch.status,
                "total_rows": batch.total_rows,
                "valid_rows": batch.valid_rows,
                "amount": batch.amount,
                "notify_url": batch.notify_url,
                "payment_id": batch.payment_id,
                "rows": batch.rows,
                "created_at": batch.created_at,
                "updated_at": batch.updated_at,
                "completed_at": batch.completed_at,
            },
            ["merchant_id", "merchant_batch_id"],
        )

    async def add_batch_orders(self, orders: Sequence[Order], batch_id: str) -> None:
        # One executemany per table: a 10,000-row batch is a couple of round trips.
        tx = self.tx
        await tx.orders.insert_many(orders)
        for o in orders:
            detail = {"price": o.price, "group": o.group_code, "batch_id": batch_id}
            tx.orders.add_event(o.id, None, "created", detail)  # written together before the COMMIT

    async def placed(self, batch_id: str, status: B.BatchStatus, completed: bool) -> None:
        tx = self.tx
        await tx.conn.execute(
            update(t.batches)
            .where(t.batches.c.id == batch_id)
            .values(status=str(status), completed_at=tx.now if completed else None)
        )

    async def batch(self, batch_id: str, merchant_id: str | None, for_update: bool = False) -> Batch | None:
        stmt = select(t.batches).where(t.batches.c.id == batch_id)
        if merchant_id is not None:
            stmt = stmt.where(t.batches.c.merchant_id == merchant_id)
        if for_update and self.tx.is_postgres:
            stmt = stmt.with_for_update()
        row = (await self.tx.conn.execute(stmt)).first()
        return None if row is None else batch_of(row)

    async def batch_by_merchant_id(self, merchant_id: str, merchant_batch_id: str) -> Batch | None:
        row = (
            await self.tx.conn.execute(
                select(t.batches).where(
                    t.batches.c.merchant_id == merchant_id, t.batches.c.merchant_batch_id == merchant_batch_id
                )
            )
        ).first()
        return None if row is None else batch_of(row)

    async def batches(self, merchant_id: str, limit: int) -> list[Batch]:
        rows = (
            await self.tx.conn.execute(
                select(t.batches)
                .where(t.batches.c.merchant_id == merchant_id)
                .order_by(t.batches.c.created_at.desc(), t.batches.c.id.desc())
                .limit(limit)
            )
        ).all()
        return [batch_of(r) for r in rows]

    async def set_batch_status(self, batch_id: str, status: B.BatchStatus, final: bool = False) -> None:
        tx = self.tx
        values: dict[str, Any] = {"status": str(status), "updated_at": tx.now}
        if final:
            values["completed_at"] = tx.now
        await tx.conn.execute(update(t.batches).where(t.batches.c.id == batch_id).values(**values))

    async def set_batch_payment(self, batch_id: str, payment_id: str, status: B.BatchStatus) -> None:
        await self.tx.conn.execute(
            update(t.batches)
            .where(t.batches.c.id == batch_id)
            .values(payment_id=payment_id, status=str(status), updated_at=self.tx.now)
        )

    async def complete_batch(self, batch_id: str) -> bool:
        tx = self.tx
        res = await tx.conn.execute(
            update(t.batches)
            .where(t.batches.c.id == batch_id, t.batches.c.status == str(B.BatchStatus.PROCESSING))
            .values(status=str(B.BatchStatus.COMPLETED), updated_at=tx.now, completed_at=tx.now)
        )
        return bool(res.rowcount == 1)

    async def touch_batch(self, batch_id: str) -> None:
        await self.tx.conn.execute(
            update(t.batches).where(t.batches.c.id == batch_id).values(updated_at=self.tx.now)
        )

    async def batch_counts(self, batch_id: str) -> dict[str, int]:
        rows = (
            await self.tx.conn.execute(
                select(t.orders.c.status, func.count())
                .where(t.orders.c.batch_id == batch_id)
                .group_by(t.orders.c.status)
            )
        ).all()
        return {status: int(n) for status, n in rows}

    async def batch_order_states(self, batch_id: str, since: float | None) -> dict[str, BatchOrderState]:
        stmt = select(
            t.orders.c.id,
            t.orders.c.status,
            t.orders.c.price,
            t.orders.c.failure_reason,
            t.orders.c.updated_at,
        ).where(t.orders.c.batch_id == batch_id)
        if since is not None:
            stmt = stmt.where(t.orders.c.updated_at >= since)
        return {
            r.id: BatchOrderState(r.status, int(r.price), r.failure_reason, r.updated_at)
            for r in (await self.tx.conn.execute(stmt)).all()
        }

    async def batch_payables(self, batch_id: str) -> list[tuple[str, int]]:
        pending = (
            await self.tx.conn.execute(
                select(t.orders.c.id, t.orders.c.price)
                .where(t.orders.c.batch_id == batch_id, t.orders.c.status == str(OrderStatus.PENDING_PAYMENT))
                .order_by(t.orders.c.id)
            )
        ).all()
        return [(r.id, int(r.price)) for r in pending]

    async def batch_unpaid_order_ids(self, batch_id: str) -> list[str]:
        return list(
            (
                await self.tx.conn.execute(
                    select(t.orders.c.id).where(
                        t.orders.c.batch_id == batch_id, t.orders.c.status == str(OrderStatus.PENDING_PAYMENT)
                    )
                )
            ).scalars()
        )

    async def batch_has_open_orders(self, batch_id: str) -> bool:
        open_left = (
            await self.tx.conn.execute(
                select(t.orders.c.id)
                .where(t.orders.c.batch_id == batch_id, t.orders.c.status.in_(B.NON_FINAL))
                .limit(1)
            )
        ).first()
        return open_left is not None
