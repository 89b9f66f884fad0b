"""Test support: a real platform (uvicorn on loopback) on SQLite or PostgreSQL, and signed clients."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from topup.signing import signed_headers

if TYPE_CHECKING:
    from topup.adapters.suppliers.simulator import BackgroundServer
    from topup.bootstrap import Container
    from topup.entrypoints.site import Site

PG_ADMIN_DSN = os.environ.get("TOPUP_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
ADMIN_TOKEN = "test-admin-token-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_available() -> bool:
    import asyncpg

    async def probe() -> bool:
        try:
            conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
        except (OSError, asyncpg.PostgresError):
            return False
        await conn.close()
        return True

    return asyncio.run(probe())


def create_pg_database() -> tuple[str, str]:
    """A fresh, empty database; returns (name, url)."""
    import asyncpg

    name = f"topup_test_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    return name, f"{base}/{name}"


def drop_pg_database(name: str) -> None:
    import asyncpg

    async def drop() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


class SignedClient:
    """A merchant's HTTP client: every request signed per SPEC section 0."""

    def __init__(self, base_url: str, merchant_id: str, secret: str, clock: Callable[[], float] = time.time):
        self.merchant_id = merchant_id
        self.secret = secret
        self.clock = clock
        self.http = httpx.Client(base_url=base_url, timeout=30.0, trust_env=False)

    def request(
        self, method: str, path: str, json: Any = None, raw: bytes | None = None, **headers: str
    ) -> httpx.Response:
        body = raw if raw is not None else (orjson.dumps(json) if json is not None else b"")
        h = signed_headers(self.secret, method, path, body, self.clock())
        h["X-Merchant-Id"] = self.merchant_id
        if body:
            h["Content-Type"] = "application/json"
        h.update(headers)
        return self.http.request(method, path, content=body, headers=h)

    def get(self, path: str) -> httpx.Response:
        return self.request("GET", path)

    def post(self, path: str, json: Any = None) -> httpx.Response:
        return self.request("POST", path, json=json)

    def order(
        self,
        merchant_order_id: str,
        product_code: str = "airtime.50",
        account: str = "13800138000",
        **kw: Any,
    ) -> httpx.Response:
        return self.post(
            "/v1/orders",
            {"merchant_order_id": merchant_order_id, "product_code": product_code, "account": account, **kw},
        )

    def close(self) -> None:
        self.http.close()


