"""The job queue in memory (implements `services.ports.jobs`), plus the claim a test's worker loop uses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from topup.adapters.db.memory.state import State, StoredJobRow
from topup.services.ports.jobs import NewJob, StoredJob

if TYPE_CHECKING:
    from topup.adapters.db.memory.uow import MemoryUnitOfWork


class MemoryJobs:
    def __init__(self, uow: MemoryUnitOfWork) -> None:
        self.uow = uow

    def _by_id(self, job_id: int, key: str) -> StoredJobRow | None:
        job = self.uow.state.jobs.get(key)
        return job if job is not None and job.id == job_id else None

    async def add(self, job: NewJob) -> bool:
        s = self.uow.state
        if job.key in s.jobs:
            return False
        s.jobs[job.key] = StoredJobRow(s.next_id(), job.kind, job.key, job.payload, job.run_at)
        return True

    async def add_many(self, jobs: Sequence[NewJob]) -> None:
        for job in jobs:
            await self.add(job)

    def wake(self) -> None:
        self.uow.woke = True

    def wake_here(self) -> None:
        self.uow.woke = True

    async def finish(self, job_id: int, key: str) -> None:
        job = self._by_id(job_id, key)
        if job is not None:
            del self.uow.state.jobs[job.key]

    async def reschedule(self, job_id: int, key: str, run_at: float, error: str | None = None) -> None:
        job = self._by_id(job_id, key)
        if job is not None:
            job.run_at, job.locked_until, job.last_error = run_at, None, error[:1000] if error else None

    async def defer(self, job_id: int, key: str, run_at: float, payload: str) -> None:
        job = self._by_id(job_id, key)
        if job is not None:
            job.run_at, job.locked_until, job.tries, job.payload = run_at, None, job.tries - 1, payload

    async def delete_key(self, key: str) -> None:
        self.uow.state.jobs.pop(key, None)

    def _unclaimed(self, key: str) -> StoredJobRow | None:
        job = self.uow.state.jobs.get(key)
        if job is None or (job.locked_until is not None and job.locked_until >= self.uow.now):
            return None
        return job

    async def bring_forward(self, key: str, run_at: float) -> bool:
        job = self._unclaimed(key)
        if job is None or job.run_at <= run_at:
            return False
        job.run_at = run_at
        return True

    async def requeue(self, key: str, run_at: float, payload: dict[str, Any]) -> bool:
        job = self._unclaimed(key)
        if job is None:
            return False
        job.run_at, job.payload, job.locked_until = run_at, orjson.dumps(payload).decode(), None
        return True

    async def postpone(self, key: str, run_at: float) -> None:
        job = self.uow.state.jobs.get(key)
        if job is not None and job.locked_until is None and job.run_at < run_at:
            job.run_at = run_at


def next_due(state: State) -> StoredJobRow | None:
    """The unclaimed job due first, however far ahead."""
    free = [j for j in state.jobs.values() if j.locked_until is None]
    return min(free, key=lambda j: (j.run_at, j.id)) if free else None


def claim(state: State, job: StoredJobRow, now: float, lease_s: float) -> StoredJob:
    """Claim `job` as a worker does (a try counted, leased until `now + lease_s`)."""
    job.tries += 1
    job.locked_until = now + lease_s
    return StoredJob(job.id, job.kind, job.key, orjson.loads(job.payload), job.tries)
