"""The console's and `GET /admin/v1/overview`'s figures per window, from cheap grouped counts
(`topup.adapters.db.queries.stats`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from topup.adapters.db.engine import Tx
from topup.adapters.db.queries import operator_views
from topup.adapters.db.queries import stats as q
from topup.clock import rfc3339

WINDOW_S = 3600.0
STEP_S = 60.0
FINAL = ("succeeded", "failed", "cancelled")


@dataclass
class Bucket:
    """One step of a time series: how many, how many succeeded, how many failed."""

    start: float
    total: int = 0
    ok: int = 0
    failed: int = 0

    @property
    def success_rate(self) -> float | None:
        done = self.ok + self.failed
        return self.ok / done if done else None


@dataclass
class ChannelStats:
    channel: str
    finished: int = 0
    succeeded: int = 0
    failed: int = 0
    abandoned: int = 0
    pending: int = 0
    avg_reply_ms: float | None = None
    p50_s: float | None = None
    p95_s: float | None = None
    last_at: float | None = None
    series: list[Bucket] = field(default_factory=list)

    @property
    def success_rate(self) -> float | None:
        return self.succeeded / self.finished if self.finished else None


def window_start(now: float, window_s: float, step: float) -> float:
    """Steps end on whole minutes (the last one holds `now`), so chart labels read 12:00, 12:10, ..."""
    return (now // step + 1) * step - window_s


def _empty_series(since: float, window_s: float, step: float) -> list[Bucket]:
    return [Bucket(since + i * step) for i in range(int(window_s // step))]


def _put(series: list[Bucket], index: Any, status: str, n: int, ok: str, bad: tuple[str, ...]) -> None:
    i = int(index)
    if 0 <= i < len(series):
        b = series[i]
        b.total += n
        if status == ok:
            b.ok += n
        elif status in bad:
            b.failed += n


async def overview(tx: Tx, now: float, window_s: float = WINDOW_S, step: float = STEP_S) -> dict[str, Any]:
    """Orders of the last `window_s` by status, success rate, failovers, open work, a per-step series."""
    since = window_start(now, window_s, step)
    by_status = await q.orders_by_status(tx, since)
    succeeded, failed = by_status.get("succeeded", 0), by_status.get("failed", 0)
    series = _empty_series(since, window_s, step)
    for r in await q.orders_by_step(tx, since, step):
        _put(series, r.step, r.status, r.n, "succeeded", ("failed",))
    switches = await q.switches_by_reason(tx, since)
    open_exceptions = await q.open_exceptions(tx)
    pending_notifications = await q.pending_deliveries(tx)
    return {
        "window_s": window_s,
        "since": rfc3339(since),
        "orders": sum(by_status.values()),
        "orders_by_status": by_status,
        "success_rate": succeeded / (succeeded + failed) if succeeded + failed else None,
        "failovers": switches.get("failover", 0),
        "switch_backs": switches.get("recovered", 0),
        "open_exceptions": open_exceptions,
        "pending_notifications": pending_notifications,
        "due_work_lag_s": await due_work_lag(tx, now),
        "series": [
            {"start": rfc3339(b.start), "orders": b.total, "succeeded": b.ok, "failed": b.failed}
            for b in series
        ],
        "_series": series,
    }


async def due_work_lag(tx: Tx, now: float) -> float:
    """How late the oldest due, unclaimed job is (0 when the workers keep up)."""
    oldest = await q.oldest_due_job(tx, now)
    return max(0.0, now - oldest) if oldest is not None else 0.0


async def channel_stats(
    tx: Tx, channels: list[str], now: float, window_s: float = WINDOW_S, step: float = STEP_S
) -> dict[str, ChannelStats]:
    """Per channel over the window: outcomes, reply latency, time to a final answer, a per-step series."""
    since = window_start(now, window_s, step)
    out = {ch: ChannelStats(ch, series=_empty_series(since, window_s, step)) for ch in channels}
    if not channels:
        return out
    reply: dict[str, tuple[float, int]] = {}
    for r in await q.attempt_outcomes(tx, channels, since):
        s = out[r.channel]
        n = r.n
        s.finished += n
        if r.status == "succeeded":
            s.succeeded += n
        elif r.status == "failed":
            s.failed += n
        elif r.status == "abandoned":
            s.abandoned += n
        s.last_at = max(s.last_at or 0.0, r.last)
        if r.reply_ms is not None:
            total, count = reply.get(r.channel, (0.0, 0))
            reply[r.channel] = (total + r.reply_ms * n, count + n)
    for ch, (total, count) in reply.items():
        out[ch].avg_reply_ms = total / count if count else None
    for ch, n in (await q.pending_attempts(tx, channels)).items():
        out[ch].pending = n
    for c in await q.attempts_by_step(tx, channels, since, step):
        _put(out[c.channel].series, c.step, c.status, c.n, "succeeded", ("failed", "abandoned"))
    # Time from dispatch to the final answer: percentiles over the latest finished attempts.
    for ch in channels:
        durations = sorted(
            max(0.0, r.finished_at - float(r.dispatched_at or r.started_at))
            for r in await q.latest_timings(tx, ch, since)
        )
        if durations:
            out[ch].p50_s = durations[len(durations) // 2]
            out[ch].p95_s = durations[min(len(durations) - 1, int(len(durations) * 0.95))]
    return out


async def switches(tx: Tx, group: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    return [
        {
            "group": r.group_code,
            "from_channel": r.from_channel,
            "to_channel": r.to_channel,
            "reason": r.reason,
            "order_id": r.order_id,
            "at": r.at,
        }
        for r in await operator_views.group_switches(tx, group, limit)
    ]


@dataclass
class OrderSearch:
    order_id: str = ""
    merchant_order_id: str = ""
    account: str = ""
    merchant_id: str = ""
    status: str = ""
    since: float | None = None
    until: float | None = None

    def any(self) -> bool:
        return bool(
            self.order_id
            or self.merchant_order_id
            or self.account
            or self.merchant_id
            or self.status
            or self.since is not None
            or self.until is not None
        )


async def search_orders(tx: Tx, search: OrderSearch, limit: int = 100) -> list[Any]:
    """Newest first; every given field must match (ids and account exactly)."""
    return await q.search_orders(
        tx,
        order_id=search.order_id,
        merchant_order_id=search.merchant_order_id,
        account=search.account,
        merchant_id=search.merchant_id,
        status=search.status,
        since=search.since,
        until=search.until,
        limit=limit,
    )
