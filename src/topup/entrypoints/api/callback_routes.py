"""Supplier callbacks at `POST /callbacks/{protocol}/{channel}`: verify, store idempotently, apply,
acknowledge in the protocol's own words (SPEC sections 2 and 6)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from topup.bootstrap import Container
from topup.domain.errors import InvalidRequest, NotFound, Unauthorized
from topup.domain.suppliers import CallbackRefused, CallbackRequest
from topup.entrypoints.api.deps import container, request_target
from topup.entrypoints.api.schemas import CallbackIn, ErrorOut

router = APIRouter(tags=["suppliers"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut},
    404: {"model": ErrorOut},
    400: {"model": ErrorOut},
}


async def receive_callback(protocol: str, channel: str, request: Request, c: Container) -> Response:
    """Also answered by `hot_routes` in front of the router, with the same result."""
    body = await request.body()
    ch = (await c.cache.current(c.db)).channels.get(channel)
    if ch is None:
        # Channels are few and cached; a miss may just be a new channel.
        c.cache.invalidate()
        ch = (await c.cache.current(c.db)).channels.get(channel)
    adapter = c.suppliers.get(protocol)
    if ch is None or adapter is None or ch.protocol != protocol or not adapter.has_callbacks:
        raise NotFound(f"unknown {protocol} channel {channel}")
    incoming = CallbackRequest(
        "POST", request_target(request), {k.lower(): v for k, v in request.headers.items()}, body
    )
    try:
        data = adapter.parse_callback(ch.access(c.settings.callback_base()), incoming, c.clock.now())
    except CallbackRefused as e:
        if e.kind == "unauthorized":
            raise Unauthorized(e.message) from None
        raise InvalidRequest(e.message[:300]) from None
    # Stored and applied in a transaction shared with other callbacks at that moment (group commit),
    # acknowledged only once it committed.
    outcome = await c.db.run_grouped(lambda tx: c.fulfilment.receive_callback(tx, channel, data))
    ack = adapter.ack(data, outcome)
    return Response(ack.body, status_code=ack.status_code, media_type=ack.media_type)


@router.post(
    "/callbacks/topup-json/{channel}",
    openapi_extra={
        "requestBody": {"content": {"application/json": {"schema": CallbackIn.model_json_schema()}}}
    },
    responses=_ERRORS,
)
async def topup_json_callback(
    channel: str, request: Request, c: Annotated[Container, Depends(container)]
) -> Response:
    return await receive_callback("topup-json", channel, request, c)


@router.post("/callbacks/{protocol}/{channel}", responses=_ERRORS)
async def supplier_callback(
    protocol: str, channel: str, request: Request, c: Annotated[Container, Depends(container)]
) -> Response:
    return await receive_callback(protocol, channel, request, c)
