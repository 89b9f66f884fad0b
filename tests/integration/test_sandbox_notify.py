"""The sandbox gateway's notify retries a bounded number of times, like a real gateway.

The job handler is driven in-process against the platform's database (SQLite and PostgreSQL) with a
scripted HTTP transport, so each test sees exactly whether the job raised (the worker retries it) or
was finished (deleted) for good.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from tests.support.platform import Platform

from topup.adapters.db.engine import Database
from topup.adapters.notify.http_post import HttpxPoster
from topup.clock import Clock
from topup.services import jobs
from topup.services.jobs import Job
from topup.services.payments import (
    NOTIFY_MAX_TRIES,
    NOTIFY_MAX_TRIES_4XX,
    Payments,
)

Responder = Callable[[httpx.Request], httpx.Response]


def _run(platform: Platform, responder: Responder, tries: int) -> tuple[str, bool]:
    """Run the notify job once as its `tries`-th try: ("raised" | "returned", job still queued?)."""

    async def scenario() -> tuple[str, bool]:
        db = Database(platform.database_url, Clock(), pool_size=1)
        http = httpx.AsyncClient(transport=httpx.MockTransport(responder))
        key = f"sandbox_notify:pay_test_{tries}_{id(responder)}"
        payload = jobs.SandboxNotifyPayload("pay_test", "paid", 100)
        try:
            async with db.transaction() as tx:
                # Due in an hour: the platform's own worker leaves it alone.
                await jobs.enqueue(tx, payload, tx.now + 3600, key=key)
                row = await tx.fetchrow("SELECT id FROM jobs WHERE key = $1", key)
            payments = Payments(db, HttpxPoster(http), "http://gateway.invalid", "s3cret", 900.0, Clock().now)
            job = Job(row.id, jobs.JobKind.SANDBOX_NOTIFY, key, payload, tries)
            try:
                await payments.handle_gateway_notify_job(job)
                outcome = "returned"
            except Exception:
                outcome = "raised"
            async with db.transaction() as tx:
                left = await tx.fetchrow("SELECT id FROM jobs WHERE key = $1", key)
            return outcome, left is not None
        finally:
            await http.aclose()
            await db.dispose()

    return asyncio.run(scenario())


def _status(code: int) -> Responder:
    return lambda request: httpx.Response(code, text="no")


def _refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def test_a_delivered_notify_finishes_its_job(platform: Platform) -> None:
    assert _run(platform, _status(200), 1) == ("returned", False)


@pytest.mark.parametrize("code", [400, 401, 409])
def test_a_refused_notify_is_retried_then_given_up(platform: Platform, code: int) -> None:
    assert _run(platform, _status(code), NOTIFY_MAX_TRIES_4XX - 1) == ("raised", True)
    assert _run(platform, _status(code), NOTIFY_MAX_TRIES_4XX) == ("returned", False)


@pytest.mark.parametrize("responder", [_status(503), _status(429), _refused])
def test_a_failing_gateway_target_is_retried_longer_then_given_up(platform: Platform, responder: Any) -> None:
    assert _run(platform, responder, NOTIFY_MAX_TRIES_4XX) == ("raised", True)
    assert _run(platform, responder, NOTIFY_MAX_TRIES - 1) == ("raised", True)
    assert _run(platform, responder, NOTIFY_MAX_TRIES) == ("returned", False)
