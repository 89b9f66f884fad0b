"""`/metrics` (Prometheus text format), `/healthz` and `/readyz`.

Every value is computed from the database at scrape time with a few grouped queries, so any process (API
or worker, one or many) reports the same numbers and nothing is lost on restart. Each app has its own
CollectorRegistry: several apps in one process (the tests) never share or clash over metrics.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select, text
from starlette.responses import Response

from topup.adapters.db import tables as t
from topup.adapters.db.engine import Tx
from topup.bootstrap import Container
from topup.domain.errors import Unauthorized
from topup.entrypoints.api.deps import bearer_matches, container
from topup.entrypoints.api.errors import error_response
from topup.entrypoints.api.responses import JSONOut
from topup.entrypoints.supplier_metrics import supplier_metrics

# Callback delay buckets (seconds from dispatch to the supplier's callback).
DELAY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
DELAY_WINDOW_S = 3600.0
READY_TIMEOUT_S = 2.0
# Scrapes closer together than this reuse the last answer (several scrapers, one database).
MIN_SCRAPE_INTERVAL_S = 1.0

Ctr = Annotated[Container, Depends(container)]


@dataclass(eq=False)
class DatabaseCollector(Collector):
    """Yields the metric families of the latest scrape (collected asynchronously just before)."""

    families: list[Metric] = field(default_factory=list)
    collected_at: float = 0.0
    min_interval_s: float = MIN_SCRAPE_INTERVAL_S
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def collect(self) -> Iterable[Metric]:
        return list(self.families)


def _rows(result: Any) -> list[Any]:
    return list(result.all())


async def orders_metrics(tx: Tx) -> list[Metric]:
    o = t.orders
    g = GaugeMetricFamily(
        "topup_orders", "Orders by status and business type.", labels=["status", "business_type"]
    )
    for r in _rows(
        await tx.conn.execute(
            select(o.c.status, o.c.business_type, func.count().label("n")).group_by(
                o.c.status, o.c.business_type
            )
        )
    ):
        g.add_metric([r.status, r.business_type], int(r.n))
    return [g]


async def routing_metrics(tx: Tx, now: float) -> list[Metric]:
    a, gs, cb = t.attempts, t.group_switches, t.callbacks
    attempts = CounterMetricFamily(
        "topup_attempts",
        "Supplier attempts by channel and outcome (pending = in flight).",
        labels=["channel", "status"],
    )
    for r in _rows(
        await tx.conn.execute(
            select(a.c.channel_code, a.c.status, func.count().label("n")).group_by(
                a.c.channel_code, a.c.status
            )
        )
    ):
        attempts.add_metric([r.channel_code, r.status], int(r.n))
    switches = CounterMetricFamily(
        "topup_group_switches",
        "Active-channel switches: reason=failover (moved away) or recovered (switched back).",
        labels=["group", "reason"],
    )
    for r in _rows(
        await tx.conn.execute(
            select(gs.c.group_code, gs.c.reason, func.count().label("n")).group_by(
                gs.c.group_code, gs.c.reason
            )
        )
    ):
        switches.add_metric([r.group_code, r.reason], int(r.n))
    active = GaugeMetricFamily(
        "topup_group_active_channel",
        "1 for each group's current active channel.",
        labels=["group", "channel"],
    )
    for r in _rows(await tx.conn.execute(select(t.groups.c.code, t.groups.c.active_channel))):
        if r.active_channel:
            active.add_metric([r.code, r.active_channel], 1)
    enabled = GaugeMetricFamily(
        "topup_channel_enabled", "1 when the channel takes new attempts.", labels=["channel"]
    )
    for r in _rows(await tx.conn.execute(select(t.channels.c.code, t.channels.c.enabled))):
        enabled.add_metric([r.code], 1 if r.enabled else 0)
    # Callback delay over the last hour: received_at - dispatched_at of the attempt it answers.
    delay = cb.c.received_at - a.c.dispatched_at
    cols = [func.sum(case((delay <= b, 1), else_=0)).label(f"le{i}") for i, b in enumerate(DELAY_BUCKETS)]
    row = (
        await tx.conn.execute(
            select(func.count().label("n"), func.coalesce(func.sum(delay), 0.0).label("total"), *cols)
            .select_from(cb.join(a, a.c.ref == cb.c.ref))
            .where(cb.c.received_at >= now - DELAY_WINDOW_S, a.c.dispatched_at.is_not(None))
        )
    ).one()
    buckets = [(str(b), int(getattr(row, f"le{i}") or 0)) for i, b in enumerate(DELAY_BUCKETS)]
    buckets.append(("+Inf", int(row.n)))
    hist = GaugeHistogramMetricFamily(
        "topup_callback_delay_seconds",
        "Seconds from dispatch to the supplier's callback, callbacks received in the last hour.",
        buckets=buckets,
        gsum_value=max(0.0, float(row.total)),
    )
    return [attempts, switches, active, enabled, hist]


async def notification_metrics(tx: Tx, now: float) -> list[Metric]:
    d, da = t.deliveries, t.delivery_attempts
    by_status = GaugeMetricFamily(
        "topup_notifications", "Merchant notifications by delivery status.", labels=["status"]
    )
    for r in _rows(await tx.conn.execute(select(d.c.status, func.count().label("n")).group_by(d.c.status))):
        by_status.add_metric([r.status], int(r.n))
    row = (
        await tx.conn.execute(
            select(
                func.coalesce(func.sum(case((d.c.tries > 1, d.c.tries - 1), else_=0)), 0).label("retries"),
                func.min(case((d.c.status == "pending", d.c.created_at), else_=None)).label("oldest"),
            )
        )
    ).one()
    retries = CounterMetricFamily(
        "topup_notification_retries", "Delivery attempts after a notification's first."
    )
    retries.add_metric([], int(row.retries))
    oldest = GaugeMetricFamily(
        "topup_notification_oldest_pending_seconds", "Age of the oldest notification not yet delivered."
    )
    oldest.add_metric([], max(0.0, now - float(row.oldest)) if row.oldest is not None else 0.0)
    ok = case((da.c.status_code.between(200, 299), "ok"), else_="error")
    tries = CounterMetricFamily(
        "topup_notification_delivery_attempts", "Webhook delivery attempts by result.", labels=["result"]
    )
    for r in _rows(await tx.conn.execute(select(ok.label("result"), func.count().label("n")).group_by(ok))):
        tries.add_metric([r.result], int(r.n))
    return [by_status, retries, oldest, tries]


async def work_metrics(tx: Tx, now: float) -> list[Metric]:
    j = t.jobs
    unclaimed = (j.c.locked_until.is_(None)) | (j.c.locked_until < now)
    state = case((~unclaimed, "running"), (j.c.run_at <= now, "due"), else_="scheduled")
    jobs = GaugeMetricFamily("topup_jobs", "Queued durable work by kind and state.", labels=["kind", "state"])
    for r in _rows(
        await tx.conn.execute(
            select(j.c.kind, state.label("state"), func.count().label("n")).group_by(j.c.kind, state)
        )
    ):
        jobs.add_metric([r.kind, r.state], int(r.n))
    oldest = (
        await tx.conn.execute(select(func.min(j.c.run_at)).where(j.c.run_at <= now, unclaimed))
    ).scalar()
    lag = GaugeMetricFamily(
        "topup_due_work_lag_seconds", "How overdue the oldest due, unclaimed job is (0 when workers keep up)."
    )
    lag.add_metric([], max(0.0, now - float(oldest)) if oldest is not None else 0.0)
    # Route jobs put back because their channel was slow (fulfilment._defer records the channel).
    channel = j.c.payload["channel"].as_string()
    deferred = GaugeMetricFamily(
        "topup_dispatch_deferred",
        "Orders waiting for a slow channel (route jobs deferred by per-channel dispatch slots).",
        labels=["channel"],
    )
    for r in _rows(
        await tx.conn.execute(
            select(channel.label("channel"), func.count().label("n"))
            .where(j.c.kind == "route", channel.is_not(None))
            .group_by(channel)
        )
    ):
        deferred.add_metric([r.channel], int(r.n))
    e = t.exceptions
    exc = GaugeMetricFamily("topup_exceptions_open", "Exceptions waiting for an operator.", labels=["kind"])
    for r in _rows(
        await tx.conn.execute(
            select(e.c.kind, func.count().label("n")).where(e.c.resolved_at.is_(None)).group_by(e.c.kind)
        )
    ):
        exc.add_metric([r.kind], int(r.n))
    return [jobs, lag, deferred, exc]


async def gather(c: Container) -> list[Metric]:
    started = time.perf_counter()
    async with c.db.transaction() as tx:
        now = tx.now
        families = [
            *await orders_metrics(tx),
            *await routing_metrics(tx, now),
            *await notification_metrics(tx, now),
            *await work_metrics(tx, now),
            *await supplier_metrics(tx, now),
        ]
    took = GaugeMetricFamily("topup_metrics_scrape_seconds", "Time the last scrape's queries took.")
    took.add_metric([], time.perf_counter() - started)
    return [*families, took]


router = APIRouter(include_in_schema=False)


@router.get("/metrics")
async def metrics(c: Ctr, request: Request) -> Response:
    token = c.settings.metrics_token
    if token and not bearer_matches(request, token):
        refused = error_response(
            401, Unauthorized.code, "/metrics needs Authorization: Bearer <TOPUP_METRICS_TOKEN>"
        )
        refused.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return refused
    registry: CollectorRegistry = c.extras["metrics_registry"]
    collector: DatabaseCollector = c.extras["metrics_collector"]
    async with collector.lock:
        if time.monotonic() - collector.collected_at >= collector.min_interval_s or not collector.families:
            collector.families = await gather(c)
            collector.collected_at = time.monotonic()
        body = generate_latest(registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


@router.get("/healthz")
async def healthz() -> JSONOut:
    """The process is up and serving requests."""
    return JSONOut({"status": "ok"})


@router.get("/readyz")
async def readyz(c: Ctr) -> JSONOut:
    """Ready for traffic when the database answers `SELECT 1` within a couple of seconds."""

    async def ping() -> None:
        # A plain connection, not a write transaction: readiness must not queue behind SQLite's writer.
        async with c.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    try:
        await asyncio.wait_for(ping(), READY_TIMEOUT_S)
    except Exception as e:  # any failure means "not ready", never a 500
        return JSONOut({"status": "unavailable", "database": type(e).__name__}, status_code=503)
    return JSONOut({"status": "ready", "database": "ok"})


def install(c: Container) -> None:
    registry = CollectorRegistry(auto_describe=False)
    collector = DatabaseCollector()
    registry.register(collector)
    c.extras["metrics_registry"] = registry
    c.extras["metrics_collector"] = collector
    c.extras.setdefault("routers", []).append(router)
