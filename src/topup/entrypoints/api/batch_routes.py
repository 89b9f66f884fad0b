"""Batch API (`/v1/batches`, signed by the merchant) and the sandbox gateway's notify endpoint."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from topup import signing
from topup.bootstrap import Container
from topup.domain.errors import InvalidRequest, Unauthorized
from topup.entrypoints.api.deps import MerchantCtx, container, merchant_auth, request_target
from topup.entrypoints.api.responses import JSONOut
from topup.entrypoints.api.schemas import ErrorOut
from topup.services import batches

router = APIRouter(responses={401: {"model": ErrorOut}, 400: {"model": ErrorOut}, 404: {"model": ErrorOut}})

Merchant = Annotated[MerchantCtx, Depends(merchant_auth)]
Ctr = Annotated[Container, Depends(container)]


async def json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        raise InvalidRequest("body is not valid JSON") from None


@router.post("/v1/batches", status_code=201, responses={413: {"model": ErrorOut}, 409: {"model": ErrorOut}})
async def create_batch(request: Request, merchant: Merchant, c: Ctr) -> JSONOut:
    """Validate every row; valid rows become pending_payment orders. 201 new, 200 replay."""
    body = await json_body(request)
    async with c.db.transaction() as tx:
        snap = await c.cache.get(tx)
        out, created = await batches.create_batch(
            tx, snap, merchant.id, body, allow_private_notify=c.settings.allow_private_notify_urls
        )
    return JSONOut(out, status_code=201 if created else 200)


@router.get("/v1/batches")
async def list_batches(merchant: Merchant, c: Ctr) -> JSONOut:
    async with c.db.transaction() as tx:
        items = await batches.list_batches(tx, merchant.id)
    return JSONOut({"items": items, "next_cursor": None})


@router.get("/v1/batches/{batch_id}")
async def get_batch(batch_id: str, merchant: Merchant, c: Ctr) -> JSONOut:
    async with c.db.transaction() as tx:
        row = await batches.get_batch(tx, batch_id, merchant.id)
        return JSONOut(await batches.render_batch(tx, row, c.payments))


@router.post(
    "/v1/batches/{batch_id}/payment",
    status_code=201,
    responses={402: {"model": ErrorOut}, 409: {"model": ErrorOut}},
)
async def pay_batch(batch_id: str, request: Request, merchant: Merchant, c: Ctr) -> JSONOut:
    """ONE payment for every placed order: balance at once, or a pending sandbox payment with pay_url."""
    body = await json_body(request)
    async with c.db.transaction() as tx:
        out, created = await batches.pay(tx, c.payments, merchant.id, batch_id, body)
    return JSONOut(out, status_code=201 if created else 200)


@router.post("/v1/batches/{batch_id}/cancel", responses={409: {"model": ErrorOut}})
async def cancel_batch(batch_id: str, merchant: Merchant, c: Ctr) -> JSONOut:
    async with c.db.transaction() as tx:
        return JSONOut(await batches.cancel(tx, c.payments, merchant.id, batch_id))


@router.get("/v1/batches/{batch_id}/results.csv", response_class=Response)
async def results_csv(batch_id: str, merchant: Merchant, c: Ctr) -> Response:
    async with c.db.transaction() as tx:
        row = await batches.get_batch(tx, batch_id, merchant.id)
        text = await batches.results_csv(tx, row)
    return csv_response(text, row.id)


def csv_response(text: str, batch_id: str) -> Response:
    return Response(
        text.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{batch_id}-results.csv"'},
    )


@router.post("/sandbox/notify", include_in_schema=False)
async def sandbox_notify(request: Request, c: Ctr) -> JSONOut:
    """The sandbox gateway's asynchronous notify, signed with the gateway secret (SPEC section 0)."""
    payments = c.payments
    raw = await request.body()
    try:
        signing.verify(payments.secret, request.headers, "POST", request_target(request), raw, c.clock.now())
    except signing.SignatureError as e:
        raise Unauthorized(str(e)) from None
    body = await json_body(request)
    async with c.db.transaction() as tx:
        outcome = await payments.apply_notify(tx, body)
    return JSONOut({"received": True, "outcome": outcome})
