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
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from starlette.responses import Response

from topup.adapters.db.engine import Tx
from topup.adapters.db.queries import metrics as q
from topup.adapters.db.queries import stats
from topup.bootstrap import Container
from topup.domain.errors import Unauthorized
from topup.entrypoints.api.deps import bearer_matches, container
from topup.entrypoints.api.errors import error_response
from topup.entrypoints.api.responses import JSONOut
from topup.entrypoints.site import site_of
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


async def orders_metrics(tx: Tx) -> list[Metric]:
    g = GaugeMetricFamily(
        "topup_orders",
        "Open orders by status and business type, and those that finished in the last 24 h.",
        labels=["status", "business_type"],
    )
    for r in await q.orders_by_status_and_type(tx):
        g.add_metric(list(r.labels), r.n)
    return [g]


async def routing_metrics(tx: Tx, now: float) -> list[Metric]:
    attempts = CounterMetricFamily(
        "topup_attempts",
        "Supplier attempts by channel and outcome (pending = in flight).",
        labels=["channel", "status"],
    )
    for r in await q.attempts_by_channel_and_status(tx):
        attempts.add_metric(list(r.labels), r.n)
    switches = CounterMetricFamily(
        "topup_group_switches",
        "Active-channel switches: reason=failover (moved away) or recovered (switched back).",
        labels=["group", "reason"],
    )
    for r in await q.switches_by_group_and_reason(tx):
        switches.add_metric(list(r.labels), r.n)
    active = GaugeMetricFamily(
        "topup_group_active_channel",
        "1 for each group's current active channel.",
        labels=["group", "channel"],
    )
    for group, channel in await q.active_channels(tx):
        if channel:
            active.add_metric([group, channel], 1)
    enabled = GaugeMetricFamily(
        "topup_channel_enabled", "1 when the channel takes new attempts.", labels=["channel"]
    )
    for code, on in await q.channels_enabled(tx):
        enabled.add_metric([code], 1 if on else 0)
    # Callback delay over the last hour: received_at - dispatched_at of the attempt it answers.
    delays = await q.callback_delays(tx, now - DELAY_WINDOW_S, DELAY_BUCKETS)
    buckets = [(str(b), n) for b, n in zip(DELAY_BUCKETS, delays.within, strict=True)]
    buckets.append(("+Inf", delays.n))
    hist = GaugeHistogramMetricFamily(
        "topup_callback_delay_seconds",
        "Seconds from dispatch to the supplier's callback, callbacks received in the last hour.",
        buckets=buckets,
        gsum_value=max(0.0, delays.total),
    )
    return [attempts, switches, active, enabled, hist]


async def notification_metrics(tx: Tx, now: float) -> list[Metric]:
    by_status = GaugeMetricFamily(
        "topup_notifications",
        "Pending merchant notifications, and those delivered or given up in the last 24 h.",
        labels=["status"],
    )
    for r in await q.deliveries_by_status(tx):
        by_status.add_metric(list(r.labels), r.n)
    retried, oldest_at = await q.delivery_backlog(tx)
    retries = CounterMetricFamily(
        "topup_notification_retries", "Delivery attempts after a notification's first."
    )
    retries.add_metric([], retried)
    oldest = GaugeMetricFamily(
        "topup_notification_oldest_pending_seconds", "Age of the oldest notification not yet delivered."
    )
    oldest.add_metric([], max(0.0, now - oldest_at) if oldest_at is not None else 0.0)
    tries = CounterMetricFamily(
        "topup_notification_delivery_attempts", "Webhook delivery attempts by result.", labels=["result"]
    )
    for r in await q.delivery_attempts_by_result(tx):
        tries.add_metric(list(r.labels), r.n)
    return [by_status, retries, oldest, tries]


async def work_metrics(tx: Tx, now: float) -> list[Metric]:
    jobs = GaugeMetricFamily("topup_jobs", "Queued durable work by kind and state.", labels=["kind", "state"])
    for r in await q.jobs_by_kind_and_state(tx, now):
        jobs.add_metric(list(r.labels), r.n)
    oldest = await stats.oldest_due_job(tx, now)
    lag = GaugeMetricFamily(
        "topup_due_work_lag_seconds", "How overdue the oldest due, unclaimed job is (0 when workers keep up)."
    )
    lag.add_metric([], max(0.0, now - oldest) if oldest is not None else 0.0)
    deferred = GaugeMetricFamily(
        "topup_dispatch_deferred",
        "Orders waiting for a slow channel (route jobs deferred by per-channel dispatch slots).",
        labels=["channel"],
    )
    for r in await q.deferred_by_channel(tx):
        deferred.add_metric(list(r.labels), r.n)
    exc = GaugeMetricFamily("topup_exceptions_open", "Exceptions waiting for an operator.", labels=["kind"])
    for r in await q.open_exceptions_by_kind(tx):
        exc.add_metric(list(r.labels), r.n)
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
    return [*families, took, *group_commit_metrics(c)]


def group_commit_metrics(c: Container) -> list[Metric]:
    """This process's group commit (adapters/db/group_commit.py): units that shared a transaction,
    groups of one, and groups rolled back and run again. Per process, like the process's own work."""
    stats = c.db.group.stats if c.db.group is not None else None
    if stats is None:
        return []
    out: list[Metric] = []
    for name, doc, value in (
        ("groups", "Transactions that committed two or more units of work together.", stats.groups),
        ("grouped_units", "Units of work committed in such a shared transaction.", stats.grouped_calls),
        (
            "alone",
            "Units of work that ran in a transaction of their own (nothing to group with).",
            stats.alone,
        ),
        (
            "fallbacks",
            "Groups rolled back and run again (a unit raised or the COMMIT failed).",
            stats.fallbacks,
        ),
    ):
        family = CounterMetricFamily(f"topup_group_commit_{name}", f"This process: {doc}")
        family.add_metric([], value)
        out.append(family)
    return out


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
    registry, collector = (m := site_of(request).metrics).registry, m.collector
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

    try:
        await asyncio.wait_for(q.ping(c.db), READY_TIMEOUT_S)
    except Exception as e:  # any failure means "not ready", never a 500
        return JSONOut({"status": "unavailable", "database": type(e).__name__}, status_code=503)
    return JSONOut({"status": "ready", "database": "ok"})


@dataclass
class Metrics:
    """One app's Prometheus registry and the collector that fills it from the database when scraped."""

    registry: CollectorRegistry
    collector: DatabaseCollector

    @classmethod
    def create(cls) -> Metrics:
        """A registry of its own (not the process-wide default: two apps in one process stay apart)."""
        registry = CollectorRegistry(auto_describe=False)
        collector = DatabaseCollector()
        registry.register(collector)
        return cls(registry, collector)
