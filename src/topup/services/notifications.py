"""Webhook delivery: the `notify` job posts a stored event to the merchant until it is acknowledged.

The outbox writes an `events` row, a `deliveries` row and a `notify:<event_id>` job in the transaction
that makes an order final. The job runs in three steps so no HTTP call ever holds a transaction:
claim (read the delivery), send (signed POST, bounded timeout), record (an attempt row, then
`delivered`, a rescheduled job, or `gave_up`). At most `PER_MERCHANT_IN_FLIGHT` deliveries per merchant
are in flight in one process; further jobs of that merchant step aside briefly instead of holding a
worker slot, so a dead endpoint never delays other merchants.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import structlog
from sqlalchemy import select, text, update

from topup.adapters.db import tables as t
from topup.adapters.db.engine import Database, Tx
from topup.adapters.notify.webhook import HttpWebhookSender, Webhook, WebhookResult, WebhookSender
from topup.clock import rfc3339
from topup.domain import notifications as schedule
from topup.domain.errors import NotFound
from topup.services import jobs
from topup.services.jobs import Job

log = structlog.get_logger()

PER_MERCHANT_IN_FLIGHT = 4
# A job whose merchant is at its in-flight bound runs again after this long (plus jitter).
STEP_ASIDE_S = 0.5


_CLAIM = (
    "SELECT d.url, d.status, d.merchant_id, d.created_at, e.payload, m.secret, o.notify_url"
    " FROM deliveries d JOIN events e ON e.id = d.event_id JOIN merchants m ON m.id = d.merchant_id"
    " LEFT OUTER JOIN orders o ON o.id = d.order_id WHERE d.event_id = $1"
)


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

    db: Database
    sender: WebhookSender
    retry_scale: float = 1.0
    per_merchant: int = PER_MERCHANT_IN_FLIGHT
    # Deliveries in flight per merchant in this process (never awaited, so a plain count will do).
    in_flight: dict[str, int] = field(default_factory=dict)

    async def handle(self, job: Job) -> None:
        """The `notify` job handler."""
        event_id = str(job.payload.get("event_id") or job.key.removeprefix("notify:"))
        hook, window_start = await self._claim(job, event_id)
        if hook is None:
            return
        merchant = hook.merchant_id
        if self.in_flight.get(merchant, 0) >= self.per_merchant:
            # The merchant already has its share in flight: free this worker slot and come back soon.
            async with self.db.transaction() as tx:
                await jobs.reschedule(tx, job.id, tx.now + STEP_ASIDE_S * (1 + random.random()))
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

    async def _claim(self, job: Job, event_id: str) -> tuple[Webhook | None, float]:
        async with self.db.reads() as tx:
            row = await tx.fetchrow(_CLAIM, event_id)
            if row is None or row.status != DeliveryStatus.PENDING:
                await jobs.finish(tx, job.id)
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
        return hook, float(job.payload.get("since") or row.created_at)

    async def _record(self, job: Job, event_id: str, window_start: float, result: WebhookResult) -> None:
        async with self.db.transaction() as tx:
            await tx.exec(
                "INSERT INTO delivery_attempts (event_id, at, status_code, latency_ms, error)"
                " VALUES ($1, $2, $3, $4, $5)",
                event_id,
                tx.now,
                result.status_code,
                result.latency_ms,
                result.error[:1000] if result.error else None,
            )
            tries = t.deliveries.c.tries + 1
            pending = (t.deliveries.c.event_id == event_id) & (
                t.deliveries.c.status == DeliveryStatus.PENDING
            )
            if result.ok:
                await tx.exec(
                    "UPDATE deliveries SET status = $1, tries = tries + 1, delivered_at = $2, next_at = NULL"
                    " WHERE event_id = $3 AND status = $4",
                    DeliveryStatus.DELIVERED,
                    tx.now,
                    event_id,
                    DeliveryStatus.PENDING,
                )
                await jobs.finish(tx, job.id)
                return
            failures = await self._failures_in_window(tx, event_id, window_start)
            nxt = (
                None
                if result.permanent
                else schedule.next_try_at(window_start, tx.now, failures, self.retry_scale)
            )
            if nxt is None:
                await tx.conn.execute(
                    update(t.deliveries)
                    .where(pending)
                    .values(status=DeliveryStatus.GAVE_UP, tries=tries, next_at=None)
                )
                await jobs.finish(tx, job.id)
                log.warning("webhook_gave_up", event_id=event_id, tries=tries, error=result.error)
                return
            await tx.conn.execute(update(t.deliveries).where(pending).values(tries=tries, next_at=nxt))
            await jobs.reschedule(tx, job.id, nxt, result.error)

    async def _failures_in_window(self, tx: Tx, event_id: str, window_start: float) -> int:
        """Failed tries since the window opened (an operator's retry opens a new one)."""
        return int(
            (
                await tx.conn.execute(
                    text(
                        "SELECT count(*) FROM delivery_attempts WHERE event_id = :e AND at >= :since"
                        " AND (status_code IS NULL OR status_code < 200 OR status_code >= 300)"
                    ),
                    {"e": event_id, "since": window_start},
                )
            ).scalar_one()
        )


# ---- operator and merchant reads -------------------------------------------------------------------


def render_delivery(d: Any, last: Any | None = None) -> dict[str, Any]:
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


async def _last_attempts(tx: Tx, event_ids: list[str]) -> dict[str, Any]:
    if not event_ids:
        return {}
    latest = (
        select(t.delivery_attempts.c.event_id, t.delivery_attempts.c.id)
        .where(t.delivery_attempts.c.event_id.in_(event_ids))
        .order_by(t.delivery_attempts.c.id)
    )
    ids = {r.event_id: r.id for r in (await tx.conn.execute(latest)).all()}
    if not ids:
        return {}
    rows = (
        await tx.conn.execute(select(t.delivery_attempts).where(t.delivery_attempts.c.id.in_(ids.values())))
    ).all()
    return {r.event_id: r for r in rows}


async def list_deliveries(
    tx: Tx,
    status: str | None = None,
    merchant_id: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Deliveries oldest first (event ids are time-ordered), `{"items", "next_cursor"}`."""
    q = select(t.deliveries).order_by(t.deliveries.c.event_id).limit(limit + 1)
    if status:
        q = q.where(t.deliveries.c.status == status)
    if merchant_id:
        q = q.where(t.deliveries.c.merchant_id == merchant_id)
    if cursor:
        q = q.where(t.deliveries.c.event_id > cursor)
    rows = (await tx.conn.execute(q)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    last = await _last_attempts(tx, [r.event_id for r in rows])
    return {
        "items": [render_delivery(r, last.get(r.event_id)) for r in rows],
        "next_cursor": rows[-1].event_id if more and rows else None,
    }


async def get_delivery(tx: Tx, event_id: str) -> dict[str, Any]:
    row = (await tx.conn.execute(select(t.deliveries).where(t.deliveries.c.event_id == event_id))).first()
    if row is None:
        raise NotFound(f"no webhook delivery for event {event_id}")
    last = await _last_attempts(tx, [event_id])
    return render_delivery(row, last.get(event_id))


async def requeue(tx: Tx, event_id: str) -> dict[str, Any]:
    """Operator: try this delivery again now, with a fresh retry window (also after delivered/gave_up)."""
    row = (
        await tx.conn.execute(
            select(t.deliveries).where(t.deliveries.c.event_id == event_id).with_for_update()
        )
    ).first()
    if row is None:
        raise NotFound(f"no webhook delivery for event {event_id}")
    await tx.conn.execute(
        update(t.deliveries)
        .where(t.deliveries.c.event_id == event_id)
        .values(status=DeliveryStatus.PENDING, next_at=tx.now)
    )
    payload = {"event_id": event_id, "since": tx.now}
    key = f"notify:{event_id}"
    if not await jobs.enqueue(tx, "notify", key, payload):
        # Already queued: bring it forward, unless a worker holds it right now (then it is being sent).
        moved = await tx.conn.execute(
            update(t.jobs)
            .where(
                t.jobs.c.key == key,
                (t.jobs.c.locked_until.is_(None)) | (t.jobs.c.locked_until < tx.now),
            )
            .values(run_at=tx.now, payload=payload, locked_until=None)
        )
        if moved.rowcount:
            tx.notify("topup_jobs")
            tx.jobs_enqueued = True
    return await get_delivery(tx, event_id)


async def list_events(tx: Tx, merchant_id: str, after: str | None, limit: int) -> dict[str, Any]:
    """The merchant's events in order (by `seq`), after the given event id."""
    floor = 0
    if after:
        seq = (
            await tx.conn.execute(
                select(t.events.c.seq).where(t.events.c.id == after, t.events.c.merchant_id == merchant_id)
            )
        ).scalar()
        if seq is None:
            raise NotFound(f"no event {after} for this merchant")
        floor = int(seq)
    rows = (
        await tx.conn.execute(
            select(t.events.c.id, t.events.c.payload, t.events.c.created_at)
            .where(t.events.c.merchant_id == merchant_id, t.events.c.seq > floor)
            .order_by(t.events.c.seq)
            .limit(limit + 1)
        )
    ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    items = []
    for r in rows:
        body = dict(r.payload if not isinstance(r.payload, str) else json.loads(r.payload))
        body["created_at"] = rfc3339(r.created_at)
        items.append(body)
    return {"items": items, "next_cursor": rows[-1].id if more and rows else None}


# ---- plug-in -----------------------------------------------------------------------------------------


def install(c: Any) -> None:
    """Register the `notify` job handler and the operator / merchant routes."""
    # Pinned sends (per-order notify URLs) keep no idle connections: see HttpWebhookSender.
    pinned = httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=0), trust_env=False)
    c.extras.setdefault("http_clients", []).append(pinned)
    sender = HttpWebhookSender(
        c.http, now=c.clock.now, allow_private=c.settings.allow_private_notify_urls, pinned_http=pinned
    )
    notifier = Notifier(c.db, sender, retry_scale=c.settings.notify_retry_scale)
    c.extras["notifier"] = notifier
    c.extras.setdefault("job_handlers", {})["notify"] = notifier.handle
    from topup.entrypoints.api import notification_routes

    c.extras.setdefault("routers", []).extend(notification_routes.routers())
    return None