@dataclass
class Platform:
    url: str
    database_url: str
    admin: httpx.Client
    container: Container | None = None
    """The in-process platform's container (None for a platform in another process)."""
    site: Site | None = None
    """Its app's own parts: event hub, sessions, metrics."""

    def merchant(
        self,
        merchant_id: str = "m1",
        secret: str = "merchant-secret-0001",
        balance: int = 1_000_000,
        **kw: Any,
    ) -> SignedClient:
        r = self.admin.put(
            f"/admin/v1/merchants/{merchant_id}", json={"name": merchant_id, "secret": secret, **kw}
        )
        assert r.status_code in (200, 201), r.text
        if balance:
            r = self.admin.post(
                f"/admin/v1/merchants/{merchant_id}/credits",
                json={"amount": balance, "reference": f"init-{merchant_id}"},
            )
            assert r.status_code in (200, 201), r.text
        return SignedClient(self.url, merchant_id, secret)

    def channel(self, code: str, base_url: str, secret: str = "sim-secret", **kw: Any) -> None:
        body = {
            "name": code,
            "protocol": "topup-json",
            "base_url": base_url,
            "secret": secret,
            "timeout_s": 2.0,
            "max_wait_s": 4.0,
            "supports_query": True,
            "enabled": True,
            **kw,
        }
        r = self.admin.put(f"/admin/v1/channels/{code}", json=body)
        assert r.status_code in (200, 201), r.text

    def group(
        self, code: str, business_type: str, members: list[dict[str, Any]], **kw: Any
    ) -> dict[str, Any]:
        body = {
            "business_type": business_type,
            "brand": None,
            "strategy": "priority",
            "sticky": True,
            "recovery_s": 300,
            "members": members,
            **kw,
        }
        r = self.admin.put(f"/admin/v1/groups/{code}", json=body)
        assert r.status_code in (200, 201), r.text
        return r.json()

    def product(
        self,
        code: str,
        business_type: str = "mobile_airtime",
        brand: str | None = "auto",
        face_value: int = 5000,
        price: int = 4980,
        name: str | None = None,
    ) -> None:
        r = self.admin.put(
            f"/admin/v1/products/{code}",
            json={
                "business_type": business_type,
                "brand": brand,
                "name": name or code,
                "face_value": face_value,
                "price": price,
            },
        )
        assert r.status_code in (200, 201), r.text

    def get_group(self, code: str) -> dict[str, Any]:
        r = self.admin.get(f"/admin/v1/groups/{code}")
        assert r.status_code == 200, r.text
        return r.json()

    def admin_order(self, order_id: str) -> dict[str, Any]:
        r = self.admin.get(f"/admin/v1/orders/{order_id}")
        assert r.status_code == 200, r.text
        return r.json()

    def ledger_check(self) -> dict[str, Any]:
        r = self.admin.get("/admin/v1/ledger/check")
        assert r.status_code == 200, r.text
        return r.json()

    def wait_order(
        self,
        order_id: str,
        statuses: tuple[str, ...] = ("succeeded", "failed", "cancelled"),
        timeout_s: float = 15.0,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            o = self.admin_order(order_id)
            if o["status"] in statuses:
                return o
            if time.monotonic() > deadline:
                raise AssertionError(f"order {order_id} still {o['status']} after {timeout_s}s: {o}")
            time.sleep(0.05)


def start_platform(
    database_url: str, ws: str = "websockets-sansio", **overrides: Any
) -> tuple[BackgroundServer, Platform]:
    """The platform in this process, on loopback: `bootstrap.build` and `create_app`, as `topup serve`
    runs them, with test settings (`overrides` replace any of them)."""
    from topup import bootstrap
    from topup.adapters.suppliers.simulator import BackgroundServer
    from topup.config import Settings
    from topup.entrypoints.api.app import create_app

    port = free_port()
    settings = Settings(
        **{
            "database_url": database_url,
            "admin_token": ADMIN_TOKEN,
            "host": "127.0.0.1",
            "port": port,
            "public_url": f"http://127.0.0.1:{port}",
            "worker_poll_s": 0.05,
            "allow_private_notify_urls": True,
            "db_pool_size": 4,
            **overrides,
        }
    )
    container = bootstrap.build(settings)
    app = create_app(container)
    server = BackgroundServer(app, "127.0.0.1", port, ws=ws).start(timeout_s=30)
    admin = httpx.Client(
        base_url=server.url,
        headers={"Authorization": f"Bearer {settings.admin_token}"},
        timeout=30.0,
        trust_env=False,
    )
    return server, Platform(server.url, database_url, admin, container, app.state.site)


def wait_until(predicate: Callable[[], Any], timeout_s: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def sim_channel(sim: Any, code: str, secret: str = "sim-secret", **behaviour: Any) -> str:
    """Configure one simulated channel (created if new) and return its topup-json base_url."""
    r = httpx.put(f"{sim.url}/control/channels/{code}", json={"secret": secret, **behaviour}, trust_env=False)
    assert r.status_code in (200, 201), r.text
    return str(sim.base_url(code))


def sim_stats(sim: Any) -> dict[str, Any]:
    r = httpx.get(f"{sim.url}/control/stats", trust_env=False)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def setup_airtime(
    platform: Platform,
    sim: Any,
    channels: dict[str, dict[str, Any]],
    strategy: str = "priority",
    recovery_s: float = 300,
    timeout_s: float = 0.5,
    max_wait_s: float = 1.0,
    supports_query: bool = True,
    costs: dict[str, dict[str, int]] | None = None,
    product_price: int = 4980,
) -> None:
    """airtime.50 routed to a group `air` of simulated channels, in the given priority order."""
    platform.product("airtime.50", price=product_price)
    members = []
    for i, (code, behaviour) in enumerate(channels.items(), start=1):
        url = sim_channel(sim, code, **behaviour)
        platform.channel(code, url, timeout_s=timeout_s, max_wait_s=max_wait_s, supports_query=supports_query)
        members.append({"channel": code, "priority": i, "weight": 1, "costs": (costs or {}).get(code, {})})
    platform.group("air", "mobile_airtime", members, strategy=strategy, recovery_s=recovery_s)


def peak_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at any one moment (an interval's end closes it before a start at the
    same instant opens another)."""
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    open_now = peak = 0
    for _, step in edges:
        open_now += step
        peak = max(peak, open_now)
    return peak
