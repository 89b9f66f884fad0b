"""Order intake and reads: idempotent placement, price hold, rendering the order object."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import structlog

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
from topup.domain.orders import Attempt, Order, OrderStatus
from topup.domain.routing import Destination, rank
from topup.domain.urls import UnsafeUrl, check_notify_url
from topup.ids import new_id
from topup.services import jobs, ledger
from topup.services.catalog import Group, Product, Snapshot
from topup.services.order_views import OrderPage, OrderView, render
from topup.services.ports.orders import OrderFilter
from topup.services.uow import UnitOfWork

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


RouteNow = Callable[[UnitOfWork, Order], Awaitable[Attempt | None]]
"""Store a new order's first attempt in its intake unit of work (the attempt); None leaves the order
to a route job."""


async def place_order(
    uow: UnitOfWork,
    snapshot: Snapshot,
    merchant_id: str,
    req: OrderRequest,
    *,
    default_notify_url: str | None = None,
    batch_id: str | None = None,
    allow_private_notify: bool = False,
    route: RouteNow | None = None,
) -> tuple[OrderView, bool]:
    """Create and pay (hold) an order, or return the existing one for a replay. (order, created).

    A merchant-supplied `notify_url` must be public unless `allow_private_notify` (a setting) says so.
    A new order outside a batch is routed by `route` in this same unit of work when it can be (the
    inline first dispatch, `services.fulfilment.inline`), otherwise by a queued route job.
    """
    if req.notify_url is not None:
        # A malformed body is refused before the idempotency check (SPEC section 0).
        try:
            check_notify_url(req.notify_url, allow_private=allow_private_notify)
        except UnsafeUrl as e:
            raise InvalidRequest(f"notify_url: {e.reason}", {"field": "notify_url"}) from None
    existing = await uow.orders.by_merchant_order_id(merchant_id, req.merchant_order_id)
    if existing is not None:
        return await _replay(uow, existing, req)
    v = resolve(snapshot, req.product_code, req.account)
    order = new_order(uow.now, merchant_id, req, v, batch_id)
    order_id = order.id
    in_batch = batch_id is not None
    if not await uow.orders.insert(order):
        # A concurrent request with the same merchant_order_id won the insert.
        existing = await uow.orders.by_merchant_order_id(merchant_id, req.merchant_order_id)
        assert existing is not None
        return await _replay(uow, existing, req)
    if not in_batch:
        await hold_price(uow, merchant_id, order_id, v.product.price)
    await add_event(uow, order_id, None, "created", {"price": v.product.price, "group": v.group.code})
    first = await route(uow, order) if route is not None and not in_batch else None
    if first is None and not in_batch:
        await jobs.enqueue(uow, jobs.RoutePayload(order_id))
    return render(order, [first] if first is not None else []), True


def new_order(
    now: float, merchant_id: str, req: OrderRequest, v: Validated, batch_id: str | None = None
) -> Order:
    """A new order (a batch row's waits for its payment: `pending_payment`)."""
    return Order(
        id=new_id("ord", now),
        merchant_id=merchant_id,
        merchant_order_id=req.merchant_order_id,
        request_hash=req.fingerprint(),
        batch_id=batch_id,
        business_type=v.product.business_type,
        product_code=v.product.code,
        account=v.account,
        carrier=v.brand,
        region=v.region,
        face_value=v.product.face_value,
        price=v.product.price,
        status=OrderStatus.PENDING_PAYMENT if batch_id else OrderStatus.PROCESSING,
        failure_reason=None,
        notify_url=req.notify_url,
        extra=req.extra,
        funding="balance",
        payment_id=None,
        group_code=v.group.code,
        is_probe=False,
        attempt_count=0,
        created_at=now,
        updated_at=now,
    )


async def hold_price(uow: UnitOfWork, merchant_id: str, order_id: str, price: int) -> None:
    """Move the price from available to held; InsufficientBalance rolls the whole intake back."""
    await ledger.post(
        uow,
        L.TransferKind.HOLD,
        order_id,
        L.transfer(L.available_account(merchant_id), L.held_account(merchant_id), price),
        merchant_id=merchant_id,
        order_id=order_id,
    )


async def _replay(uow: UnitOfWork, existing: Order, req: OrderRequest) -> tuple[OrderView, bool]:
    if existing.request_hash != req.fingerprint():
        raise IdempotencyConflict(
            f"merchant_order_id {req.merchant_order_id} was already used with a different body",
            {"order_id": existing.id},
        )
    return await render_order(uow, existing), False


async def add_event(
    uow: UnitOfWork, order_id: str, attempt_no: int | None, kind: str, detail: dict[str, Any]
) -> None:
    """Append to the order's operator timeline; the same fact becomes a log line once committed.

    The unit of work's events are written together just before it commits (one round trip for all).
    """
    uow.orders.add_event(order_id, attempt_no, kind, detail)
    fields = {"order_id": order_id, "attempt_no": attempt_no, **detail}
    uow.after_commit(lambda: log.info(kind, **fields))


async def attempts_of(uow: UnitOfWork, order_ids: list[str]) -> dict[str, list[Attempt]]:
    return await uow.orders.attempts_of(order_ids)


async def attempts_of_order(uow: UnitOfWork, order_id: str) -> list[Attempt]:
    """One order's attempts in order (the hot path's form of `attempts_of`)."""
    return await uow.orders.attempts(order_id)


async def render_order(uow: UnitOfWork, order: Order) -> OrderView:
    return render(order, (await uow.orders.attempts_of([order.id]))[order.id])


async def get_order(uow: UnitOfWork, order_id: str, merchant_id: str | None = None) -> Order:
    """The order; NotFound when it does not exist or belongs to another merchant."""
    order = await uow.orders.get(order_id, merchant_id)
    if order is None:
        raise NotFound(f"order {order_id} not found")
    return order


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
    uow: UnitOfWork,
    merchant_id: str | None,
    *,
    status: str | None = None,
    merchant_order_id: str | None = None,
    account: str | None = None,
    batch_id: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> OrderPage:
    """Newest first, cursor-paged."""
    where = OrderFilter(merchant_id, status, merchant_order_id, account, batch_id)
    before = _decode_cursor(cursor) if cursor else None
    rows = await uow.orders.page(where, limit + 1, before)
    page = rows[:limit]
    atts = await uow.orders.attempts_of([r.id for r in page])
    next_cursor = _encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > limit and page else None
    return {"items": [render(r, atts[r.id]) for r in page], "next_cursor": next_cursor}
