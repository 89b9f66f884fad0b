"""Webhook deliveries for operators (`/admin/v1/deliveries`) and the merchant's event feed (`/v1/events`)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from topup.bootstrap import Container
from topup.entrypoints.api.deps import MerchantCtx, admin_auth, container, merchant_auth
from topup.entrypoints.api.responses import JSONOut
from topup.entrypoints.api.roles import AsOperator, Role, requires
from topup.entrypoints.api.schemas import ErrorOut
from topup.services import audit, notifications

Ctr = Annotated[Container, Depends(container)]
EventId = Annotated[str | None, Query(max_length=64)]


class DeliveryFilter(StrEnum):
    pending = "pending"
    delivered = "delivered"
    gave_up = "gave_up"


admin_router = APIRouter(
    prefix="/admin/v1",
    dependencies=[Depends(admin_auth)],
    responses={401: {"model": ErrorOut}, 400: {"model": ErrorOut}},
    tags=["notifications"],
)
merchant_router = APIRouter(
    prefix="/v1", responses={401: {"model": ErrorOut}, 400: {"model": ErrorOut}}, tags=["notifications"]
)


@admin_router.get("/deliveries", dependencies=[requires(Role.VIEWER)])
async def list_deliveries(
    c: Ctr,
    status: DeliveryFilter | None = None,
    merchant_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: EventId = None,
) -> JSONOut:
    """Webhook deliveries (oldest first) with their last attempt; `status=pending|gave_up|delivered`."""
    async with c.db.transaction() as tx:
        page = await notifications.list_deliveries(
            tx, status=status.value if status else None, merchant_id=merchant_id, limit=limit, cursor=cursor
        )
    return JSONOut(page)


@admin_router.get(
    "/deliveries/{event_id}", responses={404: {"model": ErrorOut}}, dependencies=[requires(Role.VIEWER)]
)
async def get_delivery(event_id: str, c: Ctr) -> JSONOut:
    async with c.db.transaction() as tx:
        return JSONOut(await notifications.get_delivery(tx, event_id))


@admin_router.post("/deliveries/{event_id}/retry", responses={404: {"model": ErrorOut}})
async def retry_delivery(event_id: str, c: Ctr, actor: AsOperator) -> JSONOut:
    """Queue the delivery to run now, with a fresh 25 h retry window."""
    async with c.db.transaction() as tx:
        before = await notifications.get_delivery(tx, event_id)
        out = await notifications.requeue(tx, event_id)
        await audit.record(
            tx,
            actor,
            "delivery.retry",
            f"delivery:{event_id}",
            {"status": before.get("status")},
            {"status": "pending"},
        )
    return JSONOut(out)


@merchant_router.get("/events", responses={404: {"model": ErrorOut}})
async def list_events(
    merchant: Annotated[MerchantCtx, Depends(merchant_auth)],
    c: Ctr,
    after: EventId = None,
    cursor: EventId = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> JSONOut:
    """This merchant's final order events in order, after `after` (or `cursor`): for reconciliation."""
    async with c.db.transaction() as tx:
        page = await notifications.list_events(tx, merchant.id, after or cursor, limit)
    return JSONOut(page)


def routers() -> list[APIRouter]:
    return [admin_router, merchant_router]
