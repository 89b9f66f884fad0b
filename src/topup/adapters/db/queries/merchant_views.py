"""What the merchant-facing entrypoints read: the signing identity of a merchant, the moves of its
balance, and its event feed for the stream. Each takes a transaction and returns typed rows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import func, select

from topup.adapters.db import tables as t

if TYPE_CHECKING:
    from topup.adapters.db.engine import Tx


class MerchantKey(NamedTuple):
    """What checking a merchant's signature needs."""

    id: str
    secret: str
    notify_url: str | None


class BalancePosting(NamedTuple):
    """One posting of a transfer on one of the merchant's accounts."""

    id: str
    kind: str
    reference: str
    order_id: str | None
    payment_id: str | None
    created_at: float
    account_id: str
    amount: int


class FeedEvent(NamedTuple):
    """An event of the stream (`payload`: JSON as stored, parsed or text)."""

    seq: int
    payload: Any


class MerchantSeq(NamedTuple):
    merchant_id: str
    seq: int


async def merchant_key(tx: Tx, merchant_id: str) -> MerchantKey | None:
    row = (
        await tx.conn.execute(
            select(t.merchants.c.id, t.merchants.c.secret, t.merchants.c.notify_url).where(
                t.merchants.c.id == merchant_id
            )
        )
    ).first()
    return None if row is None else MerchantKey(row.id, row.secret, row.notify_url)


async def balance_postings(tx: Tx, accounts: list[str], limit: int = 200) -> list[BalancePosting]:
    """The latest postings on the given accounts, newest transfer first."""
    rows = (
        await tx.conn.execute(
            select(
                t.transfers.c.id,
                t.transfers.c.kind,
                t.transfers.c.reference,
                t.transfers.c.order_id,
                t.transfers.c.payment_id,
                t.transfers.c.created_at,
                t.postings.c.account_id,
                t.postings.c.amount,
            )
            .select_from(t.transfers.join(t.postings, t.postings.c.transfer_id == t.transfers.c.id))
            .where(t.postings.c.account_id.in_(accounts))
            .order_by(t.transfers.c.created_at.desc(), t.transfers.c.id.desc())
            .limit(limit)
        )
    ).all()
    return [
        BalancePosting(
            r.id, r.kind, r.reference, r.order_id, r.payment_id, r.created_at, r.account_id, int(r.amount)
        )
        for r in rows
    ]


# ---- the event feed ------------------------------------------------------------------------------


async def max_seq(tx: Tx, merchant_id: str | None = None) -> int:
    """The newest event's seq (of one merchant, when given); 0 when there is none."""
    q = select(func.max(t.events.c.seq))
    if merchant_id is not None:
        q = q.where(t.events.c.merchant_id == merchant_id)
    return int((await tx.conn.execute(q)).scalar() or 0)


async def newest_seq_per_merchant(tx: Tx, after: int) -> list[MerchantSeq]:
    """(merchant_id, seq) of each merchant's newest event past `after`."""
    rows = (
        await tx.conn.execute(
            select(t.events.c.merchant_id, func.max(t.events.c.seq).label("seq"))
            .where(t.events.c.seq > after)
            .group_by(t.events.c.merchant_id)
        )
    ).all()
    return [MerchantSeq(r.merchant_id, int(r.seq)) for r in rows]


async def events_after(tx: Tx, merchant_id: str, after: int, limit: int) -> list[FeedEvent]:
    """Up to `limit` of the merchant's events past seq `after`, oldest first."""
    rows = (
        await tx.conn.execute(
            select(t.events.c.seq, t.events.c.payload)
            .where(t.events.c.merchant_id == merchant_id, t.events.c.seq > after)
            .order_by(t.events.c.seq)
            .limit(limit)
        )
    ).all()
    return [FeedEvent(int(r.seq), r.payload) for r in rows]


async def seqs_between(tx: Tx, merchant_id: str, floor: int, high: int) -> list[int]:
    """The merchant's event seqs strictly between `floor` and `high`."""
    seqs = (
        await tx.conn.execute(
            select(t.events.c.seq).where(
                t.events.c.merchant_id == merchant_id,
                t.events.c.seq > floor,
                t.events.c.seq < high,
            )
        )
    ).scalars()
    return [int(s) for s in seqs]


async def events_by_seq(tx: Tx, seqs: list[int]) -> list[FeedEvent]:
    """The events with the given seqs, oldest first."""
    rows = (
        await tx.conn.execute(
            select(t.events.c.seq, t.events.c.payload)
            .where(t.events.c.seq.in_(seqs))
            .order_by(t.events.c.seq)
        )
    ).all()
    return [FeedEvent(int(r.seq), r.payload) for r in rows]
