"""Durable due work: enqueue in the caller's transaction, claim with a lease, finish by deleting."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from topup.adapters.db.engine import Database, Tx


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


def _row(tx: Tx, kind: str, key: str, payload: dict[str, Any], run_at: float | None) -> tuple[Any, ...]:
    return (kind, key, orjson.dumps(payload).decode(), tx.now if run_at is None else run_at, tx.now)


_INSERT = (
    "INSERT INTO jobs (kind, key, payload, run_at, tries, created_at) VALUES ($1, $2, $3, $4, 0, $5)"
    " ON CONFLICT (key) DO NOTHING"
)


async def enqueue(tx: Tx, kind: str, key: str, payload: dict[str, Any], run_at: float | None = None) -> bool:
    """Queue work unless a job with the same key is already queued; released to workers on commit."""
    inserted = await tx.exec(_INSERT, *_row(tx, kind, key, payload, run_at)) == 1
    if inserted and (run_at is None or run_at <= tx.now + WAKE_WITHIN_S):
        tx.notify("topup_jobs")
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
    if rest:
        await tx.executemany(_INSERT, [_row(tx, kind, k, p, run_at) for k, p in rest])


async def finish(tx: Tx, job_id: int) -> None:
    await tx.exec("DELETE FROM jobs WHERE id = $1", job_id)


async def reschedule(tx: Tx, job_id: int, run_at: float, error: str | None = None) -> None:
    await tx.exec(
        "UPDATE jobs SET run_at = $1, locked_until = NULL, last_error = $2 WHERE id = $3",
        run_at,
        error[:1000] if error else None,
        job_id,
    )


async def defer(tx: Tx, job_id: int, run_at: float, payload: dict[str, Any]) -> None:
    """Put a claimed job back for later without counting the claim as a try (its handler did not
    fail; it chose to wait), with a new payload to remember why."""
    await tx.exec(
        "UPDATE jobs SET run_at = $1, locked_until = NULL, tries = tries - 1, payload = $2 WHERE id = $3",
        run_at,
        orjson.dumps(payload).decode(),
        job_id,
    )


async def delete_key(tx: Tx, key: str) -> None:
    await tx.exec("DELETE FROM jobs WHERE key = $1", key)


_CLAIM = """
    UPDATE jobs SET locked_until = $1, tries = tries + 1
    WHERE id IN (
        SELECT id FROM jobs
        WHERE run_at <= $2 AND (locked_until IS NULL OR locked_until < $2){kinds}
        ORDER BY run_at LIMIT $3{lock})
    RETURNING id, kind, key, payload, tries
"""
# Leaving route jobs for later: the literal predicate lets PostgreSQL use `ix_jobs_run_at_not_route`
# instead of walking a 10,000-job route backlog in `ix_jobs_run_at` on every claim.
_NOT_ROUTE = " AND kind <> 'route'"
_CLAIM_PG = _CLAIM.format(lock=" FOR UPDATE SKIP LOCKED", kinds="")
_CLAIM_PG_NOT_ROUTE = _CLAIM.format(lock=" FOR UPDATE SKIP LOCKED", kinds=_NOT_ROUTE)
_CLAIM_SQLITE = _CLAIM.format(lock="", kinds="")
_CLAIM_SQLITE_NOT_ROUTE = _CLAIM.format(lock="", kinds=_NOT_ROUTE)
_CLAIM_AND_NEXT = """
    WITH c AS ({claim})
    SELECT id, kind, key, payload, tries, NULL::float8 AS due FROM c
    UNION ALL
    SELECT NULL, NULL, NULL, NULL, NULL, (
        SELECT min(run_at) FROM jobs
        WHERE (locked_until IS NULL OR locked_until < $2) AND id NOT IN (SELECT id FROM c))
"""
_CLAIM_AND_NEXT_PG = _CLAIM_AND_NEXT.format(claim=_CLAIM_PG)
_CLAIM_AND_NEXT_PG_NOT_ROUTE = _CLAIM_AND_NEXT.format(claim=_CLAIM_PG_NOT_ROUTE)
_NEXT_DUE = "SELECT min(run_at) AS due FROM jobs WHERE locked_until IS NULL OR locked_until < $1"


async def claim_due(db: Database, limit: int, lease_s: float) -> list[Job]:
    """Claim up to `limit` due jobs; two workers never hold the same job (SKIP LOCKED on PostgreSQL)."""
    return (await claim_due_and_next(db, limit, lease_s))[0]


async def claim_due_and_next(
    db: Database, limit: int, lease_s: float, skip_routes: bool = False
) -> tuple[list[Job], float | None]:
    """`claim_due`, plus (when fewer than `limit` were due) when the next unclaimed job falls due.

    One transaction instead of a claim, an empty claim and a `next_due_at` for every wake-up.
    `skip_routes` leaves `route` jobs to later (or to another worker).
    """
    if db.is_postgres:
        # One statement, on its own (no BEGIN/COMMIT): the claim and, past the rows it took, the next due.
        async with db.reads() as tx:
            sql = _CLAIM_AND_NEXT_PG_NOT_ROUTE if skip_routes else _CLAIM_AND_NEXT_PG
            rows = await tx.fetch(sql, tx.now + lease_s, tx.now, limit)
        claimed = [r for r in rows if r.id is not None]
        due = next((r.due for r in rows if r.id is None), None)
        nxt = float(due) if due is not None and len(claimed) < limit else None
        return _jobs(claimed), nxt
    async with db.transaction() as tx:
        sql = _CLAIM_SQLITE_NOT_ROUTE if skip_routes else _CLAIM_SQLITE
        rows = await tx.fetch(sql, tx.now + lease_s, tx.now, limit)
        nxt = None
        if len(rows) < limit:
            nxt = await _next_due(tx)
    return _jobs(rows), nxt


async def _next_due(tx: Tx) -> float | None:
    row = await tx.fetchrow(_NEXT_DUE, tx.now)
    return None if row is None or row.due is None else float(row.due)


def _jobs(rows: Any) -> list[Job]:
    out = []
    for r in rows:
        payload = r.payload
        if isinstance(payload, str):
            payload = orjson.loads(payload)
        out.append(Job(r.id, r.kind, r.key, payload or {}, r.tries))
    return out


async def next_due_at(db: Database) -> float | None:
    async with db.transaction() as tx:
        return await _next_due(tx)
