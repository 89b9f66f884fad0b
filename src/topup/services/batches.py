"""Batches: up to 10,000 rows placed as `pending_payment` orders in one transaction, one combined payment,
status and counts kept from the orders table.

Plug-in: `install(container)` wires the payment system, the job handlers, the final hook and the routes.
"""

from __future__ import annotations

from typing import Any

from topup.clock import rfc3339
from topup.domain import batches as B
from topup.domain.errors import (
    BatchTooLarge,
    IdempotencyConflict,
    InvalidRequest,
    InvalidState,
    NotFound,
    TopupError,
)
from topup.domain.orders import Order
from topup.domain.payments import PaymentMethod, PaymentStatus
from topup.domain.urls import UnsafeUrl, check_notify_url
from topup.ids import new_id
from topup.services import orders
from topup.services.catalog import Snapshot
from topup.services.payments import Payable, Payments
from topup.services.ports.payments import Batch, Payment
from topup.services.uow import UnitOfWork

# ---- placing -------------------------------------------------------------------------------------


def _check_shape(merchant_batch_id: Any, rows: Any, notify_url: Any, allow_private_notify: bool) -> None:
    from topup.domain.orders import MERCHANT_ORDER_ID

    if not isinstance(merchant_batch_id, str) or not MERCHANT_ORDER_ID.match(merchant_batch_id):
        raise InvalidRequest(
            "merchant_batch_id: required, 1-64 of [A-Za-z0-9_.-]", {"field": "merchant_batch_id"}
        )
    if not isinstance(rows, list):
        raise InvalidRequest("rows: required, a list of {product_code, account}", {"field": "rows"})
    if len(rows) > B.MAX_ROWS:
        raise BatchTooLarge(f"a batch holds at most {B.MAX_ROWS} rows, got {len(rows)}", {"max": B.MAX_ROWS})
    if not rows:
        raise InvalidRequest("rows: at least one row", {"field": "rows"})
    if notify_url is not None:
        if not isinstance(notify_url, str):
            raise InvalidRequest("notify_url: an http(s) URL", {"field": "notify_url"})
        try:
            check_notify_url(notify_url, allow_private=allow_private_notify)
        except UnsafeUrl as e:
            raise InvalidRequest(f"notify_url: {e.reason}", {"field": "notify_url"}) from None


def validate_rows(snapshot: Snapshot, raw_rows: list[Any]) -> list[dict[str, Any]]:
    """Each row through the same checks as a single order; in memory, no database round trip."""
    out = []
    for n, raw in enumerate(raw_rows, start=1):
        r = B.parse_row(n, raw)
        item: dict[str, Any] = {"row": n, "product_code": r.product_code, "account": r.account}
        if r.problem is not None:
            out.append({**item, "ok": False, "error": {"code": "invalid_request", "message": r.problem}})
            continue
        try:
            v = orders.resolve(snapshot, r.product_code, r.account)
        except TopupError as e:
            out.append({**item, "ok": False, "error": {"code": e.code, "message": e.message}})
            continue
        out.append({**item, "ok": True, "error": None, "validated": v})
    return out


