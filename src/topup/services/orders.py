"""Order intake and reads: idempotent placement, price hold, rendering the order object."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from sqlalchemy import and_, or_, select

from topup.adapters.db import tables as t
from topup.adapters.db.engine import Tx
from topup.adapters.db.helpers import new_id
from topup.clock import rfc3339
from topup.domain import ledger as L
from topup.domain.accounts import InvalidAccount, validate_account
from topup.domain.errors import (
    IdempotencyConflict,
    InvalidAccountError,
    InvalidRequest,
    NoRoute,
    NotFound,
    UnknownProduct,
)
from topup.domain.orders import OrderStatus
from topup.domain.routing import Destination, rank
from topup.domain.urls import UnsafeUrl, check_notify_url
from topup.services import jobs, ledger
from topup.services.catalog import Group, Product, Snapshot

log = structlog.get_logger("topup.orders")


@dataclass(frozen=True)
class OrderRequest:
    merchant_order_id: str
    product_code: str
    account: str
    notify_url: str | None = None
    extra: dict[str, Any] | None = None

    def fingerprint(self) -> str:
        """Same fields after defaults are applied -> same fingerprint."""
        canonical = {
            "merchant_order_id": self.merchant_order_id,
            "product_code": self.product_code,
            "account": self.account,
            "notify_url": self.notify_url,
            "extra": self.extra or {},
        }
        return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True)
class Validated:
    """A row that passed every check but the balance: what to place."""

    product: Product
    account: str
    brand: str | None
    group: Group
    region: str | None = None
    """The mobile number's home province (ISO 3166-2:CN), when known."""


def resolve(snapshot: Snapshot, product_code: str, account: str) -> Validated:
    """unknown_product -> invalid_account -> no_route, in that order (shared by orders and batch rows)."""
    product = snapshot.products.get(product_code)
    if product is None or not product.enabled:
        raise UnknownProduct(f"product_code: {product_code!r} is not in the catalog")
    fixed_brand = product.brand if product.brand not in (None, "auto") else None
    try:
        check = validate_account(product.business_type, account, fixed_brand)
    except InvalidAccount as e:
        raise InvalidAccountError(e.reason, {"field": e.field, "reason": e.reason}) from None
    if product.brand is None:
        route_brand = None
        group = next(
            (
                g
                for g in snapshot.groups.values()
                if g.business_type == product.business_type and g.brand is None
            ),
            None,
        )
    else:
        route_brand = check.brand if product.brand == "auto" else product.brand
        group = snapshot.group_for(product.business_type, route_brand)
    if group is None:
        raise NoRoute(f"no supplier group serves {product.business_type} / {route_brand or 'any brand'}")
    brand = check.brand or route_brand
    to = Destination(brand, check.region)
    if not rank(snapshot.members_of(group, product.code), group.strategy, product.code, product.price):
        raise NoRoute(f"group {group.code} has no enabled channel that can sell {product.code} at its price")
    if not rank(snapshot.members_of(group, product.code, to), group.strategy, product.code, product.price):
        # SPEC 7: no member covers the carrier and region, or every one that does is paused.
        raise NoRoute(
            f"group {group.code} has no channel taking {brand or 'any brand'} numbers"
            f" of {check.region or 'an unknown region'} now",
            {"carrier": brand, "region": check.region},
        )
    return Validated(product, check.account, brand, group, check.region)


async def place_order(
    tx: Tx,
    snapshot: Snapshot,
    merchant_id: str,
    req: OrderRequest,
    *,
    default_notify_url: str | None = None,
    batch_id: str | None = None,
    allow_private_notify: bool = False,
) -> tuple[dict[str, Any], bool]:
    """Create and pay (hold) an order, or return the existing one for a replay. (order, created).

    A merchant-supplied `notify_url` must be public unless `allow_private_notify` (a setting) says so.
    """
    if req.notify_url is not None:
        # A malformed body is refused before the idempotency check (SPEC section 0).
        try:
            check_notify_url(req.notify_url, allow_private=allow_private_notify)
        except UnsafeUrl as e:
            raise InvalidRequest(f"notify_url: {e.reason}", {"field": "notify_url"}) from None
    existing = await _by_merchant_order_id(tx, merchant_id, req.merchant_order_id)
    if existing is not None:
        return await _replay(tx, existing, req)
    v = resolve(snapshot, req.product_code, req.account)
    row = new_order_row(tx.now, merchant_id, req, v, batch_id)
    order_id = row["id"]
    in_batch = batch_id is not None
    if not await _insert_order(tx, row):
        # A concurrent request with the same merchant_order_id won the insert.
        existing = await _by_merchant_order_id(tx, merchant_id, req.merchant_order_id)
        assert existing is not None
        return await _replay(tx, existing, req)
    if not in_batch:
        await hold_price(tx, merchant_id, order_id, v.product.price)
        await jobs.enqueue(tx, "route", f"route:{order_id}", {"order_id": order_id})
    await add_event(tx, order_id, None, "created", {"price": v.product.price, "group": v.group.code})
    return render(row, []), True


