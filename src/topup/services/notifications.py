"""Webhook delivery: the `notify` job posts a stored event to the merchant until it is acknowledged.

The outbox writes an `events` row, a `deliveries` row and a `notify:<event_id>` job in the transaction
that makes an order final. The job runs in three steps so no HTTP call ever holds a transaction:
claim (read the delivery), send (signed POST, bounded timeout), record (an attempt row, then
`delivered`, a rescheduled job, or `gave_up`). At most `PER_MERCHANT_IN_FLIGHT` deliveries per merchant
are in flight in one process; further jobs of that merchant step aside briefly instead of holding a
worker slot, so a dead endpoint never delays other merchants.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog

from topup.clock import rfc3339
from topup.domain import notifications as schedule
from topup.domain.errors import NotFound
from topup.services import jobs
from topup.services.jobs import Job
from topup.services.ports.notifications import Delivery, DeliveryAttempt, DeliveryClaim
from topup.services.ports.webhooks import Webhook, WebhookResult, WebhookSender
from topup.services.uow import Transactions, UnitOfWork

log = structlog.get_logger()

PER_MERCHANT_IN_FLIGHT = 4
# A job whose merchant is at its in-flight bound runs again after this long (plus jitter).
STEP_ASIDE_S = 0.5


class DeliveryStatus:
    PENDING = "pending"
    """Not acknowledged yet; `next_at` says when the next try runs."""
    DELIVERED = "delivered"
    """A try got a 2xx."""
    GAVE_UP = "gave_up"
    """The retry window (25 h) passed without a 2xx, or the URL can never be called."""


@dataclass
class Notifier:
    """Runs `notify` jobs: claim -> send -> record."""

    db: Transactions
    sender: WebhookSender
    retry_scale: float = 1.0
    per_merchant: int = PER_MERCHANT_IN_FLIGHT
    # Deliveries in flight per merchant in this process (never awaited, so a plain count will do).
    in_flight: dict[str, int] = field(default_factory=dict)

    async def handle(self, job: Job[jobs.NotifyPayload]) -> None:
        """The `notify` job handler."""
        event_id = job.payload.event_id
        hook, window_start = await self._claim(job, event_id)
        if hook is None:
            return
        merchant = hook.merchant_id
        if self.in_flight.get(merchant, 0) >= self.per_merchant:
            # The merchant already has its share in flight: free this worker slot and come back soon.
            delay = STEP_ASIDE_S * (1 + random.random())
            await self.db.run_grouped(lambda tx: jobs.reschedule(tx, job, tx.now + delay))
            return
        self.in_flight[merchant] = self.in_flight.get(merchant, 0) + 1
        try:
            result = await self.sender.send(hook)
        finally:
            left = self.in_flight[merchant] - 1
            if left:
                self.in_flight[merchant] = left
            else:
                del self.in_flight[merchant]
        await self._record(job, event_id, window_start, result)

    async def _claim(self, job: Job[jobs.NotifyPayload], event_id: str) -> tuple[Webhook | None, float]:
        async def read(tx: UnitOfWork) -> DeliveryClaim | None:
            # Grouped with the other deliveries this worker claimed at that moment (one transaction).
            row = await tx.notifications.claim(event_id)
            if row is None or row.status != DeliveryStatus.PENDING:
                await jobs.finish(tx, job)
                return None
            return row

        row = await self.db.run_grouped(read)
        if row is None:
            return None, 0.0
        payload = orjson.loads(row.payload) if isinstance(row.payload, str) else row.payload
        body = orjson.dumps(payload)
        hook = Webhook(
            url=row.url,
            body=body,
            merchant_id=row.merchant_id,
            secret=row.secret,
            event_id=event_id,
            check_address=bool(row.notify_url) and row.notify_url == row.url,
        )
        return hook, float(job.payload.since or row.created_at)

    async def _record(self, job: Job, event_id: str, window_start: float, result: WebhookResult) -> None:
        error = result.error[:1000] if result.error else None

        async def record(tx: UnitOfWork) -> None:
            # Grouped with other results at that moment: database work only, safe to run again alone.
            await tx.notifications.add_attempt(event_id, result.status_code, result.latency_ms, error)
            if result.ok:
                await tx.notifications.delivered(event_id)
                await jobs.finish(tx, job)
                return
            failures = await tx.notifications.failures_since(event_id, window_start)
            nxt = (
                None
                if result.permanent
                else schedule.next_try_at(window_start, tx.now, failures, self.retry_scale)
            )
            if nxt is None:
                await tx.notifications.give_up(event_id)
                await jobs.finish(tx, job)
                fields = {"event_id": event_id, "failures": failures, "error": result.error}
                tx.after_commit(lambda: log.warning("webhook_gave_up", **fields))
                return
            await tx.notifications.retry_at(event_id, nxt)
            await jobs.reschedule(tx, job, nxt, result.error)

        await self.db.run_grouped(record)


# ---- operator and merchant reads -------------------------------------------------------------------


def render_delivery(d: Delivery, last: DeliveryAttempt | None = None) -> dict[str, Any]:
    out = {
        "event_id": d.event_id,
        "merchant_id": d.merchant_id,
        "order_id": d.order_id,
        "url": d.url,
        "status": d.status,
        "tries": d.tries,
        "next_at": rfc3339(d.next_at) if d.status == DeliveryStatus.PENDING else None,
        "created_at": rfc3339(d.created_at),
        "delivered_at": rfc3339(d.delivered_at),
        "last_attempt": None,
    }
    if last is not None:
        out["last_attempt"] = {
            "at": rfc3339(last.at),
            "status_code": last.status_code,
            "latency_ms": last.latency_ms,
            "error": last.error,
        }
    return out


async def list_deliveries(
    tx: UnitOfWork,
    status: str | None = None,
    merchant_id: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Deliveries oldest first (event ids are time-ordered), `{"items", "next_cursor"}`."""
    rows = await tx.notifications.deliveries(status, merchant_id, cursor, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    last = await tx.notifications.last_attempts([r.event_id for r in rows])
    return {
        "items": [render_delivery(r, last.get(r.event_id)) for r in rows],
        "next_cursor": rows[-1].event_id if more and rows else None,
    }


async def get_delivery(tx: UnitOfWork, event_id: str) -> dict[str, Any]:
    row = await tx.notifications.delivery(event_id)
    if row is None:
        raise NotFound(f"no webhook delivery for event {event_id}")
    last = await tx.notifications.last_attempts([event_id])
    return render_delivery(row, last.get(event_id))


async def requeue(tx: UnitOfWork, event_id: str) -> dict[str, Any]:
    """Operator: try this delivery again now, with a fresh retry window (also after delivered/gave_up)."""
    if not await tx.notifications.reopen(event_id):
        raise NotFound(f"no webhook delivery for event {event_id}")
    # Already queued: brought forward, unless a worker holds it right now (then it is being sent).
    await jobs.requeue(tx, jobs.NotifyPayload(event_id, since=tx.now))
    return await get_delivery(tx, event_id)


async def list_events(tx: UnitOfWork, merchant_id: str, after: str | None, limit: int) -> dict[str, Any]:
    """The merchant's events in order (by `seq`), after the given event id."""
    floor = 0
    if after:
        seq = await tx.notifications.event_seq(merchant_id, after)
        if seq is None:
            raise NotFound(f"no event {after} for this merchant")
        floor = seq
    rows = await tx.notifications.events_after(merchant_id, floor, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    items = []
    for r in rows:
        body = dict(r.payload)
        body["created_at"] = rfc3339(r.created_at)
        items.append(body)
    return {"items": items, "next_cursor": rows[-1].id if more and rows else None}
