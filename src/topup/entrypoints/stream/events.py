"""Reading the `events` table for the stream: seqs, pages of one merchant's events, push messages."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from topup.adapters.db.engine import Database
from topup.adapters.db.queries import merchant_views as q
from topup.entrypoints.stream.cursor import StreamCursor
from topup.services.outbox import event_message

# Events read per database round trip.
PAGE = 100


async def _max_seq(db: Database, merchant_id: str | None = None) -> int:
    async with db.transaction() as tx:
        return await q.max_seq(tx, merchant_id)


async def event_seq(db: Database, merchant_id: str, event_id: str) -> int | None:
    async with db.transaction() as tx:
        return await tx.notifications.event_seq(merchant_id, event_id)


async def newest_seq_per_merchant(db: Database, after: int) -> Sequence[q.MerchantSeq]:
    """(merchant_id, seq) of each merchant's newest event past `after`: whose connections to wake."""
    async with db.transaction() as tx:
        return await q.newest_seq_per_merchant(tx, after)


async def events_after(db: Database, merchant_id: str, after: int) -> Sequence[q.FeedEvent]:
    """Up to `PAGE` of the merchant's events past seq `after`, oldest first."""
    async with db.transaction() as tx:
        return await q.events_after(tx, merchant_id, after, PAGE)


async def late_events(db: Database, merchant_id: str, cursor: StreamCursor) -> Sequence[q.FeedEvent]:
    """Events now visible between the cursor's floor and high mark that it never sent (late commits)."""
    async with db.transaction() as tx:
        late = cursor.missing(await q.seqs_between(tx, merchant_id, cursor.floor, cursor.high))
        rows: Sequence[q.FeedEvent] = []
        if late:
            rows = await q.events_by_seq(tx, late[:PAGE])
    return rows


def _push(row: Any) -> dict[str, Any]:
    body = event_message(row) if not isinstance(row.payload, str) else json.loads(row.payload)
    return {"type": body["type"], "event_id": body["event_id"], "order": body["order"]}
