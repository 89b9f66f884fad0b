"""The simulator's HTTP face: topup-json under `/sim/{channel}` plus a `/control` API for tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
from fastapi import FastAPI, Request, Response
from pydantic import ValidationError

from topup.clock import Clock
from topup.signing import SignatureError, verify

from .behaviour import ChannelBehaviour
from .engine import Channel, Simulator


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _error(status: int, code: str, message: str, details: Any = None) -> Response:
    return _json({"error": {"code": code, "message": message, "details": details}}, status)


def _target(request: Request) -> str:
    """The request target as the client sent it (and signed it)."""
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string") or b""
    return (raw_path + (b"?" + query if query else b"")).decode("latin-1")


def _parse_dispatch(body: bytes) -> dict[str, Any] | str:
    """The dispatch payload, or a message saying what is wrong with it."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "body is not JSON"
    if not isinstance(payload, dict):
        return "body is not a JSON object"
    ref, callback_url = payload.get("ref"), payload.get("callback_url")
    if not isinstance(ref, str) or not ref:
        return "ref is required"
    if not isinstance(callback_url, str):
        return "callback_url is required"
    try:
        scheme = httpx.URL(callback_url).scheme
    except httpx.InvalidURL:
        scheme = ""
    if scheme not in ("http", "https"):
        return "callback_url must be an http(s) URL"
    return payload


def create_app(
    config: dict[str, Any] | None = None,
    clock: Clock | None = None,
    callback_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """A simulator serving every channel of `config`; the engine is at `app.state.simulator`."""
    clock = clock or Clock()
    sim = Simulator(config or {}, clock.now, callback_transport)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await sim.start()
        try:
            yield
        finally:
            await sim.stop()

    app = FastAPI(title="topup-json supplier simulator", lifespan=lifespan)
    app.state.simulator = sim

    async def authenticated(request: Request, code: str) -> tuple[Channel, bytes] | Response:
        channel = sim.channels.get(code)
        if channel is None:
            return _error(404, "not_found", f"no simulated channel {code!r}")
        body = await request.body()
        try:
            secret, target = channel.behaviour.secret, _target(request)
            verify(secret, request.headers, request.method, target, body, clock.now())
        except SignatureError as exc:
            return _error(401, "unauthorized", str(exc))
        return channel, body

    @app.post("/sim/{code}/orders")
    async def dispatch(code: str, request: Request) -> Response:
        checked = await authenticated(request, code)
        if isinstance(checked, Response):
            return checked
        channel, body = checked
        payload = _parse_dispatch(body)
        if isinstance(payload, str):
            return _error(400, "invalid_request", payload)
        channel.dispatches[payload["ref"]] += 1
        behaviour = channel.behaviour
        delay = behaviour.reply_latency_s + behaviour.hang_s
        if behaviour.http_status is not None and behaviour.http_status != 200:
            # A failing front end: the order is not taken, so a later query says not_found.
            await asyncio.sleep(delay)
            return _error(behaviour.http_status, "simulated_http_status", "simulated failure reply")
        order, is_new = sim.take_order(channel, payload)
        if is_new:
            await sim.start_callbacks(channel, order)
        await asyncio.sleep(delay)
        if behaviour.malformed_reply:
            return Response(b"<html>502 upstream gibberish", status_code=200, media_type="text/html")
        return _json(order.reply)

    @app.get("/sim/{code}/orders/{ref:path}")
    async def query(code: str, ref: str, request: Request) -> Response:
        checked = await authenticated(request, code)
        if isinstance(checked, Response):
            return checked
        channel, _ = checked
        return _json(sim.answer_query(channel, ref))

    def describe(channel: Channel) -> dict[str, Any]:
        return {
            "code": channel.code,
            "behaviour": channel.behaviour.model_dump(),
            "orders": len(channel.orders),
        }

    @app.get("/control/channels")
    async def list_channels() -> Response:
        return _json({"items": [describe(c) for c in sim.channels.values()], "next_cursor": None})

    @app.get("/control/channels/{code}")
    async def get_channel(code: str) -> Response:
        channel = sim.channels.get(code)
        if channel is None:
            return _error(404, "not_found", f"no simulated channel {code!r}")
        return _json(describe(channel))

    @app.put("/control/channels/{code}")
    async def put_channel(code: str, request: Request) -> Response:
        """Create a channel or change some of its behaviour fields (fields not given are kept)."""
        try:
            patch = orjson.loads(await request.body() or b"{}")
        except orjson.JSONDecodeError:
            return _error(400, "invalid_request", "body is not JSON")
        if not isinstance(patch, dict):
            return _error(400, "invalid_request", "body is not a JSON object")
        current = sim.channels.get(code)
        base = current.behaviour if current else ChannelBehaviour.model_validate(sim.defaults)
        try:
            behaviour = base.merged(patch)
        except ValidationError as exc:
            details = orjson.loads(exc.json(include_url=False, include_input=False))
            return _error(422, "invalid_request", "invalid behaviour", details)
        created = sim.configure(code, behaviour)
        return _json(describe(sim.channels[code]), 201 if created else 200)

    @app.get("/control/stats")
    async def stats() -> Response:
        return _json({"channels": {code: c.stats() for code, c in sim.channels.items()}})

    @app.get("/control/orders/{code}/{ref:path}")
    async def get_order(code: str, ref: str) -> Response:
        channel = sim.channels.get(code)
        order = channel.orders.get(ref) if channel else None
        if channel is None or order is None:
            return _error(404, "not_found", f"no order {ref!r} on {code!r}")
        return _json(
            {
                "ref": order.ref,
                "supplier_order_id": order.supplier_order_id,
                "account": order.account,
                "outcome": order.outcome.value,
                "dispatches": channel.dispatches[ref],
                "callbacks": order.callbacks_sent,
            }
        )

    @app.post("/control/reset")
    async def reset() -> Response:
        await sim.reset()
        return _json({"reset": True})

    return app
