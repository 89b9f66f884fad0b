"""The database going away: requests get 503 with Retry-After (nothing written), start-up waits for it."""

from __future__ import annotations

import asyncio
import time

import pytest
from tests.conftest import start_platform
from tests.support.platform import PG_ADMIN_DSN, wait_until
from tests.support.tcpproxy import TcpProxy

pytestmark = pytest.mark.pg


def _via_proxy(url: str, proxy: TcpProxy) -> str:
    return url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")


def test_requests_get_503_while_the_database_is_away_and_work_after(pg_url: str) -> None:
    assert "127.0.0.1:5432" in PG_ADMIN_DSN
    proxy = TcpProxy("127.0.0.1", 5432)
    proxy.open()
    server, p = start_platform(_via_proxy(pg_url, proxy), run_worker=False)
    try:
        m = p.merchant(balance=100_000)
        assert m.get("/v1/balance").status_code == 200
        proxy.cut()
        p.container.merchants.invalidate()
        r = m.get("/v1/balance")
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "unavailable"
        assert r.headers["Retry-After"] == "1"
        proxy.open()
        ok = wait_until(lambda: m.get("/v1/balance").status_code == 200, timeout_s=15, what="recovery")
        assert ok
        assert m.get("/v1/balance").json()["available"] == 100_000
    finally:
        p.admin.close()
        server.stop()
        proxy.close()


def test_start_up_waits_for_a_database_that_comes_up_late(pg_url: str) -> None:
    from topup import bootstrap
    from topup.config import Settings

    proxy = TcpProxy("127.0.0.1", 5432)  # not open yet: connections are refused
    settings = Settings(database_url=_via_proxy(pg_url, proxy), startup_wait_s=20, db_pool_size=2)
    container = bootstrap.build(settings)

    async def run() -> float:
        started = time.monotonic()
        task = asyncio.create_task(container.start())
        await asyncio.sleep(1.2)
        assert not task.done(), "start-up must wait, not fail, while the database is away"
        proxy.open()
        await asyncio.wait_for(task, 20)
        await container.close()
        return time.monotonic() - started

    try:
        assert asyncio.run(run()) >= 1.2
    finally:
        proxy.close()


def test_start_up_gives_up_after_startup_wait_s(pg_url: str) -> None:
    from topup import bootstrap
    from topup.config import Settings

    proxy = TcpProxy("127.0.0.1", 5432)
    settings = Settings(database_url=_via_proxy(pg_url, proxy), startup_wait_s=1.0, db_pool_size=2)
    container = bootstrap.build(settings)

    async def run() -> None:
        try:
            with pytest.raises(OSError):
                await container.start()
        finally:
            await container.close()

    try:
        asyncio.run(run())
    finally:
        proxy.close()
