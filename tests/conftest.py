"""Fixtures: a clean database per test on SQLite and PostgreSQL, a running platform, the simulator."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import databases
from tests.support.platform import (
    Platform,
    create_pg_database,
    drop_pg_database,
    pg_available,
    start_platform,
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


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return databases.migrated_sqlite(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="session")
def _pg_template() -> Iterator[str]:
    require_pg()
    name = databases.migrated_pg()
    try:
        yield name
    finally:
        databases.drop_pg(name)


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.pg)])
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """A database of its own for the test, already at the latest revision (copied from a template)."""
    if request.param == "sqlite":
        yield databases.sqlite_copy(request.getfixturevalue("_sqlite_template"), tmp_path)
        return
    name, url = databases.pg_copy(request.getfixturevalue("_pg_template"))
    try:
        yield url
    finally:
        databases.drop_pg(name)


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.pg)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """A new, empty database (no schema): for the tests of the migrations themselves."""
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