async def create_batch(
    tx: UnitOfWork, snapshot: Snapshot, merchant_id: str, body: Any, *, allow_private_notify: bool = False
) -> tuple[dict[str, Any], bool]:
    """Place a batch (201) or return the same one for a replay (200); 409 for a different body."""
    if not isinstance(body, dict):
        raise InvalidRequest("body must be a JSON object")
    mbid, rows, notify_url = body.get("merchant_batch_id"), body.get("rows"), body.get("notify_url")
    _check_shape(mbid, rows, notify_url, allow_private_notify)
    assert isinstance(mbid, str) and isinstance(rows, list)  # _check_shape raised otherwise
    fp = B.fingerprint(mbid, rows, notify_url)
    existing = await tx.payments.batch_by_merchant_id(merchant_id, mbid)
    if existing is not None:
        return await _replay(tx, existing, fp)
    checked = validate_rows(snapshot, rows)
    batch_id = new_id("bat", tx.now)
    new_orders: list[Order] = []
    batch_rows: list[dict[str, Any]] = []
    amount = 0
    for c in checked:
        if not c["ok"]:
            batch_rows.append(
                {
                    "row": c["row"],
                    "status": str(B.RowStatus.INVALID),
                    "order_id": None,
                    "error": c["error"],
                    "product_code": c["product_code"],
                    "account": c["account"],
                }
            )
            continue
        v = c["validated"]
        merchant_order_id = B.row_order_id(batch_id, c["row"])
        req = orders.OrderRequest(merchant_order_id, v.product.code, c["account"], notify_url)
        order = orders.new_order(tx.now, merchant_id, req, v, batch_id)
        order_id = order.id
        new_orders.append(order)
        amount += v.product.price
        batch_rows.append(
            {
                "row": c["row"],
                "status": str(B.RowStatus.PLACED),
                "order_id": order_id,
                "error": None,
                "product_code": v.product.code,
                "account": v.account,
            }
        )
    status = B.BatchStatus.AWAITING_PAYMENT if new_orders else B.BatchStatus.COMPLETED
    inserted = await tx.payments.add_batch(
        Batch(
            id=batch_id,
            merchant_id=merchant_id,
            merchant_batch_id=mbid,
            request_hash=fp,
            status=str(B.BatchStatus.PLACING),
            total_rows=len(rows),
            valid_rows=len(new_orders),
            amount=amount,
            notify_url=notify_url,
            payment_id=None,
            rows=batch_rows,
            created_at=tx.now,
            updated_at=tx.now,
            completed_at=None,
        )
    )
    if not inserted:
        # A concurrent request with the same merchant_batch_id won the insert.
        existing = await tx.payments.batch_by_merchant_id(merchant_id, mbid)
        assert existing is not None
        return await _replay(tx, existing, fp)
    if new_orders:
        await tx.payments.add_batch_orders(new_orders, batch_id)
    await tx.payments.placed(batch_id, status, completed=not new_orders)
    return await render_batch(tx, await get_batch(tx, batch_id, merchant_id), None), True


async def _replay(tx: UnitOfWork, existing: Batch, fp: str) -> tuple[dict[str, Any], bool]:
    if existing.request_hash != fp:
        raise IdempotencyConflict(
            f"merchant_batch_id {existing.merchant_batch_id} was already used with a different body",
            {"batch_id": existing.id},
        )
    return await render_batch(tx, existing, None), False


# ---- reads ---------------------------------------------------------------------------------------


async def get_batch(
    tx: UnitOfWork, batch_id: str, merchant_id: str | None, for_update: bool = False
) -> Batch:
    """The batch; NotFound when it does not exist or belongs to another merchant."""
    batch = await tx.payments.batch(batch_id, merchant_id, for_update)
    if batch is None:
        raise NotFound(f"batch {batch_id} not found")
    return batch


async def counts(tx: UnitOfWork, batch_id: str) -> dict[str, int]:
    """Per-status order counts, from the orders table (never drifts from the orders themselves)."""
    out = B.empty_counts()
    out.update(await tx.payments.batch_counts(batch_id))
    return out


async def render_batch(
    tx: UnitOfWork, batch: Batch, payments: Payments | None, *, with_rows: bool = True
) -> dict[str, Any]:
    payment = None
    if batch.payment_id and payments is not None:
        payment = await payments.render(tx, await payments.get(tx, batch.payment_id))
    elif batch.payment_id:
        payment = {"payment_id": batch.payment_id}
    out: dict[str, Any] = {
        "batch_id": batch.id,
        "merchant_batch_id": batch.merchant_batch_id,
        "status": batch.status,
        "total_rows": batch.total_rows,
        "valid_rows": batch.valid_rows,
        "amount": batch.amount,
        "counts": await counts(tx, batch.id),
        "payment": payment,
        "notify_url": batch.notify_url,
        "created_at": rfc3339(batch.created_at),
        "updated_at": rfc3339(batch.updated_at),
        "completed_at": rfc3339(batch.completed_at),
    }
    if with_rows:
        out["rows"] = list(batch.rows)
    return out


async def order_states(
    tx: UnitOfWork, batch_id: str, since: float | None = None
) -> dict[str, dict[str, Any]]:
    """order_id -> {status, price, failure_reason, updated_at} for the batch's orders (changed since)."""
    return {oid: s._asdict() for oid, s in (await tx.payments.batch_order_states(batch_id, since)).items()}


async def results_csv(tx: UnitOfWork, batch: Batch) -> str:
    return B.results_csv(list(batch.rows), await order_states(tx, batch.id))


