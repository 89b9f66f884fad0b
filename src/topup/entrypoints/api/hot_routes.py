"""Lean handlers for the two requests every order makes: `POST /v1/orders` and a supplier's
`POST /callbacks/{protocol}/{channel}`.

They run as middleware in front of FastAPI's exception middleware, router and dependency solving,
which cost more CPU per request than the work of these two routes (`docs/performance.md`, "Lean hot
routes"). The behaviour is the routes': the same services, the same answers, and errors rendered by
`errors.response_for` as the app's handlers render them. A request these handlers do not accept as
well formed (a body that is not a JSON object of the right shape, an unusual content type) is handed to
the app with its body replayed, before anything was written, so every error answer stays FastAPI's.
The FastAPI routes stay registered: they document the API (OpenAPI) and answer those handed-on requests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pydantic
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from topup.bootstrap import Container
from topup.entrypoints.api import errors
from topup.entrypoints.api.callback_routes import receive_callback
from topup.entrypoints.api.deps import merchant_auth
from topup.entrypoints.api.merchant_routes import place
from topup.entrypoints.api.responses import JSONOut
from topup.entrypoints.api.schemas import OrderIn

CALLBACK = re.compile(r"^/callbacks/([^/]+)/([^/]+)$")
ORDERS = "/v1/orders"

# None: not handled here, the app answers (the body is replayed to it).
Handler = Callable[[Request, Container], Awaitable[Response | None]]


class HotRoutes:
    """ASGI middleware: the hot routes answered here, everything else passed to the app untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = _handler(scope) if scope["type"] == "http" and scope["method"] == "POST" else None
        if handler is None:
            await self.app(scope, receive, send)
            return
        # The Request keeps the body it read, for the signature check, the handler and a replay.
        request = Request(scope, receive)
        container: Container = scope["app"].state.container
        try:
            response = await handler(request, container)
        except Exception as exc:
            response = errors.response_for(exc)
        if response is None:
            await self.app(scope, _replay(await request.body(), receive), send)
            return
        await response(scope, receive, send)


def _handler(scope: Scope) -> Handler | None:
    path: str = scope["path"]
    if path == ORDERS:
        return _create_order
    match = CALLBACK.match(path)
    if match is None:
        return None
    protocol, channel = match.groups()

    async def callback(request: Request, c: Container) -> Response:
        return await receive_callback(protocol, channel, request, c)

    return callback


async def _create_order(request: Request, c: Container) -> Response | None:
    # The signature first, as in the route (SPEC section 0: a 401 wins over a malformed body).
    merchant = await merchant_auth(request)
    order_in = _order_in(request, await request.body())
    if order_in is None:
        return None
    order, created = await place(c, merchant, order_in)
    return JSONOut(order, status_code=201 if created else 200)


def _order_in(request: Request, body: bytes) -> OrderIn | None:
    """The body as FastAPI would validate it, or None for anything that is not plainly valid."""
    content_type = request.headers.get("content-type")
    if content_type is not None and content_type.split(";", 1)[0].strip().lower() != "application/json":
        return None
    # The standard parser, as FastAPI's: orjson reads an integer beyond 64 bits as a float, which
    # `extra`'s check would then let through where the route refuses it.
    try:
        data: Any = json.loads(body)
    except ValueError:  # not JSON, or not UTF-8
        return None
    if not isinstance(data, dict):
        return None
    try:
        return OrderIn.model_validate(data)
    except pydantic.ValidationError:
        return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives `body` once, then whatever the connection sends (a disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
