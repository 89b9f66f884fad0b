"""Batches: up to 10,000 rows placed as `pending_payment` orders in one transaction, one combined payment,
status and counts kept from the orders table.

Plug-in: `install(container)` wires the payment system, the job handlers, the final hook and the routes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update

from topup.adapters.db import tables as t
from topup.adapters.db.engine import Tx
from topup.adapters.db.helpers import insert_ignore, new_id
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
from topup.domain.orders import OrderStatus
from topup.domain.payments import PaymentMethod, PaymentStatus
from topup.domain.urls import UnsafeUrl, check_notify_url
from topup.services import orders
from topup.services.catalog import Snapshot
from topup.services.payments import Payable, Payments

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
    tx: Tx, snapshot: Snapshot, merchant_id: str, body: Any, *, allow_private_notify: bool = False
) -> tuple[dict[str, Any], bool]:
    """Place a batch (201) or return the same one for a replay (200); 409 for a different body."""
    if not isinstance(body, dict):
        raise InvalidRequest("body must be a JSON object")
    mbid, rows, notify_url = body.get("merchant_batch_id"), body.get("rows"), body.get("notify_url")
    _check_shape(mbid, rows, notify_url, allow_private_notify)
    assert isinstance(mbid, str) and isinstance(rows, list)  # _check_shape raised otherwise
    fp = B.fingerprint(mbid, rows, notify_url)
    existing = await _by_merchant_batch_id(tx, merchant_id, mbid)
    if existing is not None:
        return await _replay(tx, existing, fp)
    checked = validate_rows(snapshot, rows)
    batch_id = new_id("bat", tx.now)
    order_rows: list[dict[str, Any]] = []
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
        row = orders.new_order_row(tx.now, merchant_id, req, v, batch_id)
        order_id = row["id"]
        order_rows.append(row)
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
    status = B.BatchStatus.AWAITING_PAYMENT if order_rows else B.BatchStatus.COMPLETED
    inserted = await insert_ignore(
        tx,
        t.batches,
        {
            "id": batch_id,
            "merchant_id": merchant_id,
            "merchant_batch_id": mbid,
            "request_hash": fp,
            "status": str(B.BatchStatus.PLACING),
            "total_rows": len(rows),
            "valid_rows": len(order_rows),
            "amount": amount,
            "notify_url": notify_url,
            "payment_id": None,
            "rows": batch_rows,
            "created_at": tx.now,
            "updated_at": tx.now,
            "completed_at": None,
        },
        ["merchant_id", "merchant_batch_id"],
    )
    if not inserted:
        # A concurrent request with the same merchant_batch_id won the insert.
        existing = await _by_merchant_batch_id(tx, merchant_id, mbid)
        assert existing is not None
        return await _replay(tx, existing, fp)
    if order_rows:
        # One executemany per table: a 10,000-row batch is a handful of round trips.
        await tx.conn.execute(t.orders.insert(), order_rows)
        await tx.conn.execute(
            t.order_events.insert(),
            [
                {
                    "order_id": o["id"],
                    "attempt_no": None,
                    "kind": "created",
                    "detail": {"price": o["price"], "group": o["group_code"], "batch_id": batch_id},
                    "at": tx.now,
                }
                for o in order_rows
            ],
        )
    await tx.conn.execute(
        update(t.batches)
        .where(t.batches.c.id == batch_id)
        .values(status=str(status), completed_at=tx.now if not order_rows else None)
    )
    return await render_batch(tx, await get_batch(tx, batch_id, merchant_id), None), True


async def _replay(tx: Tx, existing: Any, fp: str) -> tuple[dict[str, Any], bool]:
    if existing.request_hash != fp:
        raise IdempotencyConflict(
            f"merchant_batch_id {existing.merchant_batch_id} was already used with a different body",
            {"batch_id": existing.id},
        )
    return await render_batch(tx, existing, None), False


async def _by_merchant_batch_id(tx: Tx, merchant_id: str, merchant_batch_id: str) -> Any | None:
    return (
        await tx.conn.execute(
            select(t.batches).where(
                t.batches.c.merchant_id == merchant_id, t.batches.c.merchant_batch_id == merchant_batch_id
            )
        )
    ).first()


# ---- reads ---------------------------------------------------------------------------------------


async def get_batch(tx: Tx, batch_id: str, merchant_id: str | None, for_update: bool = False) -> Any:
    """The batch row; NotFound when it does not exist or belongs to another merchant."""
    stmt = select(t.batches).where(t.batches.c.id == batch_id)
    if merchant_id is not None:
        stmt = stmt.where(t.batches.c.merchant_id == merchant_id)
    if for_update and tx.is_postgres:
        stmt = stmt.with_for_update()
    row = (await tx.conn.execute(stmt)).first()
    if row is None:
        raise NotFound(f"batch {batch_id} not found")
    return row


async def counts(tx: Tx, batch_id: str) -> dict[str, int]:
    """Per-status order counts, from the orders table (never drifts from the orders themselves)."""
    out = B.empty_counts()
    rows = (
        await tx.conn.execute(
            select(t.orders.c.status, func.count())
            .where(t.orders.c.batch_id == batch_id)
            .group_by(t.orders.c.status)
        )
    ).all()
    for status, n in rows:
        out[status] = int(n)
    return out


async def render_batch(
    tx: Tx, batch: Any, payments: Payments | None, *, with_rows: bool = True
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
        "total_rows": int(batch.total_rows),
        "valid_rows": int(batch.valid_rows),
        "amount": int(batch.amount),
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


async def order_states(tx: Tx, batch_id: str, since: float | None = None) -> dict[str, dict[str, Any]]:
    """order_id -> {status, price, failure_reason, updated_at} for the batch's orders (changed since)."""
    stmt = select(
        t.orders.c.id, t.orders.c.status, t.orders.c.price, t.orders.c.failure_reason, t.orders.c.updated_at
    ).where(t.orders.c.batch_id == batch_id)
    if since is not None:
        stmt = stmt.where(t.orders.c.updated_at >= since)
    return {
        r.id: {
            "status": r.status,
            "price": int(r.price),
            "failure_reason": r.failure_reason,
            "updated_at": r.updated_at,
        }
        for r in (await tx.conn.execute(stmt)).all()
    }


