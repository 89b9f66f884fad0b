"""Every statement of the job queue (implements `services.ports.jobs`).

`SqlJobs` works inside a unit of work; `claim_due_and_next` and `next_due_at` run on the `Database`
itself (the claim on PostgreSQL is one statement outside any BEGIN/COMMIT).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import update

from topup.adapters.db import tables as t
from topup.services.ports.jobs import NewJob, StoredJob

if TYPE_CHECKING:
    from topup.adapters.db.engine import Database, Tx

_INSERT = (
    "INSERT INTO jobs (kind, key, payload, run_at, tries, created_at) VALUES ($1, $2, $3, $4, 0, $5)"
    " ON CONFLICT (key) DO NOTHING"
)


class SqlJobs:
    __slots__ = ("tx",)

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    def _row(self, job: NewJob) -> tuple[Any, ...]:
        return (job.kind, job.key, job.payload, job.run_at, self.tx.now)

    async def add(self, job: NewJob) -> bool:
        return await self.tx.exec(_INSERT, *self._row(job)) == 1

    async def add_many(self, jobs: Sequence[NewJob]) -> None:
        await self.tx.executemany(_INSERT, [self._row(j) for j in jobs])

    def wake(self) -> None:
        self.tx.notify("topup_jobs")
        self.tx.jobs_enqueued = True

    def wake_here(self) -> None:
        self.tx.jobs_enqueued = True

    # By id and key: SQLite reuses a deleted row's id (see `services.jobs.JobRef`).
    async def finish(self, job_id: int, key: str) -> None:
        await self.tx.exec("DELETE FROM jobs WHERE id = $1 AND key = $2", job_id, key)

    async def reschedule(self, job_id: int, key: str, run_at: float, error: str | None = None) -> None:
        await self.tx.exec(
            "UPDATE jobs SET run_at = $1, locked_until = NULL, last_error = $2 WHERE id = $3 AND key = $4",
            run_at,
            error[:1000] if error else None,
            job_id,
            key,
        )

    async def defer(self, job_id: int, key: str, run_at: float, payload: str) -> None:
        await self.tx.exec(
            "UPDATE jobs SET run_at = $1, locked_until = NULL, tries = tries - 1, payload = $2"
            " WHERE id = $3 AND key = $4",
            run_at,
            payload,
            job_id,
            key,
        )

    async def delete_key(self, key: str) -> None:
        await self.tx.exec("DELETE FROM jobs WHERE key = $1", key)

    async def bring_forward(self, key: str, run_at: float) -> bool:
        moved = await self.tx.exec(
            "UPDATE jobs SET run_at = $1 WHERE key = $2 AND run_at > $1"
            " AND (locked_until IS NULL OR locked_until < $3)",
            run_at,
            key,
            self.tx.now,
        )
        return bool(moved)

    async def requeue(self, key: str, run_at: float, payload: dict[str, Any]) -> bool:
        moved = await self.tx.conn.execute(
            update(t.jobs)
            .where(
                t.jobs.c.key == key,
                (t.jobs.c.locked_until.is_(None)) | (t.jobs.c.locked_until < self.tx.now),
            )
            .values(run_at=run_at, payload=payload, locked_until=None)
        )
        return bool(moved.rowcount)

    async def postpone(self, key: str, run_at: float) -> None:
        await self.tx.exec(
            "UPDATE jobs SET run_at = $1 WHERE key = $2 AND locked_until IS NULL AND run_at < $1",
            run_at,
            key,
        )


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


async def claim_due(db: Database, limit: int, lease_s: float) -> list[StoredJob]:
    """Claim up to `limit` due jobs; two workers never hold the same job (SKIP LOCKED on PostgreSQL)."""
    return (await claim_due_and_next(db, limit, lease_s))[0]


async def claim_due_and_next(
    db: Database, limit: int, lease_s: float, skip_routes: bool = False
) -> tuple[list[StoredJob], float | None]:
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


def _jobs(rows: Any) -> list[StoredJob]:
    out = []
    for r in rows:
        payload = r.payload
        if isinstance(payload, str):
            payload = orjson.loads(payload)
        out.append(StoredJob(r.id, r.kind, r.key, payload or {}, r.tries))
    return out


async def next_due_at(db: Database) -> float | None:
    async with db.transaction() as tx:
        return await _next_due(tx)
