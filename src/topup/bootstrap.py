"""The one place that wires settings -> engine -> adapters -> services."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog
from sqlalchemy.exc import DBAPIError

from topup.adapters.db.engine import Database, migrate
from topup.adapters.suppliers.registry import Suppliers, build_suppliers
from topup.clock import Clock
from topup.config import Settings
from topup.domain.suppliers import SupplierProtocol
from topup.keys import CredentialBox
from topup.services.catalog import ConfigCache
from topup.services.dispatch_slots import ChannelSlots
from topup.services.fulfilment import Fulfilment


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
    settings: Settings
    clock: Clock
    db: Database
    cache: ConfigCache
    http: httpx.AsyncClient
    suppliers: Suppliers
    box: CredentialBox
    fulfilment: Fulfilment
    merchants: MerchantSecrets
    extras: dict[str, Any] = field(default_factory=dict)

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
        await self.http.aclose()
        for client in self.extras.get("http_clients", []):
            await client.aclose()
        await self.db.dispose()


def build(
    settings: Settings | None = None,
    clock: Clock | None = None,
    *,
    suppliers: Mapping[str, SupplierProtocol] | None = None,
) -> Container:
    """Wire everything; `suppliers` replaces the adapters of some protocols (tests pass fakes)."""
    settings = settings or Settings()
    clock = clock or Clock()
    db = Database(
        settings.database_url, clock, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow
    )
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=100)
    http = httpx.AsyncClient(limits=limits, timeout=30.0, trust_env=False)
    registry = build_suppliers(http, clock.now, suppliers)
    box = CredentialBox(settings.secret_key, settings.old_secret_key_list())
    cache = ConfigCache(box=box, suppliers=registry)
    fulfilment = Fulfilment(
        db=db,
        cache=cache,
        suppliers=registry,
        callback_base=settings.callback_base(),
        slots=ChannelSlots(settings.worker_channel_concurrency, settings.worker_channel_slow_s),
    )
    return Container(settings, clock, db, cache, http, registry, box, fulfilment, MerchantSecrets())


def install_plugins(c: Container) -> list[Any]:
    """Let feature modules (notifications, streams, batches, console) register routes, jobs and hooks.

    Each feature module exposes `install(container) -> startup hook | None`.
    """
    import importlib

    hooks: list[Any] = []
    for name in PLUGINS:
        hook = importlib.import_module(name).install(c)
        if hook is not None:
            hooks.append(hook)
    return hooks


PLUGINS = [
    "topup.services.notifications",
    "topup.entrypoints.stream",
    "topup.services.batches",
    "topup.services.balance_watch",
    "topup.entrypoints.web",
    "topup.entrypoints.console",
    "topup.entrypoints.metrics",
]
