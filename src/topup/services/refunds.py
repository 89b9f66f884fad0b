"""Refunds: a failed order's held price goes back where it came from (the routing engine calls this
through its `on_order_failed` hook; payments own the money side)."""

from __future__ import annotations

from topup.domain import ledger as L
from topup.domain.orders import Order
from topup.services import ledger
from topup.services.uow import UnitOfWork


async def refund(uow: UnitOfWork, order: Order) -> None:
    """Release the held price of a failed/cancelled order back to its source, exactly once."""
    funding = L.funding_for(order.merchant_id, order.funding)
    posted = await ledger.post(
        uow,
        L.TransferKind.RELEASE,
        order.id,
        L.transfer(funding.held, funding.refund_to, int(order.price)),
        merchant_id=order.merchant_id,
        order_id=order.id,
        payment_id=order.payment_id,
    )
    if posted and order.funding == "sandbox" and order.payment_id:
        await uow.payments.add_refund(order.payment_id, order.id, int(order.price))
    if posted and order.payment_id:
        await uow.payments.add_refunded(order.payment_id, int(order.price))
