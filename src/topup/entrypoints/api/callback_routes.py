"""Supplier callbacks: verify, store idempotently, apply, acknowledge."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError

from topup import signing
from topup.bootstrap import Container
from topup.domain.errors import InvalidRequest, NotFound, Unauthorized
from topup.entrypoints.api.deps import container, request_target
from topup.entrypoints.api.responses import JSONOut
from topup.entrypoints.api.schemas import CallbackIn, ErrorOut

router = APIRouter(tags=["suppliers"])


@router.post(
    "/callbacks/topup-json/{channel}",
    openapi_extra={
        "requestBody": {"content": {"application/json": {"schema": CallbackIn.model_json_schema()}}}
    },
    responses={401: {"model": ErrorOut}, 404: {"model": ErrorOut}, 400: {"model": ErrorOut}},
)
async def topup_json_callback(
    channel: str, request: Request, c: Annotated[Container, Depends(container)]
) -> JSONOut:
    body = await request.body()
    ch = (await c.cache.current(c.db)).channels.get(channel)
    if ch is None:
        # Channels are few and cached; a miss may just be a new channel.
        c.cache.invalidate()
        ch = (await c.cache.current(c.db)).channels.get(channel)
    if ch is None:
        raise NotFound(f"unknown channel {channel}")
    try:
        signing.verify(ch.secret, request.headers, "POST", request_target(request), body, c.clock.now())
    except signing.SignatureError as e:
        raise Unauthorized(str(e)) from None
    try:
        payload = CallbackIn.model_validate(orjson.loads(body))
    except (orjson.JSONDecodeError, ValidationError) as e:
        raise InvalidRequest(f"malformed callback: {str(e)[:200]}") from None
    async with c.db.transaction() as tx:
        outcome = await c.fulfilment.receive_callback(tx, channel, payload.model_dump())
    return JSONOut({"received": True, "outcome": outcome})
