"""What the operator API and console read: catalog lists, group switch history, exceptions, and
everything that happened to one order."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import select

from topup.adapters.db import tables as t
from topup.adapters.db.repos.operators import exception_row
from topup.services.ports.catalog import ProductRow
from topup.services.ports.merchants import Merchant
from topup.services.ports.operators import ExceptionRow

if TYPE_CHECKING:
    from topup.adapters.db.engine import Tx


class SwitchRow(NamedTuple):
    """A sticky group's change of active channel."""

    group_code: str
    from_channel: str | None
    to_channel: str
    reason: str
    order_id: str | None
    at: float


class EventRow(NamedTuple):
    at: float
    attempt_no: int | None
    kind: str
    detail: Any


class CallbackRow(NamedTuple):
    channel_code: str
    ref: str
    status: str
    code: str | None
    message: str | None
    outcome: str | None
    received_at: float


class DeliveryAttemptRow(NamedTuple):
    at: float
    status_code: int | None
    latency_ms: float | None
    error: str | None


class DeliveryRow(NamedTuple):
    """A webhook delivery of the order's events, with its tries."""

    event_id: str
    url: str
    status: str
    tries: int
    next_at: float | None
    delivered_at: float | None
    attempts: list[DeliveryAttemptRow]


class PostingRow(NamedTuple):
    account_id: str
    amount: int


class TransferRow(NamedTuple):
    """A ledger transfer of the order, with its postings."""

    id: str
    kind: str
    amount: int
    created_at: float
    postings: list[PostingRow]


# ---- catalog and merchants


async def products(tx: Tx) -> list[ProductRow]:
    """Every product, by code."""
    rows = (await tx.conn.execute(select(t.products).order_by(t.products.c.code))).all()
    return [
        ProductRow(r.code, r.business_type, r.brand, r.name, int(r.face_value), int(r.price), r.enabled)
        for r in rows
    ]


async def group_codes(tx: Tx) -> list[str]:
    """Every group's code, sorted."""
    return [r.code for r in (await tx.conn.execute(select(t.groups.c.code).order_by(t.groups.c.code))).all()]


async def group_exists(tx: Tx, code: str) -> bool:
    return (await tx.conn.execute(select(t.groups).where(t.groups.c.code == code))).first() is not None


async def group_switches(tx: Tx, code: str | None = None, limit: int = 50) -> list[SwitchRow]:
    """A group's (or every group's) switches, newest first."""
    gs = t.group_switches
    stmt = select(gs)
    if code:
        stmt = stmt.where(gs.c.group_code == code)
    rows = (await tx.conn.execute(stmt.order_by(gs.c.id.desc()).limit(limit))).all()
    return [SwitchRow(r.group_code, r.from_channel, r.to_channel, r.reason, r.order_id, r.at) for r in rows]


async def merchants(tx: Tx) -> list[Merchant]:
    """Every merchant, by id."""
    rows = (await tx.conn.execute(select(t.merchants).order_by(t.merchants.c.id))).all()
    return [
        Merchant(r.id, r.name, r.secret, r.password_hash, r.notify_url, r.created_at, r.updated_at)
        for r in rows
    ]


# ---- exceptions


async def exceptions(
    tx: Tx, resolved: bool | None = None, kind: str | None = None, limit: int = 100
) -> list[ExceptionRow]:
    """Newest first; `resolved` None: open and resolved ones."""
    stmt = select(t.exceptions)
    if resolved is not None:
        stmt = stmt.where(
            t.exceptions.c.resolved_at.is_not(None) if resolved else t.exceptions.c.resolved_at.is_(None)
        )
    if kind:
        stmt = stmt.where(t.exceptions.c.kind == kind)
    rows = (await tx.conn.execute(stmt.order_by(t.exceptions.c.created_at.desc()).limit(limit))).all()
    return [exception_row(r) for r in rows]


# ---- one order's story


async def order_events(tx: Tx, order_id: str) -> list[EventRow]:
    """The order's timeline, oldest first."""
    evs = (
        await tx.conn.execute(
            select(t.order_events).where(t.order_events.c.order_id == order_id).order_by(t.order_events.c.id)
        )
    ).all()
    return [EventRow(e.at, e.attempt_no, e.kind, e.detail) for e in evs]


async def order_callbacks(tx: Tx, order_id: str) -> list[CallbackRow]:
    """The supplier callbacks for the order's attempts, as received."""
    cbs = (
        await tx.conn.execute(
            select(t.callbacks).where(t.callbacks.c.ref.like(f"{order_id}-%")).order_by(t.callbacks.c.id)
        )
    ).all()
    return [
        CallbackRow(cb.channel_code, cb.ref, cb.status, cb.code, cb.message, cb.outcome, cb.received_at)
        for cb in cbs
    ]


async def order_deliveries(tx: Tx, order_id: str) -> list[DeliveryRow]:
    """The order's webhook deliveries, each with its tries."""
    deliveries = (
        await tx.conn.execute(select(t.deliveries).where(t.deliveries.c.order_id == order_id))
    ).all()
    out = []
    for d in deliveries:
        tries = (
            await tx.conn.execute(
                select(t.delivery_attempts)
                .where(t.delivery_attempts.c.event_id == d.event_id)
                .order_by(t.delivery_attempts.c.id)
            )
        ).all()
        attempts = [DeliveryAttemptRow(a.at, a.status_code, a.latency_ms, a.error) for a in tries]
        out.append(DeliveryRow(d.event_id, d.url, d.status, d.tries, d.next_at, d.delivered_at, attempts))
    return out


async def order_transfers(tx: Tx, order_id: str) -> list[TransferRow]:
    """The order's ledger transfers, oldest first, each with its postings."""
    trs = (
        await tx.conn.execute(
            select(t.transfers).where(t.transfers.c.order_id == order_id).order_by(t.transfers.c.created_at)
        )
    ).all()
    out = []
    for tr in trs:
        ps = (await tx.conn.execute(select(t.postings).where(t.postings.c.transfer_id == tr.id))).all()
        postings = [PostingRow(p.account_id, int(p.amount)) for p in ps]
        out.append(TransferRow(tr.id, tr.kind, int(tr.amount), tr.created_at, postings))
    return out


async def order_exceptions(tx: Tx, order_id: str) -> list[ExceptionRow]:
    rows = (await tx.conn.execute(select(t.exceptions).where(t.exceptions.c.order_id == order_id))).all()
    return [exception_row(r) for r in rows]
