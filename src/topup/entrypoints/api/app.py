"""FastAPI app factory."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from topup.bootstrap import Container
from topup.entrypoints import console, metrics, stream, web
from topup.entrypoints.api import (
    admin_routes,
    batch_routes,
    callback_routes,
    channel_routes,
    errors,
    merchant_routes,
    money_routes,
    notification_routes,
    security_routes,
    supplier_routes,
)
from topup.entrypoints.api.hot_routes import HotRoutes
from topup.entrypoints.console.auth import ConsoleAuth
from topup.entrypoints.site import Site
from topup.entrypoints.stream.hub import EventHub
from topup.entrypoints.web.auth import WebAuth
from topup.entrypoints.worker import start_background

MAX_BODY_BYTES = 4 * 1024 * 1024
# Supplier statements (SPEC 8) run to 100,000s of rows: their uploads may be larger.
LARGE_BODIES = re.compile(r"^/(admin/v1/channels/[^/]+/statements|console/money/statements)$")
MAX_STATEMENT_BYTES = 64 * 1024 * 1024


class BodyLimit:
    """Reject oversized bodies early (before they are read into memory)."""

    def __init__(self, app: Any, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            limit = MAX_STATEMENT_BYTES if LARGE_BODIES.match(scope.get("path", "")) else self.limit
            for k, v in scope.get("headers", []):
                if k == b"content-length" and (not v.isdigit() or int(v) > limit):
                    await _reject(send, limit)
                    return
            received = 0
            too_large = started = False

            async def limited_receive() -> Any:
                nonlocal received, too_large
                msg = await receive()
                if msg["type"] == "http.request":
                    received += len(msg.get("body", b""))
                    if received > limit:
                        too_large = True
                        raise _TooLarge()
                return msg

            async def guarded_send(msg: Any) -> None:
                nonlocal started
                if too_large:
                    # The app may have caught the cut-off (FastAPI turns it into a 400): answer 413 anyway.
                    if msg["type"] == "http.response.start" and not started:
                        started = True
                        await _reject(send, limit)
                    return
                started = started or msg["type"] == "http.response.start"
                await send(msg)

            try:
                await self.app(scope, limited_receive, guarded_send)
            except _TooLarge:
                if not started:
                    await _reject(send, limit)
            return
        await self.app(scope, receive, send)


class _TooLarge(Exception):
    pass


async def _reject(send: Any, limit: int) -> None:
    import orjson

    body = orjson.dumps(
        {"error": {"code": "invalid_request", "message": f"body larger than {limit} bytes", "details": None}}
    )
    await send(
        {"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})


def build_site(c: Container) -> Site:
    return Site(
        event_hub=EventHub(c.db),
        web_auth=WebAuth.for_container(c),
        console_auth=ConsoleAuth.for_container(c),
        metrics=metrics.Metrics.create(),
    )


def create_app(container: Container, *, worker: bool | None = None, site: Site | None = None) -> FastAPI:
    """The API, the web pages, the console, the WebSocket and (unless `worker` is False, or
    `settings.run_worker` is when it is None) the background worker in one app.

    Starting the app migrates, starts the worker, the event hub and the balance checks; stopping it
    stops them and closes the container.
    """
    run_worker = container.settings.run_worker if worker is None else worker
    site = site or build_site(container)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await container.start()
        running = await start_background(container, worker=run_worker)
        try:
            await site.event_hub.start()
            try:
                yield
            finally:
                await site.event_hub.aclose()
        finally:
            if running is not None:
                await running.aclose()
            await container.close()

    app = FastAPI(
        title="Topup Gateway",
        version="0.1.0",
        lifespan=lifespan,
        description="Prepaid top-up orders with supplier routing and failover. See SPEC.md for contracts.",
    )
    app.state.container = container
    app.state.site = site
    errors.install(app)
    app.include_router(merchant_routes.router)
    app.include_router(admin_routes.router)
    app.include_router(channel_routes.router)
    app.include_router(supplier_routes.router)
    app.include_router(security_routes.router)
    app.include_router(money_routes.router)
    app.include_router(callback_routes.router)
    for router in notification_routes.routers():
        app.include_router(router)
    app.include_router(stream.router)
    app.include_router(batch_routes.router)
    for router in [*web.routers(), *console.routers()]:
        app.include_router(router)
    app.include_router(metrics.router)
    # Added first, so BodyLimit (added last, the outer one) still bounds what the hot routes read.
    app.add_middleware(HotRoutes)
    app.add_middleware(BodyLimit)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI documents 422 for validation errors; errors.py answers 400 with the SPEC error body."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    error = {
        "description": "Invalid request",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
    }
    for item in schema.get("paths", {}).values():
        for op in item.values():
            responses = op.get("responses", {}) if isinstance(op, dict) else {}
            if responses.pop("422", None) is not None:
                responses.setdefault("400", error)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    if "ErrorOut" not in components:
        from topup.entrypoints.api.schemas import ErrorOut

        defs = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(defs.pop("$defs", {}))
        components["ErrorOut"] = defs
    app.openapi_schema = schema
    return schema
