"""The one place that wires settings -> engine -> adapters -> services.

`build(settings, **overrides)` returns a `Container` with every dependency a named, typed field; any
of them can be passed in instead (tests pass a fake clock, supplier or webhook sender). The CLI and
the tests both call it, then `topup.entrypoints.api.app.create_app(container)` (which adds the web
process's own parts: routers, event hub, sessions, metrics) or `topup.entrypoints.worker`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog
from sqlalchemy.exc import DBAPIError

from topup.adapters import http_transport
from topup.adapters.db.engine import Database, migrate
from topup.adapters.notify.http_post import HttpxPoster
from topup.adapters.notify.webhook import HttpWebhookSender, WebhookSender
from topup.adapters.suppliers.registry import Suppliers, build_suppliers
from topup.clock import Clock
from topup.config import Settings
from topup.domain.suppliers import SupplierProtocol
from topup.keys import CredentialBox
from topup.services import batches
from topup.services.balance_watch import BalanceWatch
from topup.services.catalog import ConfigCache
from topup.services.dispatch_slots import ChannelSlots
from topup.services.fulfilment import Fulfilment
from topup.services.jobs import JobHandlers
from topup.services.notifications import Notifier
from topup.services.payments import Payments, sandbox_secret
from topup.services.retention import Retention, RetentionPolicy


@dataclass
class MerchantSecrets:
    """Merchant id -> (secret, notify_url), read at most every `ttl_s` (signature checks are hot)."""

    ttl_s: float = 2.0
    _cache: dict[str, tuple[Any, float]] = field(default_factory=dict)

    def get(self, merchant_id: str) -> Any | None:
        hit = self._cache.get(merchant_id)
        if hit and time.monotonic() - hit[1] < self.ttl_s:
            return hit[0]
        return None

    def put(self, merchant_id: str, row: Any) -> None:
        self._cache[merchant_id] = (row, time.monotonic())

    def invalidate(self, merchant_id: str | None = None) -> None:
        if merchant_id is None:
            self._cache.clear()
        else:
            self._cache.pop(merchant_id, None)


@dataclass
class Container:
    """Everything a platform process uses, built once by `build`."""

    settings: Settings
    clock: Clock
    db: Database
    http: httpx.AsyncClient
    """The shared client: supplier protocols, webhooks to public addresses, the sandbox gateway."""
    suppliers: Suppliers
    box: CredentialBox
    cache: ConfigCache
    merchants: MerchantSecrets
    fulfilment: Fulfilment
    webhook_sender: WebhookSender
    notifier: Notifier
    payments: Payments
    balance_watch: BalanceWatch
    retention: Retention
    job_handlers: JobHandlers
    http_clients: list[httpx.AsyncClient] = field(default_factory=list)
    """The clients `build` made (closed by `close`); a client passed in stays the caller's."""

    async def start(self) -> None:
        """Migrate, waiting up to `startup_wait_s` for a database that is still coming up."""
        deadline = time.monotonic() + self.settings.startup_wait_s
        delay = 0.5
        while True:
            try:
                await migrate(self.db)
                return
            except (OSError, DBAPIError) as e:
                if time.monotonic() + delay > deadline:
                    raise
                structlog.get_logger().warning("database_not_ready", error=str(e)[:200], retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def close(self) -> None:
        await self.fulfilment.drain_inline()
        for client in self.http_clients:
            await client.aclose()
        await self.db.dispose()


def build(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    database: Database | None = None,
    http: httpx.AsyncClient | None = None,
    suppliers: Mapping[str, SupplierProtocol] | None = None,
    webhook_sender: WebhookSender | None = None,
    notifier: Notifier | None = None,
    payments: Payments | None = None,
    fulfilment: Fulfilment | None = None,
) -> Container:
    """Wire everything; a keyword argument replaces that part (`suppliers`: the adapters of some
    protocols, the others stay the built-in ones)."""
    settings = settings or Settings()
    clock = clock or Clock()
    owned: list[httpx.AsyncClient] = []
    db = database or Database(
        settings.database_url,
        clock,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        group_commit=settings.group_commit,
    )
    if http is None:
        # httpx's API over aiohttp's pool: httpcore's pool cost ~2.5 ms of CPU a request under load.
        http = http_transport.client(timeout=30.0)
        owned.append(http)
    registry = build_suppliers(http, clock.now, suppliers)
    box = CredentialBox(settings.secret_key, settings.old_secret_key_list())
    cache = ConfigCache(box=box, suppliers=registry)
    callback_base = settings.callback_base()
    if fulfilment is None:
        slots = ChannelSlots(settings.worker_channel_concurrency, settings.worker_channel_slow_s)
        fulfilment = Fulfilment(
            db=db,
            cache=cache,
            suppliers=registry,
            callback_base=callback_base,
            slots=slots,
            inline_max=settings.inline_dispatch_max,
        )
    if webhook_sender is None:
        # Pinned sends (per-order notify URLs) keep no idle connections: see HttpWebhookSender.
        pinned = httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=0), trust_env=False)
        owned.append(pinned)
        allow_private = settings.allow_private_notify_urls
        webhook_sender = HttpWebhookSender(
            http, now=clock.now, allow_private=allow_private, pinned_http=pinned
        )
    notifier = notifier or Notifier(db, webhook_sender, retry_scale=settings.notify_retry_scale)
    payments = payments or Payments(
        db=db,
        http=HttpxPoster(http),
        public_base=callback_base,
        secret=sandbox_secret(settings.secret_key, settings.sandbox_secret),
        ttl_s=settings.sandbox_payment_ttl_s,
        now=clock.now,
    )
    _connect_batches(fulfilment, payments)
    balance_watch = BalanceWatch(db, cache, registry, callback_base)
    retention = Retention(db, retention_policy(settings), settings.prune_every_s)
    handlers = JobHandlers(
        route=fulfilment.handle_route,
        deadline=fulfilment.handle_deadline,
        notify=notifier.handle,
        balance_check=balance_watch.handle,
        payment_expire=payments.handle_expire_job,
        sandbox_notify=payments.handle_gateway_notify_job,
        prune=retention.handle,
    )
    return Container(
        settings=settings,
        clock=clock,
        db=db,
        http=http,
        suppliers=registry,
        box=box,
        cache=cache,
        merchants=MerchantSecrets(),
        fulfilment=fulfilment,
        webhook_sender=webhook_sender,
        notifier=notifier,
        payments=payments,
        balance_watch=balance_watch,
        retention=retention,
        job_handlers=handlers,
        http_clients=owned,
    )


def retention_policy(settings: Settings) -> RetentionPolicy:
    return RetentionPolicy(
        settings.retention_days, settings.timeline_retention_days, settings.prune_batch_size
    )


def _connect_batches(fulfilment: Fulfilment, payments: Payments) -> None:
    """A batch follows its payment (settled) and its orders (final); a cancelled order's final hooks
    run when payments cancels it, all but the batch's own (payments updates the batch itself)."""
    payments.on_settled.append(batches.on_payment_settled)
    if batches.on_order_final not in fulfilment.final_hooks:
        fulfilment.final_hooks.append(batches.on_order_final)
    payments.order_final_hooks = lambda: [
        h for h in fulfilment.final_hooks if h is not batches.on_order_final
    ]
