"""The simulator's HTTP face: topup-json under `/sim/{channel}` plus a `/control` API for tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
from fastapi import FastAPI, Request, Response
from pydantic import ValidationError

from topup.clock import Clock

from .behaviour import ChannelBehaviour
from .engine import Channel, Simulator
from .modes import modes


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _error(status: int, code: str, message: str, details: Any = None) -> Response:
    return _json({"error": {"code": code, "message": message, "details": details}}, status)


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

    for mode in modes().values():
        mode.register(app, sim, clock.now)

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