def new_order_row(
    now: float, merchant_id: str, req: OrderRequest, v: Validated, batch_id: str | None = None
) -> dict[str, Any]:
    """The row of a new order (a batch row's waits for its payment: `pending_payment`)."""
    return {
        "id": new_id("ord", now),
        "merchant_id": merchant_id,
        "merchant_order_id": req.merchant_order_id,
        "request_hash": req.fingerprint(),
        "batch_id": batch_id,
        "business_type": v.product.business_type,
        "product_code": v.product.code,
        "account": v.account,
        "carrier": v.brand,
        "region": v.region,
        "face_value": v.product.face_value,
        "price": v.product.price,
        "status": str(OrderStatus.PENDING_PAYMENT if batch_id else OrderStatus.PROCESSING),
        "failure_reason": None,
        "notify_url": req.notify_url,
        "extra": req.extra,
        "funding": "balance",
        "payment_id": None,
        "group_code": v.group.code,
        "is_probe": False,
        "attempt_count": 0,
        "created_at": now,
        "updated_at": now,
    }


_ORDER_COLUMNS = (
    "id, merchant_id, merchant_order_id, request_hash, batch_id, business_type, product_code, account,"
    " carrier, face_value, price, status, notify_url, extra, funding, group_code, is_probe, attempt_count,"
    " created_at, updated_at, region"
)
_INSERT_ORDER = (
    f"INSERT INTO orders ({_ORDER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,"
    " $14, $15, $16, $17, $18, $19, $20, $21) ON CONFLICT (merchant_id, merchant_order_id) DO NOTHING"
)


async def _insert_order(tx: Tx, row: dict[str, Any]) -> bool:
    """One order row unless the merchant already used its merchant_order_id; True when inserted."""
    values = [row[c.strip()] for c in _ORDER_COLUMNS.split(",")]
    if values[13] is not None:  # extra (JSON)
        values[13] = orjson.dumps(values[13]).decode()
    return await tx.exec(_INSERT_ORDER, *values) == 1


async def hold_price(tx: Tx, merchant_id: str, order_id: str, price: int) -> None:
    """Move the price from available to held; InsufficientBalance rolls the whole intake back."""
    await ledger.post(
        tx,
        L.TransferKind.HOLD,
        order_id,
        L.transfer(L.available_account(merchant_id), L.held_account(merchant_id), price),
        merchant_id=merchant_id,
        order_id=order_id,
    )


async def _replay(tx: Tx, existing: Any, req: OrderRequest) -> tuple[dict[str, Any], bool]:
    if existing.request_hash != req.fingerprint():
        raise IdempotencyConflict(
            f"merchant_order_id {req.merchant_order_id} was already used with a different body",
            {"order_id": existing.id},
        )
    return await render_order(tx, existing), False


async def _by_merchant_order_id(tx: Tx, merchant_id: str, merchant_order_id: str) -> Any | None:
    return await tx.fetchrow(
        "SELECT * FROM orders WHERE merchant_id = $1 AND merchant_order_id = $2",
        merchant_id,
        merchant_order_id,
    )


_INSERT_EVENTS = (
    "INSERT INTO order_events (order_id, attempt_no, kind, detail, at) VALUES ($1, $2, $3, $4, $5)"
)


async def add_event(tx: Tx, order_id: str, attempt_no: int | None, kind: str, detail: dict[str, Any]) -> None:
    """Append to the order's operator timeline; the same fact becomes a log line once committed.

    The transaction's events are written together just before it commits (one round trip for all).
    """
    pending: list[tuple[Any, ...]] | None = tx.pending.get("order_events")
    if pending is None:
        pending = tx.pending["order_events"] = []
        tx.before_commit(lambda: _write_events(tx))
    pending.append((order_id, attempt_no, kind, orjson.dumps(detail).decode(), tx.now))
    fields = {"order_id": order_id, "attempt_no": attempt_no, **detail}
    tx.after_commit(lambda: log.info(kind, **fields))


