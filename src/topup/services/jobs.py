"""Durable due work: enqueue in the caller's transaction, claim with a lease, finish by deleting."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, text, update
from sqlalchemy.dialects import postgresql, sqlite

from topup.adapters.db import tables as t
from topup.adapters.db.engine import Database, Tx
from topup.adapters.db.helpers import insert_ignore


@dataclass
class Job:
    id: int
    kind: str
    key: str
    payload: dict[str, Any]
    tries: int


# Jobs due later than this are found by the workers' polling (every `worker_poll_s`, which must stay
# below it), so they wake nobody: a deadline per attempt would otherwise wake every worker for nothing.
WAKE_WITHIN_S = 0.5


def _row(tx: Tx, kind: str, key: str, payload: dict[str, Any], run_at: float | None) -> dict[str, Any]:
    return {
        "kind": kind,
        "key": key,
        "payload": payload,
        "run_at": tx.now if run_at is None else run_at,
        "tries": 0,
        "created_at": tx.now,
    }


async def enqueue(tx: Tx, kind: str, key: str, payload: dict[str, Any], run_at: float | None = None) -> bool:
    """Queue work unless a job with the same key is already queued; released to workers on commit."""
    inserted = await insert_ignore(tx, t.jobs, _row(tx, kind, key, payload, run_at), ["key"])
    if inserted and (run_at is None or run_at <= tx.now + WAKE_WITHIN_S):
        if tx.is_postgres and not tx.jobs_enqueued:
            await tx.conn.execute(text("SELECT pg_notify('topup_jobs', '')"))
        tx.jobs_enqueued = True
    return inserted


async def enqueue_many(
    tx: Tx, kind: str, items: Sequence[tuple[str, dict[str, Any]]], run_at: float | None = None
) -> None:
    """`enqueue` for many `(key, payload)` jobs of one kind, each skipped if its key is already queued.

    The first goes through `enqueue` (which arranges the wake-up after commit); the rest are one
    executemany of the same rows, so 10,000 jobs stay quick.
    """
    if not items:
        return
    (key, payload), rest = items[0], items[1:]
    await enqueue(tx, kind, key, payload, run_at)
    if not rest:
        return
    dialect = postgresql if tx.is_postgres else sqlite
    stmt = dialect.insert(t.jobs).on_conflict_do_nothing(index_elements=["key"])
    await tx.conn.execute(stmt, [_row(tx, kind, k, p, run_at) for k, p in rest])


async def finish(tx: Tx, job_id: int) -> None:
    await tx.conn.execute(delete(t.jobs).where(t.jobs.c.id == job_id))


async def reschedule(tx: Tx, job_id: int, run_at: float, error: str | None = None) -> None:
    await tx.conn.execute(
        update(t.jobs)
        .where(t.jobs.c.id == job_id)
        .values(run_at=run_at, locked_until=None, last_error=error[:1000] if error else None)
    )


async def delete_key(tx: Tx, key: str) -> None:
    await tx.conn.execute(delete(t.jobs).where(t.jobs.c.key == key))


_CLAIM_PG = text(
    """
    UPDATE jobs SET locked_until = :lease, tries = tries + 1
    WHERE id IN (
        SELECT id FROM jobs
        WHERE run_at <= :now AND (locked_until IS NULL OR locked_until < :now)
        ORDER BY run_at LIMIT :limit
        FOR UPDATE SKIP LOCKED)
    RETURNING id, kind, key, payload, tries
    """
)
_CLAIM_SQLITE = text(
    """
    UPDATE jobs SET locked_until = :lease, tries = tries + 1
    WHERE id IN (
        SELECT id FROM jobs
        WHERE run_at <= :now AND (locked_until IS NULL OR locked_until < :now)
        ORDER BY run_at LIMIT :limit)
    RETURNING id, kind, key, payload, tries
    """
)


_NEXT_DUE = text("SELECT min(run_at) FROM jobs WHERE locked_until IS NULL OR locked_until < :now")


async def claim_due(db: Database, limit: int, lease_s: float) -> list[Job]:
    """Claim up to `limit` due jobs; two workers never hold the same job (SKIP LOCKED on PostgreSQL)."""
    return (await claim_due_and_next(db, limit, lease_s))[0]


async def claim_due_and_next(db: Database, limit: int, lease_s: float) -> tuple[list[Job], float | None]:
    """`claim_due`, plus (when fewer than `limit` were due) when the next unclaimed job falls due.

    One transaction instead of a claim, an empty claim and a `next_due_at` for every wake-up.
    """
    async with db.transaction() as tx:
        stmt = _CLAIM_PG if tx.is_postgres else _CLAIM_SQLITE
        rows = (await tx.conn.execute(stmt, {"now": tx.now, "lease": tx.now + lease_s, "limit": limit})).all()
        nxt = None
        if len(rows) < limit:
            nxt = (await tx.conn.execute(_NEXT_DUE, {"now": tx.now})).scalar()
    return _jobs(rows), nxt


def _jobs(rows: Any) -> list[Job]:
    import json

    out = []
    for r in rows:
        payload = r.payload
        if isinstance(payload, str):
            payload = json.loads(payload)
        out.append(Job(r.id, r.kind, r.key, payload or {}, r.tries))
    return out


async def next_due_at(db: Database) -> float | None:
    async with db.transaction() as tx:
        return (await tx.conn.execute(_NEXT_DUE, {"now": tx.now})).scalar()
