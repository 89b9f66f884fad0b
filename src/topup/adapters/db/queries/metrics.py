"""The grouped counts `/metrics` reports, computed at scrape time (see `topup.entrypoints.metrics`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import case, func, select, text, union_all

from topup.adapters.db import tables as t
from topup.domain.orders import FINAL_STATUSES

if TYPE_CHECKING:
    from topup.adapters.db.engine import Database, Tx


class Counted(NamedTuple):
    """How many rows share `labels` (the grouped columns, in the order the query names them)."""

    labels: tuple[str, ...]
    n: int


class CallbackDelays(NamedTuple):
    """Callbacks received in a window: how many, their summed delay, and how many within each bucket."""

    n: int
    total: float
    within: list[int]


class LastBalance(NamedTuple):
    channel_code: str
    amount: int
    currency: str | None
    checked_at: float


class ChannelOperations(NamedTuple):
    code: str
    min_balance: int | None
    paused: str | None
    rate_limit_per_s: int | None


def _counted(rows: Any) -> list[Counted]:
    return [Counted(tuple(r[:-1]), int(r[-1])) for r in rows.all()]


# Finished rows count over this window only: every scrape reads open rows and one day of history,
# not the whole table (docs/performance.md, "History: 5 million orders").
FINISHED_WINDOW_S = 86_400.0


async def orders_by_status_and_type(tx: Tx) -> list[Counted]:
    """Open orders (every one), and orders that finished in the last FINISHED_WINDOW_S."""
    o = t.orders
    by = (o.c.status, o.c.business_type)
    open_ = select(*by, func.count().label("n")).where(o.c.completed_at.is_(None)).group_by(*by)
    # Naming the final statuses lets ix_orders_status_completed read one day per status.
    recent = (
        select(*by, func.count().label("n"))
        .where(o.c.status.in_(sorted(FINAL_STATUSES)), o.c.completed_at >= tx.now - FINISHED_WINDOW_S)
        .group_by(*by)
    )
    return _counted(await tx.conn.execute(union_all(open_, recent)))


async def attempts_by_channel_and_status(tx: Tx) -> list[Counted]:
    a = t.attempts
    return _counted(
        await tx.conn.execute(
            select(a.c.channel_code, a.c.status, func.count().label("n")).group_by(
                a.c.channel_code, a.c.status
            )
        )
    )


async def switches_by_group_and_reason(tx: Tx) -> list[Counted]:
    gs = t.group_switches
    return _counted(
        await tx.conn.execute(
            select(gs.c.group_code, gs.c.reason, func.count().label("n")).group_by(
                gs.c.group_code, gs.c.reason
            )
        )
    )


async def active_channels(tx: Tx) -> list[tuple[str, str | None]]:
    """(group, active channel) of every group."""
    rows = (await tx.conn.execute(select(t.groups.c.code, t.groups.c.active_channel))).all()
    return [(r.code, r.active_channel) for r in rows]


async def channels_enabled(tx: Tx) -> list[tuple[str, bool]]:
    rows = (await tx.conn.execute(select(t.channels.c.code, t.channels.c.enabled))).all()
    return [(r.code, bool(r.enabled)) for r in rows]


async def callback_delays(tx: Tx, since: float, buckets: Sequence[float]) -> CallbackDelays:
    """Callbacks received since `since`: received_at - dispatched_at of the attempt each answers."""
    a, cb = t.attempts, t.callbacks
    delay = cb.c.received_at - a.c.dispatched_at
    cols = [func.sum(case((delay <= b, 1), else_=0)).label(f"le{i}") for i, b in enumerate(buckets)]
    row = (
        await tx.conn.execute(
            select(func.count().label("n"), func.coalesce(func.sum(delay), 0.0).label("total"), *cols)
            .select_from(cb.join(a, a.c.ref == cb.c.ref))
            .where(cb.c.received_at >= since, a.c.dispatched_at.is_not(None))
        )
    ).one()
    within = [int(getattr(row, f"le{i}") or 0) for i in range(len(buckets))]
    return CallbackDelays(int(row.n), float(row.total), within)


async def deliveries_by_status(tx: Tx) -> list[Counted]:
    """Pending notifications (every one), and the others created in the last FINISHED_WINDOW_S."""
    d = t.deliveries
    pending = select(d.c.status, func.count().label("n")).where(d.c.status == "pending").group_by(d.c.status)
    recent = (
        select(d.c.status, func.count().label("n"))
        .where(d.c.status.in_(("delivered", "gave_up")), d.c.created_at >= tx.now - FINISHED_WINDOW_S)
        .group_by(d.c.status)
    )
    return _counted(await tx.conn.execute(union_all(pending, recent)))


async def delivery_backlog(tx: Tx) -> tuple[int, float | None]:
    """(delivery attempts after each notification's first, when the oldest pending one was created).

    Both read partial indexes (`tries > 1`, `status = 'pending'`): the rows of the common case, one
    delivery that succeeded at once, are never visited.
    """
    d = t.deliveries
    retries = select(func.coalesce(func.sum(d.c.tries - 1), 0)).where(d.c.tries > 1).scalar_subquery()
    oldest = select(func.min(d.c.created_at)).where(d.c.status == "pending").scalar_subquery()
    row = (await tx.conn.execute(select(retries.label("retries"), oldest.label("oldest")))).one()
    return int(row.retries), None if row.oldest is None else float(row.oldest)


async def delivery_attempts_by_result(tx: Tx) -> list[Counted]:
    """Webhook delivery attempts, `ok` (2xx) or `error`."""
    da = t.delivery_attempts
    ok = case((da.c.status_code.between(200, 299), "ok"), else_="error")
    return _counted(await tx.conn.execute(select(ok.label("result"), func.count().label("n")).group_by(ok)))


async def jobs_by_kind_and_state(tx: Tx, now: float) -> list[Counted]:
    """Queued jobs by kind and state (`running`, `due`, `scheduled`)."""
    j = t.jobs
    unclaimed = (j.c.locked_until.is_(None)) | (j.c.locked_until < now)
    state = case((~unclaimed, "running"), (j.c.run_at <= now, "due"), else_="scheduled")
    return _counted(
        await tx.conn.execute(
            select(j.c.kind, state.label("state"), func.count().label("n")).group_by(j.c.kind, state)
        )
    )


async def deferred_by_channel(tx: Tx) -> list[Counted]:
    """Route jobs put back because their channel was slow (`fulfilment` records the channel)."""
    j = t.jobs
    channel = j.c.payload["channel"].as_string()
    return _counted(
        await tx.conn.execute(
            select(channel.label("channel"), func.count().label("n"))
            .where(j.c.kind == "route", channel.is_not(None))
            .group_by(channel)
        )
    )


async def open_exceptions_by_kind(tx: Tx) -> list[Counted]:
    e = t.exceptions
    return _counted(
        await tx.conn.execute(
            select(e.c.kind, func.count().label("n")).where(e.c.resolved_at.is_(None)).group_by(e.c.kind)
        )
    )


_LAST_BALANCES = (
    "SELECT b.channel_code, b.amount, b.currency, b.checked_at FROM channel_balances b"
    " JOIN (SELECT channel_code, max(id) AS id FROM channel_balances WHERE ok GROUP BY channel_code) last"
    " ON b.id = last.id"
)


async def last_balances(tx: Tx) -> list[LastBalance]:
    """Each channel's last successful balance check."""
    return [
        LastBalance(r.channel_code, int(r.amount), r.currency, float(r.checked_at))
        for r in await tx.fetch(_LAST_BALANCES)
    ]


async def channel_operations(tx: Tx) -> list[ChannelOperations]:
    """Every channel's minimum balance, pause and rate limit, by code."""
    return [
        ChannelOperations(
            r.code, None if r.min_balance is None else int(r.min_balance), r.paused, r.rate_limit_per_s
        )
        for r in await tx.fetch(
            "SELECT code, min_balance, paused, rate_limit_per_s FROM channels ORDER BY code"
        )
    ]


async def ping(db: Database) -> None:
    """`SELECT 1` on a plain connection, not a write transaction (readiness must not queue behind
    SQLite's writer)."""
    async with db.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