async def list_batches(tx: UnitOfWork, merchant_id: str, limit: int = 50) -> list[dict[str, Any]]:
    rows = await tx.payments.batches(merchant_id, limit)
    return [await render_batch(tx, r, None, with_rows=False) for r in rows]


# ---- paying and cancelling ---------------------------------------------------------------------


async def pay(
    tx: UnitOfWork, payments: Payments, merchant_id: str, batch_id: str, body: Any
) -> tuple[dict[str, Any], bool]:
    """ONE payment for every placed order of the batch. (payment, created)."""
    if not isinstance(body, dict):
        raise InvalidRequest("body must be a JSON object")
    from topup.domain.payments import parse_method

    method = parse_method(body.get("method"))
    batch = await get_batch(tx, batch_id, merchant_id, for_update=True)
    if batch.payment_id:
        current = await payments.get(tx, batch.payment_id)
        if current.status == PaymentStatus.PAID:
            raise InvalidState("the batch is already paid", {"payment_id": current.id})
        if current.status == PaymentStatus.PENDING:
            if current.method == method:
                return await payments.render(tx, current), False
            raise InvalidState(
                "a payment for this batch is pending; wait for it or let it expire",
                {"payment_id": current.id},
            )
    if batch.status != B.BatchStatus.AWAITING_PAYMENT:
        raise InvalidState(f"the batch is {batch.status}; only a batch awaiting payment can be paid")
    pending = await tx.payments.batch_payables(batch_id)
    payment = await payments.create(
        tx, merchant_id, method, [Payable(oid, price) for oid, price in pending], batch_id=batch_id
    )
    status = (
        B.BatchStatus.PROCESSING if payment.status == PaymentStatus.PAID else B.BatchStatus.AWAITING_PAYMENT
    )
    await tx.payments.set_batch_payment(batch_id, payment.id, status)
    return await payments.render(tx, payment), True


async def cancel(tx: UnitOfWork, payments: Payments, merchant_id: str, batch_id: str) -> dict[str, Any]:
    """Cancel an unpaid batch and its orders (a pending sandbox payment is closed as expired)."""
    batch = await get_batch(tx, batch_id, merchant_id, for_update=True)
    if batch.status == B.BatchStatus.CANCELLED:
        return await render_batch(tx, batch, payments)
    if batch.status != B.BatchStatus.AWAITING_PAYMENT:
        raise InvalidState(f"the batch is {batch.status}; only an unpaid batch can be cancelled")
    if batch.payment_id:
        await payments.close_pending(tx, batch.payment_id)
    ids = await tx.payments.batch_unpaid_order_ids(batch_id)
    await payments.cancel_orders(tx, ids, "batch_cancelled")
    await tx.payments.set_batch_status(batch_id, B.BatchStatus.CANCELLED, final=True)
    return await render_batch(tx, await get_batch(tx, batch_id, merchant_id), payments)


# ---- hooks ---------------------------------------------------------------------------------------


async def on_order_final(tx: UnitOfWork, order: Order) -> None:
    """Called in the transaction that made a batch order final: complete the batch when none is left.

    The batch row is locked first, so of two orders finishing at once the later one sees the
    earlier one's committed status (PostgreSQL READ COMMITTED re-reads after the lock wait).
    """
    if not order.batch_id:
        return
    batch = await get_batch(tx, order.batch_id, None, for_update=True)
    if batch.status != B.BatchStatus.PROCESSING:
        return
    if not await tx.payments.batch_has_open_orders(order.batch_id):
        await tx.payments.complete_batch(order.batch_id)
    else:
        await tx.payments.touch_batch(order.batch_id)


async def on_payment_settled(tx: UnitOfWork, payment: Payment, outcome: PaymentStatus) -> None:
    """Paid -> the batch is processing; declined / expired -> the batch is cancelled."""
    if not payment.batch_id:
        return
    batch = await get_batch(tx, payment.batch_id, None, for_update=True)
    if batch.payment_id != payment.id or batch.status != B.BatchStatus.AWAITING_PAYMENT:
        return
    if outcome is PaymentStatus.PAID:
        await tx.payments.set_batch_status(batch.id, B.BatchStatus.PROCESSING)
    else:
        await tx.payments.set_batch_status(batch.id, B.BatchStatus.CANCELLED, final=True)


__all__ = ["PaymentMethod"]
