"""Reading the `events` table for the stream: seqs, pages of one merchant's events, push messages."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select

from topup.adapters.db import tables as t
from topup.adapters.db.engine import Database
from topup.entrypoints.stream.cursor import StreamCursor
from topup.services.outbox import event_message

# Events read per database round trip.
PAGE = 100


async def _max_seq(db: Database, merchant_id: str | None = None) -> int:
    async with db.transaction() as tx:
        q = select(func.max(t.events.c.seq))
        if merchant_id is not None:
            q = q.where(t.events.c.merchant_id == merchant_id)
        return int((await tx.conn.execute(q)).scalar() or 0)


async def event_seq(db: Database, merchant_id: str, event_id: str) -> int | None:
    async with db.transaction() as tx:
        seq = (
            await tx.conn.execute(
                select(t.events.c.seq).where(t.events.c.id == event_id, t.events.c.merchant_id == merchant_id)
            )
        ).scalar()
    return None if seq is None else int(seq)


async def newest_seq_per_merchant(db: Database, after: int) -> Sequence[Any]:
    """(merchant_id, seq) of each merchant's newest event past `after`: whose connections to wake."""
    async with db.transaction() as tx:
        return (
            await tx.conn.execute(
                select(t.events.c.merchant_id, func.max(t.events.c.seq).label("seq"))
                .where(t.events.c.seq > after)
                .group_by(t.events.c.merchant_id)
            )
        ).all()


async def events_after(db: Database, merchant_id: str, after: int) -> Sequence[Any]:
    """Up to `PAGE` of the merchant's events past seq `after`, oldest first."""
    async with db.transaction() as tx:
        return (
            await tx.conn.execute(
                select(t.events.c.seq, t.events.c.payload)
                .where(t.events.c.merchant_id == merchant_id, t.events.c.seq > after)
                .order_by(t.events.c.seq)
                .limit(PAGE)
            )
        ).all()


async def late_events(db: Database, merchant_id: str, cursor: StreamCursor) -> Sequence[Any]:
    """Events now visible between the cursor's floor and high mark that it never sent (late commits)."""
    async with db.transaction() as tx:
        seqs = (
            await tx.conn.execute(
                select(t.events.c.seq).where(
                    t.events.c.merchant_id == merchant_id,
                    t.events.c.seq > cursor.floor,
                    t.events.c.seq < cursor.high,
                )
            )
        ).scalars()
        late = cursor.missing([int(s) for s in seqs])
        rows: Sequence[Any] = []
        if late:
            rows = (
                await tx.conn.execute(
                    select(t.events.c.seq, t.events.c.payload)
                    .where(t.events.c.seq.in_(late[:PAGE]))
                    .order_by(t.events.c.seq)
                )
            ).all()
    return rows


def _push(row: Any) -> dict[str, Any]:
    body = event_message(row) if not isinstance(row.payload, str) else json.loads(row.payload)
    return {"type": body["type"], "event_id": body["event_id"], "order": body["order"]}
