"""Read-only queries behind the console and `GET /admin/v1/overview`: cheap grouped counts per window."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Integer, and_, cast, func, select

from topup.adapters.db import tables as t
from topup.adapters.db.engine import Tx
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


def _bucket(tx: Tx, col: Any, since: float, step: float) -> Any:
    # floor((col - since) / step); values are never negative, so SQLite's truncating CAST is a floor.
    expr = (col - since) / step
    return func.floor(expr) if tx.is_postgres else cast(expr, Integer)


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
    o = t.orders
    by_status = {
        r.status: int(r.n)
        for r in (
            await tx.conn.execute(
                select(o.c.status, func.count().label("n"))
                .where(o.c.created_at >= since)
                .group_by(o.c.status)
            )
        ).all()
    }
    succeeded, failed = by_status.get("succeeded", 0), by_status.get("failed", 0)
    bucket = _bucket(tx, o.c.created_at, since, step).label("b")
    series = _empty_series(since, window_s, step)
    for r in (
        await tx.conn.execute(
            select(bucket, o.c.status, func.count().label("n"))
            .where(o.c.created_at >= since)
            .group_by(bucket, o.c.status)
        )
    ).all():
        _put(series, r.b, r.status, int(r.n), "succeeded", ("failed",))
    gs = t.group_switches
    switches = {
        r.reason: int(r.n)
        for r in (
            await tx.conn.execute(
                select(gs.c.reason, func.count().label("n")).where(gs.c.at >= since).group_by(gs.c.reason)
            )
        ).all()
    }
    open_exceptions = (
        await tx.conn.execute(select(func.count()).where(t.exceptions.c.resolved_at.is_(None)))
    ).scalar_one()
    pending_notifications = (
        await tx.conn.execute(select(func.count()).where(t.deliveries.c.status == "pending"))
    ).scalar_one()
    return {
        "window_s": window_s,
        "since": rfc3339(since),
        "orders": sum(by_status.values()),
        "orders_by_status": by_status,
        "success_rate": succeeded / (succeeded + failed) if succeeded + failed else None,
        "failovers": switches.get("failover", 0),
        "switch_backs": switches.get("recovered", 0),
        "open_exceptions": int(open_exceptions),
        "pending_notifications": int(pending_notifications),
        "due_work_lag_s": await due_work_lag(tx, now),
        "series": [
            {"start": rfc3339(b.start), "orders": b.total, "succeeded": b.ok, "failed": b.failed}
            for b in series
        ],
        "_series": series,
    }


async def due_work_lag(tx: Tx, now: float) -> float:
    """How late the oldest due, unclaimed job is (0 when the workers keep up)."""
    j = t.jobs
    oldest = (
        await tx.conn.execute(
            select(func.min(j.c.run_at)).where(
                j.c.run_at <= now, (j.c.locked_until.is_(None)) | (j.c.locked_until < now)
            )
        )
    ).scalar()
    return max(0.0, now - float(oldest)) if oldest is not None else 0.0


async def channel_stats(
    tx: Tx, channels: list[str], now: float, window_s: float = WINDOW_S, step: float = STEP_S
) -> dict[str, ChannelStats]:
    """Per channel over the window: outcomes, reply latency, time to a final answer, a per-step series."""
    since = window_start(now, window_s, step)
    a = t.attempts
    out = {ch: ChannelStats(ch, series=_empty_series(since, window_s, step)) for ch in channels}
    if not channels:
        return out
    finished = and_(a.c.channel_code.in_(channels), a.c.finished_at >= since)
    rows = (
        await tx.conn.execute(
            select(
                a.c.channel_code,
                a.c.status,
                func.count().label("n"),
                func.avg(a.c.latency_ms).label("reply_ms"),
                func.max(a.c.finished_at).label("last"),
            )
            .where(finished)
            .group_by(a.c.channel_code, a.c.status)
        )
    ).all()
    reply: dict[str, tuple[float, int]] = {}
    for r in rows:
        s = out[r.channel_code]
        n = int(r.n)
        s.finished += n
        if r.status == "succeeded":
            s.succeeded += n
        elif r.status == "failed":
            s.failed += n
        elif r.status == "abandoned":
            s.abandoned += n
        s.last_at = max(s.last_at or 0.0, float(r.last))
        if r.reply_ms is not None:
            total, count = reply.get(r.channel_code, (0.0, 0))
            reply[r.channel_code] = (total + float(r.reply_ms) * n, count + n)
    for ch, (total, count) in reply.items():
        out[ch].avg_reply_ms = total / count if count else None
    for r in (
        await tx.conn.execute(
            select(a.c.channel_code, func.count().label("n"))
            .where(a.c.channel_code.in_(channels), a.c.status == "pending")
            .group_by(a.c.channel_code)
        )
    ).all():
        out[r.channel_code].pending = int(r.n)
    bucket = _bucket(tx, a.c.finished_at, since, step).label("b")
    for r in (
        await tx.conn.execute(
            select(a.c.channel_code, bucket, a.c.status, func.count().label("n"))
            .where(finished)
            .group_by(a.c.channel_code, bucket, a.c.status)
        )
    ).all():
        _put(out[r.channel_code].series, r.b, r.status, int(r.n), "succeeded", ("failed", "abandoned"))
    # Time from dispatch to the final answer: percentiles over the latest finished attempts.
    for ch in channels:
        durations = sorted(
            max(0.0, float(r.finished_at) - float(r.dispatched_at or r.started_at))
            for r in (
                await tx.conn.execute(
                    select(a.c.finished_at, a.c.dispatched_at, a.c.started_at)
                    .where(a.c.channel_code == ch, a.c.finished_at >= since)
                    .order_by(a.c.finished_at.desc())
                    .limit(500)
                )
            ).all()
        )
        if durations:
            out[ch].p50_s = durations[len(durations) // 2]
            out[ch].p95_s = durations[min(len(durations) - 1, int(len(durations) * 0.95))]
    return out


async def switches(tx: Tx, group: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    gs = t.group_switches
    stmt = select(gs)
    if group:
        stmt = stmt.where(gs.c.group_code == group)
    rows = (await tx.conn.execute(stmt.order_by(gs.c.id.desc()).limit(limit))).all()
    return [
        {
            "group": r.group_code,
            "from_channel": r.from_channel,
            "to_channel": r.to_channel,
            "reason": r.reason,
            "order_id": r.order_id,
            "at": r.at,
        }
        for r in rows
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


async def search_orders(tx: Tx, q: OrderSearch, limit: int = 100) -> list[Any]:
    """Newest first; every given field must match (ids and account exactly)."""
    o = t.orders
    stmt = select(o)
    for col, value in (
        (o.c.id, q.order_id),
        (o.c.merchant_order_id, q.merchant_order_id),
        (o.c.account, q.account),
        (o.c.merchant_id, q.merchant_id),
        (o.c.status, q.status),
    ):
        if value:
            stmt = stmt.where(col == value)
    if q.since is not None:
        stmt = stmt.where(o.c.created_at >= q.since)
    if q.until is not None:
        stmt = stmt.where(o.c.created_at < q.until)
    return list(
        (await tx.conn.execute(stmt.order_by(o.c.created_at.desc(), o.c.id.desc()).limit(limit))).all()
    )
