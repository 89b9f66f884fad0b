"""Browser fixtures: headless Debian Chromium driven by Playwright, a platform on SQLite, screenshots."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI
from tests.support.platform import Platform

CHROMIUM = os.environ.get("TOPUP_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"


def _require_chromium() -> None:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        if IN_CI:
            pytest.fail(f"Chromium not found at {CHROMIUM}; under CI the browser tests must run")
        pytest.skip(f"Chromium not found at {CHROMIUM}")


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The browser tests run on SQLite only (overrides the SQLite + PostgreSQL parametrised fixture)."""
    return f"sqlite:///{tmp_path}/topup.db"


@pytest.fixture
def web_platform(platform: Platform) -> Platform:
    """A running platform (`tests.conftest.platform`, i.e. `start_platform`) on SQLite."""
    return platform


@pytest.fixture
def browser() -> Iterator[Any]:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@contextmanager
def open_page(browser: Any, **context_options: Any) -> Iterator[Any]:
    """A page in a fresh browser context (closed afterwards), with a 15 s default timeout."""
    ctx = browser.new_context(**context_options)
    pg = ctx.new_page()
    pg.set_default_timeout(15_000)
    try:
        yield pg
    finally:
        ctx.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    with open_page(browser, accept_downloads=True, viewport={"width": 1280, "height": 900}) as pg:
        yield pg


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Any:
    SHOTS.mkdir(parents=True, exist_ok=True)

    def take(pg: Any, name: str) -> None:
        pg.screenshot(path=str(SHOTS / f"{request.node.name}-{name}.png"), full_page=True)

    return take
