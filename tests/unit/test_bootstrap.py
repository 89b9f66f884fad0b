"""The composition root: every part overridable, the app complete right after `build`."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from fastapi import routing

from topup import bootstrap
from topup.adapters.notify.webhook import Webhook, WebhookResult
from topup.adapters.suppliers.fake import FakeSupplier
from topup.clock import FakeClock
from topup.config import Settings
from topup.entrypoints.api.app import create_app
from topup.entrypoints.worker import start_background


@dataclass
class NoSender:
    sent: int = 0

    async def send(self, hook: Webhook) -> WebhookResult:
        self.sent += 1
        return WebhookResult(200, 1.0, None)


def settings() -> Settings:
    return Settings(database_url="sqlite:///:memory:", admin_token="t" * 24)


async def test_overrides_are_used_and_the_handlers_wired_to_them() -> None:
    clock, sender, fake = FakeClock(), NoSender(), FakeSupplier()
    http = httpx.AsyncClient()
    c = bootstrap.build(
        settings(), clock=clock, http=http, webhook_sender=sender, suppliers={"topup-json": fake}
    )
    try:
        assert c.clock is clock and c.http is http and c.webhook_sender is sender
        assert c.notifier.sender is sender and c.suppliers["topup-json"] is fake
        assert c.job_handlers.notify == c.notifier.handle
        assert c.job_handlers.route == c.fulfilment.handle_route
        assert c.job_handlers.balance_check == c.balance_watch.handle
        assert c.job_handlers.payment_expire == c.payments.handle_expire_job
        await c.close()
        assert not http.is_closed, "a client passed in stays the caller's to close"
    finally:
        await http.aclose()


async def test_the_app_includes_every_router_right_after_build() -> None:
    c = bootstrap.build(settings())
    try:
        routes = create_app(c).routes
        # FastAPI >= 0.16x keeps included routers as nodes; its own helper flattens them.
        flatten = getattr(routing, "_iter_included_route_candidates", None)
        flat = list(flatten(routes)) if flatten else list(routes)
        paths = {r.path for r in flat if isinstance(r, routing.APIRoute | routing.APIWebSocketRoute)}
        for path in ("/v1/orders", "/v1/batches", "/v1/stream", "/metrics", "/console", "/login", "/healthz"):
            assert path in paths, path
    finally:
        await c.close()


async def test_start_background_queues_the_balance_checks_with_or_without_the_worker() -> None:
    c = bootstrap.build(settings())
    calls: list[str] = []

    class Watch:
        async def ensure_jobs(self) -> int:
            calls.append("ensure_jobs")
            return 0

    class Retention:
        async def ensure_job(self) -> bool:
            calls.append("ensure_prune_job")
            return False

    c.balance_watch = Watch()  # type: ignore[assignment]
    c.retention = Retention()  # type: ignore[assignment]
    try:
        assert await start_background(c, worker=False) is None
        assert calls == ["ensure_jobs", "ensure_prune_job"]
    finally:
        await c.close()
