"""Merchant API (`/v1`, signed)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from topup.bootstrap import Container
from topup.domain.orders import OrderStatus
from topup.entrypoints.api.deps import MerchantCtx, container, merchant_auth
from topup.entrypoints.api.responses import JSONOut
from topup.entrypoints.api.schemas import BalanceOut, ErrorOut, OrderIn, OrderList, OrderOut, ProductList
from topup.services import ledger, orders
from topup.services.order_views import OrderView
from topup.services.orders import OrderRequest

router = APIRouter(prefix="/v1", responses={401: {"model": ErrorOut}, 400: {"model": ErrorOut}})


async def place(c: Container, merchant: MerchantCtx, body: OrderIn) -> tuple[OrderView, bool]:
    """Shared by POST /v1/orders and the WebSocket."""
    req = OrderRequest(body.merchant_order_id, body.product_code, body.account, body.notify_url, body.extra)
    # Grouped with other requests at that moment (group commit) and answered after the commit; an
    # intake that fails (balance, validation) gets its own outcome, as if alone. The first dispatch
    # leaves from this process right after the commit when it can (services/fulfilment/inline.py).
    return await c.fulfilment.accept(
        merchant.id, req, allow_private_notify=c.settings.allow_private_notify_urls
    )


@router.post(
    "/orders",
    status_code=201,
    response_model=OrderOut,
    responses={200: {"model": OrderOut}, 402: {"model": ErrorOut}, 409: {"model": ErrorOut}},
)
async def create_order(
    body: OrderIn,
    merchant: Annotated[MerchantCtx, Depends(merchant_auth)],
    c: Annotated[Container, Depends(container)],
) -> JSONOut:
    # Hot path: the typed OrderView goes out with orjson, skipping a second validation pass; OrderOut
    # documents the same fields and the API fuzzer (tests/integration/test_fuzz_api.py) checks they agree.
    order, created = await place(c, merchant, body)
    return JSONOut(order, status_code=201 if created else 200)


@router.get("/orders/{order_id}", response_model=OrderOut, responses={404: {"model": ErrorOut}})
async def get_order(
    order_id: str,
    merchant: Annotated[MerchantCtx, Depends(merchant_auth)],
    c: Annotated[Container, Depends(container)],
) -> JSONOut:
    # Polled by merchants: the OrderView with orjson, as for POST /v1/orders.
    async with c.db.transaction() as tx:
        row = await orders.get_order(tx, order_id, merchant.id)
        return JSONOut(await orders.render_order(tx, row))


@router.get("/orders", response_model=OrderList)
async def list_orders(
    merchant: Annotated[MerchantCtx, Depends(merchant_auth)],
    c: Annotated[Container, Depends(container)],
    merchant_order_id: Annotated[str | None, Query(max_length=64)] = None,
    status: OrderStatus | None = None,
    batch_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> JSONOut:
    # Up to 200 orders a page: OrderViews with orjson, as for one order.
    async with c.db.transaction() as tx:
        page = await orders.list_orders(
            tx,
            merchant.id,
            status=status,
            merchant_order_id=merchant_order_id,
            batch_id=batch_id,
            limit=limit,
            cursor=cursor,
        )
    return JSONOut(page)


@router.get("/products", response_model=ProductList)
async def list_products(
    _merchant: Annotated[MerchantCtx, Depends(merchant_auth)],
    c: Annotated[Container, Depends(container)],
) -> dict[str, Any]:
    async with c.db.transaction() as tx:
        snap = await c.cache.get(tx)
    items = [p.public() for p in sorted(snap.products.values(), key=lambda p: p.code) if p.enabled]
    return {"items": items, "next_cursor": None}


@router.get("/balance", response_model=BalanceOut)
async def get_balance(
    merchant: Annotated[MerchantCtx, Depends(merchant_auth)],
    c: Annotated[Container, Depends(container)],
) -> dict[str, Any]:
    async with c.db.transaction() as tx:
        return await ledger.balance(tx, merchant.id)
