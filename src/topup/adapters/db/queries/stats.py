"""Grouped counts behind the console's overview and channel pages and `GET /admin/v1/overview`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import Integer, and_, cast, func, select

from topup.adapters.db import tables as t
from topup.domain.orders import OrderStatus

if TYPE_CHECKING:
    from topup.adapters.db.engine import Tx


class StepCount(NamedTuple):
    """How many rows of one status fell in step `step` (0 = the window's first) of a series."""

    step: int
    status: str
    n: int


class ChannelStepCount(NamedTuple):
    channel: str
    step: int
    status: str
    n: int


class OutcomeCount(NamedTuple):
    """A channel's finished attempts of one status: how many, mean reply latency, the latest finish."""

    channel: str
    status: str
    n: int
    reply_ms: float | None
    last: float


class Timing(NamedTuple):
    finished_at: float
    dispatched_at: float | None
    started_at: float


def _created_since(since: float) -> Any:
    # Naming every status lets ix_orders_status_created read one range per status: the window's rows,
    # not the whole index (a year of history).
    o = t.orders
    return and_(o.c.status.in_([str(s) for s in OrderStatus]), o.c.created_at >= since)


def _bucket(tx: Tx, col: Any, since: float, step: float) -> Any:
    # floor((col - since) / step); values are never negative, so SQLite's truncating CAST is a floor.
    expr = (col - since) / step
    return func.floor(expr) if tx.is_postgres else cast(expr, Integer)


async def orders_by_status(tx: Tx, since: float) -> dict[str, int]:
    """Orders created since `since`, per status."""
    o = t.orders
    return {
        r.status: int(r.n)
        for r in (
            await tx.conn.execute(
                select(o.c.status, func.count().label("n")).where(_created_since(since)).group_by(o.c.status)
            )
        ).all()
    }


async def orders_by_step(tx: Tx, since: float, step: float) -> list[StepCount]:
    """Orders created since `since`, per step of `step` seconds and status."""
    o = t.orders
    bucket = _bucket(tx, o.c.created_at, since, step).label("b")
    rows = (
        await tx.conn.execute(
            select(bucket, o.c.status, func.count().label("n"))
            .where(_created_since(since))
            .group_by(bucket, o.c.status)
        )
    ).all()
    return [StepCount(int(r.b), r.status, int(r.n)) for r in rows]


async def switches_by_reason(tx: Tx, since: float) -> dict[str, int]:
    gs = t.group_switches
    return {
        r.reason: int(r.n)
        for r in (
            await tx.conn.execute(
                select(gs.c.reason, func.count().label("n")).where(gs.c.at >= since).group_by(gs.c.reason)
            )
        ).all()
    }


async def open_exceptions(tx: Tx) -> int:
    return int(
        (await tx.conn.execute(select(func.count()).where(t.exceptions.c.resolved_at.is_(None)))).scalar_one()
    )


async def pending_deliveries(tx: Tx) -> int:
    return int(
        (await tx.conn.execute(select(func.count()).where(t.deliveries.c.status == "pending"))).scalar_one()
    )


async def oldest_due_job(tx: Tx, now: float) -> float | None:
    """When the oldest due, unclaimed job was due (None: none is)."""
    j = t.jobs
    oldest = (
        await tx.conn.execute(
            select(func.min(j.c.run_at)).where(
                j.c.run_at <= now, (j.c.locked_until.is_(None)) | (j.c.locked_until < now)
            )
        )
    ).scalar()
    return None if oldest is None else float(oldest)


def _finished(channels: list[str], since: float) -> Any:
    a = t.attempts
    return and_(a.c.channel_code.in_(channels), a.c.finished_at >= since)


async def attempt_outcomes(tx: Tx, channels: list[str], since: float) -> list[OutcomeCount]:
    """The channels' attempts finished since `since`, per channel and status."""
    a = t.attempts
    rows = (
        await tx.conn.execute(
            select(
                a.c.channel_code,
                a.c.status,
                func.count().label("n"),
                func.avg(a.c.latency_ms).label("reply_ms"),
                func.max(a.c.finished_at).label("last"),
            )
            .where(_finished(channels, since))
            .group_by(a.c.channel_code, a.c.status)
        )
    ).all()
    return [
        OutcomeCount(
            r.channel_code,
            r.status,
            int(r.n),
            None if r.reply_ms is None else float(r.reply_ms),
            float(r.last),
        )
        for r in rows
    ]


async def pending_attempts(tx: Tx, channels: list[str]) -> dict[str, int]:
    a = t.attempts
    return {
        r.channel_code: int(r.n)
        for r in (
            await tx.conn.execute(
                select(a.c.channel_code, func.count().label("n"))
                .where(a.c.channel_code.in_(channels), a.c.status == "pending")
                .group_by(a.c.channel_code)
            )
        ).all()
    }


async def attempts_by_step(tx: Tx, channels: list[str], since: float, step: float) -> list[ChannelStepCount]:
    """The channels' attempts finished since `since`, per channel, step and status."""
    a = t.attempts
    bucket = _bucket(tx, a.c.finished_at, since, step).label("b")
    rows = (
        await tx.conn.execute(
            select(a.c.channel_code, bucket, a.c.status, func.count().label("n"))
            .where(_finished(channels, since))
            .group_by(a.c.channel_code, bucket, a.c.status)
        )
    ).all()
    return [ChannelStepCount(r.channel_code, int(r.b), r.status, int(r.n)) for r in rows]


async def latest_timings(tx: Tx, channel: str, since: float, limit: int = 500) -> list[Timing]:
    """The channel's latest attempts finished since `since`: when each started, went out and finished."""
    a = t.attempts
    rows = (
        await tx.conn.execute(
            select(a.c.finished_at, a.c.dispatched_at, a.c.started_at)
            .where(a.c.channel_code == channel, a.c.finished_at >= since)
            .order_by(a.c.finished_at.desc())
            .limit(limit)
        )
    ).all()
    return [Timing(float(r.finished_at), r.dispatched_at, float(r.started_at)) for r in rows]


async def search_orders(
    tx: Tx,
    *,
    order_id: str = "",
    merchant_order_id: str = "",
    account: str = "",
    merchant_id: str = "",
    status: str = "",
    since: float | None = None,
    until: float | None = None,
    limit: int = 100,
) -> list[Any]:
    """Order rows, newest first; every given field must match (ids and account exactly)."""
    o = t.orders
    stmt = select(o)
    for col, value in (
        (o.c.id, order_id),
        (o.c.merchant_order_id, merchant_order_id),
        (o.c.account, account),
        (o.c.merchant_id, merchant_id),
        (o.c.status, status),
    ):
        if value:
            stmt = stmt.where(col == value)
    if since is not None:
        stmt = stmt.where(o.c.created_at >= since)
    if until is not None:
        stmt = stmt.where(o.c.created_at < until)
    return list(
        (await tx.conn.execute(stmt.order_by(o.c.created_at.desc(), o.c.id.desc()).limit(limit))).all()
    )
