"""Every statement the payments services run (implements `services.ports.payments`; the batch
statements are in `repos.batches`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from topup.adapters.db import tables as t
from topup.adapters.db.helpers import new_id
from topup.adapters.db.repos.batches import BatchStatements
from topup.adapters.db.repos.orders import _order as order_of
from topup.domain.orders import Order, OrderStatus, check_order_transition
from topup.domain.payments import PaymentStatus
from topup.services.ports.payments import Payment

if TYPE_CHECKING:
    from topup.adapters.db.engine import Tx

# Keep IN (...) lists well under every driver's bind-parameter limit.
CHUNK = 1000


def _chunks(items: list[str], size: int = CHUNK) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def payment_of(r: Any) -> Payment:
    return Payment(
        id=r.id,
        merchant_id=r.merchant_id,
        batch_id=r.batch_id,
        method=r.method,
        amount=int(r.amount),
        status=r.status,
        refunded=int(r.refunded or 0),
        expires_at=r.expires_at,
        created_at=r.created_at,
        paid_at=r.paid_at,
        updated_at=r.updated_at,
    )


# The two bulk moves a payment makes, checked against the order transition table once, at import.
_STARTED = check_order_transition(OrderStatus.PENDING_PAYMENT, OrderStatus.PROCESSING)
_CANCELLED = check_order_transition(OrderStatus.PENDING_PAYMENT, OrderStatus.CANCELLED)


class SqlPayments(BatchStatements):
    __slots__ = ("tx",)

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def add(self, payment: Payment) -> None:
        await self.tx.conn.execute(
            t.payments.insert().values(
                id=payment.id,
                merchant_id=payment.merchant_id,
                batch_id=payment.batch_id,
                method=payment.method,
                amount=payment.amount,
                status=payment.status,
                refunded=payment.refunded,
                expires_at=payment.expires_at,
                created_at=payment.created_at,
                paid_at=payment.paid_at,
                updated_at=payment.updated_at,
            )
        )

    async def get(self, payment_id: str, for_update: bool = False) -> Payment | None:
        stmt = select(t.payments).where(t.payments.c.id == payment_id)
        if for_update and self.tx.is_postgres:
            stmt = stmt.with_for_update()
        row = (await self.tx.conn.execute(stmt)).first()
        return None if row is None else payment_of(row)

    async def settle(self, payment_id: str, outcome: PaymentStatus) -> bool:
        tx = self.tx
        values: dict[str, Any] = {"status": str(outcome), "updated_at": tx.now}
        if outcome is PaymentStatus.PAID:
            values["paid_at"] = tx.now
        res = await tx.conn.execute(
            update(t.payments)
            .where(t.payments.c.id == payment_id, t.payments.c.status == str(PaymentStatus.PENDING))
            .values(**values)
        )
        return bool(res.rowcount == 1)

    async def order_ids(self, payment_id: str) -> list[str]:
        return list(
            (
                await self.tx.conn.execute(
                    select(t.orders.c.id).where(t.orders.c.payment_id == payment_id).order_by(t.orders.c.id)
                )
            ).scalars()
        )

    async def pending_order_ids(self, payment_id: str) -> list[str]:
        return list(
            (
                await self.tx.conn.execute(
                    select(t.orders.c.id)
                    .where(
                        t.orders.c.payment_id == payment_id,
                        t.orders.c.status == str(OrderStatus.PENDING_PAYMENT),
                    )
                    .order_by(t.orders.c.id)
                )
            ).scalars()
        )

    async def add_refund(self, payment_id: str, order_id: str, amount: int) -> None:
        tx = self.tx
        await tx.conn.execute(
            t.payment_refunds.insert().values(
                id=new_id("rfd", tx.now),
                payment_id=payment_id,
                order_id=order_id,
                amount=amount,
                created_at=tx.now,
            )
        )

    async def add_refunded(self, payment_id: str, amount: int) -> None:
        await self.tx.conn.execute(
            update(t.payments)
            .where(t.payments.c.id == payment_id)
            .values(refunded=t.payments.c.refunded + amount, updated_at=self.tx.now)
        )

    # ---- the orders a payment moves ------------------------------------------------------------
    # Bulk moves of `pending_payment` orders; the targets below come through the transition table.

    async def attach_orders(
        self, order_ids: list[str], merchant_id: str, payment_id: str, funding: str | None
    ) -> int:
        tx = self.tx
        values: dict[str, Any] = {"payment_id": payment_id, "updated_at": tx.now}
        if funding is not None:
            values.update(status=str(_STARTED), funding=funding)
        changed = 0
        for chunk in _chunks(order_ids):
            res = await tx.conn.execute(
                update(t.orders)
                .where(
                    t.orders.c.id.in_(chunk),
                    t.orders.c.merchant_id == merchant_id,
                    t.orders.c.status == str(OrderStatus.PENDING_PAYMENT),
                )
                .values(**values)
            )
            changed += res.rowcount
        return changed

    async def start_orders(self, order_ids: list[str], funding: str) -> None:
        tx = self.tx
        for chunk in _chunks(order_ids):
            await tx.conn.execute(
                update(t.orders)
                .where(t.orders.c.id.in_(chunk), t.orders.c.status == str(OrderStatus.PENDING_PAYMENT))
                .values(status=str(_STARTED), funding=funding, updated_at=tx.now)
            )

    async def cancel_orders(self, order_ids: list[str], reason: str) -> list[str]:
        tx = self.tx
        cancelled: list[str] = []
        for chunk in _chunks(order_ids):
            mine = list(
                (
                    await tx.conn.execute(
                        select(t.orders.c.id).where(
                            t.orders.c.id.in_(chunk), t.orders.c.status == str(OrderStatus.PENDING_PAYMENT)
                        )
                    )
                ).scalars()
            )
            if not mine:
                continue
            await tx.conn.execute(
                update(t.orders)
                .where(t.orders.c.id.in_(mine), t.orders.c.status == str(OrderStatus.PENDING_PAYMENT))
                .values(
                    status=str(_CANCELLED),
                    failure_reason=reason,
                    updated_at=tx.now,
                    completed_at=tx.now,
                )
            )
            cancelled.extend(mine)
        return cancelled

    async def add_order_events(self, order_ids: list[str], kind: str, detail: dict[str, Any]) -> None:
        tx = self.tx
        await tx.conn.execute(
            t.order_events.insert(),
            [
                {"order_id": oid, "attempt_no": None, "kind": kind, "detail": detail, "at": tx.now}
                for oid in order_ids
            ],
        )

    async def order_rows(self, order_ids: list[str]) -> list[Order]:
        rows: list[Order] = []
        for chunk in _chunks(order_ids):
            found = (await self.tx.conn.execute(select(t.orders).where(t.orders.c.id.in_(chunk)))).all()
            rows.extend(order_of(r._mapping) for r in found)
        return rows
