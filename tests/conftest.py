"""Fixtures: a clean database per test on SQLite and PostgreSQL, a running platform, the simulator."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.platform import (
    ADMIN_TOKEN,
    Platform,
    create_pg_database,
    drop_pg_database,
    free_port,
    pg_available,
)

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_PG: bool | None = None


def require_pg() -> None:
    global _PG
    if _PG is None:
        _PG = pg_available()
    if not _PG:
        if IN_CI:
            pytest.fail("PostgreSQL is not reachable; under CI the PostgreSQL tests must run")
        pytest.skip("PostgreSQL is not reachable")


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.pg)])
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/topup.db"
        return
    require_pg()
    name, url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(name)


@pytest.fixture
def pg_url() -> Iterator[str]:
    require_pg()
    name, url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(name)


def start_platform(
    database_url: str, ws: str = "websockets-sansio", **overrides: Any
) -> tuple[Any, Platform]:
    from topup import bootstrap
    from topup.adapters.suppliers.simulator import BackgroundServer
    from topup.config import Settings
    from topup.entrypoints.api.app import create_app
    from topup.entrypoints.worker import start_worker

    port = free_port()
    settings = Settings(
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        host="127.0.0.1",
        port=port,
        public_url=f"http://127.0.0.1:{port}",
        worker_poll_s=0.05,
        allow_private_notify_urls=True,
        **{"db_pool_size": 4, **overrides},
    )
    container = bootstrap.build(settings)
    hooks = bootstrap.install_plugins(container)
    app = create_app(container, on_startup=[start_worker, *hooks] if settings.run_worker else hooks)
    server = BackgroundServer(app, "127.0.0.1", port, ws=ws).start(timeout_s=30)
    admin = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30.0, trust_env=False
    )
    return server, Platform(server.url, database_url, admin, container)


@pytest.fixture
def platform(database_url: str) -> Iterator[Platform]:
    server, p = start_platform(database_url)
    try:
        yield p
    finally:
        p.admin.close()
        server.stop()


@pytest.fixture
def sim() -> Iterator[Any]:
    from topup.adapters.suppliers.simulator import start_in_thread

    config = {"defaults": {"callback_delay_s": 0.05}, "callback_retry_backoff_s": 0.05}
    s = start_in_thread(config)
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(autouse=True, scope="session")
def _quiet_logs() -> None:
    """Platforms started inside the test process log like production, but only warnings and worse."""
    from topup import logs
    from topup.config import Settings

    logs.configure(Settings(log_level="WARNING"))