async def results_csv(tx: Tx, batch: Any) -> str:
    return B.results_csv(list(batch.rows), await order_states(tx, batch.id))


async def list_batches(tx: Tx, merchant_id: str, limit: int = 50) -> list[dict[str, Any]]:
    rows = (
        await tx.conn.execute(
            select(t.batches)
            .where(t.batches.c.merchant_id == merchant_id)
            .order_by(t.batches.c.created_at.desc(), t.batches.c.id.desc())
            .limit(limit)
        )
    ).all()
    return [await render_batch(tx, r, None, with_rows=False) for r in rows]


# ---- paying and cancelling ---------------------------------------------------------------------


async def pay(
    tx: Tx, payments: Payments, merchant_id: str, batch_id: str, body: Any
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
    pending = (
        await tx.conn.execute(
            select(t.orders.c.id, t.orders.c.price)
            .where(t.orders.c.batch_id == batch_id, t.orders.c.status == str(OrderStatus.PENDING_PAYMENT))
            .order_by(t.orders.c.id)
        )
    ).all()
    payment = await payments.create(
        tx, merchant_id, method, [Payable(r.id, int(r.price)) for r in pending], batch_id=batch_id
    )
    status = (
        B.BatchStatus.PROCESSING if payment.status == PaymentStatus.PAID else B.BatchStatus.AWAITING_PAYMENT
    )
    await tx.conn.execute(
        update(t.batches)
        .where(t.batches.c.id == batch_id)
        .values(payment_id=payment.id, status=str(status), updated_at=tx.now)
    )
    return await payments.render(tx, payment), True


async def cancel(tx: Tx, payments: Payments, merchant_id: str, batch_id: str) -> dict[str, Any]:
    """Cancel an unpaid batch and its orders (a pending sandbox payment is closed as expired)."""
    batch = await get_batch(tx, batch_id, merchant_id, for_update=True)
    if batch.status == B.BatchStatus.CANCELLED:
        return await render_batch(tx, batch, payments)
    if batch.status != B.BatchStatus.AWAITING_PAYMENT:
        raise InvalidState(f"the batch is {batch.status}; only an unpaid batch can be cancelled")
    if batch.payment_id:
        await payments.close_pending(tx, batch.payment_id)
    ids = list(
        (
            await tx.conn.execute(
                select(t.orders.c.id).where(
                    t.orders.c.batch_id == batch_id, t.orders.c.status == str(OrderStatus.PENDING_PAYMENT)
                )
            )
        ).scalars()
    )
    await payments.cancel_orders(tx, ids, "batch_cancelled")
    await _set_status(tx, batch_id, B.BatchStatus.CANCELLED, final=True)
    return await render_batch(tx, await get_batch(tx, batch_id, merchant_id), payments)


async def _set_status(tx: Tx, batch_id: str, status: B.BatchStatus, *, final: bool = False) -> None:
    values: dict[str, Any] = {"status": str(status), "updated_at": tx.now}
    if final:
        values["completed_at"] = tx.now
    await tx.conn.execute(update(t.batches).where(t.batches.c.id == batch_id).values(**values))


# ---- hooks ---------------------------------------------------------------------------------------


async def on_order_final(tx: Tx, order: Any) -> None:
    """Called in the transaction that made a batch order final: complete the batch when none is left.

    The batch row is locked first, so of two orders finishing at once the later one sees the
    earlier one's committed status (PostgreSQL READ COMMITTED re-reads after the lock wait).
    """
    if not order.batch_id:
        return
    batch = await get_batch(tx, order.batch_id, None, for_update=True)
    if batch.status != B.BatchStatus.PROCESSING:
        return
    open_left = (
        await tx.conn.execute(
            select(t.orders.c.id)
            .where(t.orders.c.batch_id == order.batch_id, t.orders.c.status.in_(B.NON_FINAL))
            .limit(1)
        )
    ).first()
    if open_left is None:
        await tx.conn.execute(
            update(t.batches)
            .where(t.batches.c.id == order.batch_id, t.batches.c.status == str(B.BatchStatus.PROCESSING))
            .values(status=str(B.BatchStatus.COMPLETED), updated_at=tx.now, completed_at=tx.now)
        )
    else:
        await tx.conn.execute(
            update(t.batches).where(t.batches.c.id == order.batch_id).values(updated_at=tx.now)
        )


async def on_payment_settled(tx: Tx, payment: Any, outcome: PaymentStatus) -> None:
    """Paid -> the batch is processing; declined / expired -> the batch is cancelled."""
    if not payment.batch_id:
        return
    batch = await get_batch(tx, payment.batch_id, None, for_update=True)
    if batch.payment_id != payment.id or batch.status != B.BatchStatus.AWAITING_PAYMENT:
        return
    if outcome is PaymentStatus.PAID:
        await _set_status(tx, batch.id, B.BatchStatus.PROCESSING)
    else:
        await _set_status(tx, batch.id, B.BatchStatus.CANCELLED, final=True)


# ---- plug-in -------------------------------------------------------------------------------------


def build_payments(c: Any) -> Payments:
    from topup.services.payments import sandbox_secret

    s = c.settings
    return Payments(
        db=c.db,
        http=c.http,
        public_base=s.callback_base(),
        secret=sandbox_secret(s.secret_key, getattr(s, "sandbox_secret", None)),
        ttl_s=s.sandbox_payment_ttl_s,
        now=c.clock.now,
    )


def payments_of(c: Any) -> Payments:
    p: Payments = c.extras["payments"]
    return p


def install(c: Any) -> None:
    """Payments, job handlers, the final hook and the batch routes."""
    from topup.entrypoints.api import batch_routes

    payments = build_payments(c)
    payments.on_settled.append(on_payment_settled)
    payments.order_final_hooks = lambda: [h for h in c.fulfilment.final_hooks if h is not on_order_final]
    c.extras["payments"] = payments
    handlers = c.extras.setdefault("job_handlers", {})
    handlers["payment_expire"] = payments.handle_expire_job
    handlers["sandbox_notify"] = payments.handle_gateway_notify_job
    if on_order_final not in c.fulfilment.final_hooks:
        c.fulfilment.final_hooks.append(on_order_final)
    c.extras.setdefault("routers", []).append(batch_routes.router)
    return None


__all__ = ["PaymentMethod", "install"]