async def _write_events(tx: Tx) -> None:
    await tx.executemany(_INSERT_EVENTS, tx.pending.pop("order_events", None) or [])


def render_attempt(a: Any) -> dict[str, Any]:
    return {
        "no": a.no,
        "channel": a.channel_code,
        "ref": a.ref,
        "supplier_ref": a.supplier_ref or a.ref,
        "status": a.status,
        "reason": a.reason,
        "started_at": rfc3339(a.started_at),
        "finished_at": rfc3339(a.finished_at),
    }


def render(o: Any, attempts: list[Any]) -> dict[str, Any]:
    def g(key: str) -> Any:
        return o.get(key) if isinstance(o, dict) else getattr(o, key)

    return {
        "order_id": g("id"),
        "merchant_order_id": g("merchant_order_id"),
        "batch_id": g("batch_id"),
        "business_type": g("business_type"),
        "product_code": g("product_code"),
        "account": g("account"),
        "carrier": g("carrier"),
        "region": g("region"),
        "face_value": int(g("face_value")),
        "price": int(g("price")),
        "status": g("status"),
        "failure_reason": g("failure_reason"),
        "attempts": [render_attempt(a) for a in attempts],
        "created_at": rfc3339(g("created_at")),
        "updated_at": rfc3339(g("updated_at")),
        "completed_at": rfc3339(g("completed_at")),
    }


async def attempts_of(tx: Tx, order_ids: list[str]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {oid: [] for oid in order_ids}
    if not order_ids:
        return out
    rows = (
        await tx.conn.execute(
            select(t.attempts).where(t.attempts.c.order_id.in_(order_ids)).order_by(t.attempts.c.no)
        )
    ).all()
    for a in rows:
        out[a.order_id].append(a)
    return out


async def attempts_of_order(tx: Tx, order_id: str) -> list[Any]:
    """One order's attempts in order (the hot path's form of `attempts_of`)."""
    return await tx.fetch("SELECT * FROM attempts WHERE order_id = $1 ORDER BY no", order_id)


async def render_order(tx: Tx, row: Any) -> dict[str, Any]:
    return render(row, (await attempts_of(tx, [row.id]))[row.id])


async def get_order(tx: Tx, order_id: str, merchant_id: str | None = None) -> Any:
    """The order row; NotFound when it does not exist or belongs to another merchant."""
    stmt = select(t.orders).where(t.orders.c.id == order_id)
    if merchant_id is not None:
        stmt = stmt.where(t.orders.c.merchant_id == merchant_id)
    row = (await tx.conn.execute(stmt)).first()
    if row is None:
        raise NotFound(f"order {order_id} not found")
    return row


def _encode_cursor(created_at: float, order_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([created_at, order_id]).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        pad = "=" * (-len(cursor) % 4)
        created_at, order_id = json.loads(base64.urlsafe_b64decode(cursor + pad))
        str(order_id).encode()  # a lone surrogate would fail later, in the database driver
        return float(created_at), str(order_id)
    except (ValueError, TypeError, OverflowError):
        raise InvalidRequest("cursor: not a cursor this API returned") from None


async def list_orders(
    tx: Tx,
    merchant_id: str | None,
    *,
    status: str | None = None,
    merchant_order_id: str | None = None,
    account: str | None = None,
    batch_id: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Newest first, cursor-paged."""
    stmt = select(t.orders)
    if merchant_id is not None:
        stmt = stmt.where(t.orders.c.merchant_id == merchant_id)
    if status:
        stmt = stmt.where(t.orders.c.status == status)
    if merchant_order_id:
        stmt = stmt.where(t.orders.c.merchant_order_id == merchant_order_id)
    if account:
        stmt = stmt.where(t.orders.c.account == account)
    if batch_id:
        stmt = stmt.where(t.orders.c.batch_id == batch_id)
    if cursor:
        c_at, c_id = _decode_cursor(cursor)
        stmt = stmt.where(
            or_(t.orders.c.created_at < c_at, and_(t.orders.c.created_at == c_at, t.orders.c.id < c_id))
        )
    rows = (
        await tx.conn.execute(
            stmt.order_by(t.orders.c.created_at.desc(), t.orders.c.id.desc()).limit(limit + 1)
        )
    ).all()
    page = rows[:limit]
    atts = await attempts_of(tx, [r.id for r in page])
    next_cursor = _encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > limit and page else None
    return {"items": [render(r, atts[r.id]) for r in page], "next_cursor": next_cursor}
