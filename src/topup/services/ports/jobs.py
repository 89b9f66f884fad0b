"""Storage the jobs use cases need (see `topup.services.uow.UnitOfWork`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol


class StoredJob(NamedTuple):
    """A claimed row of the `jobs` table as stored: `topup.services.jobs.decode` types its payload."""

    id: int
    kind: str
    key: str
    payload: dict[str, Any]
    tries: int


class NewJob(NamedTuple):
    """A row to insert: the payload already encoded (`topup.services.jobs.encode`)."""

    kind: str
    key: str
    payload: str
    run_at: float


class JobsRepository(Protocol):
    """The `jobs` table within one unit of work."""

    async def add(self, job: NewJob) -> bool:
        """Insert unless a job with the same key is queued; True when inserted."""
        ...

    async def add_many(self, jobs: Sequence[NewJob]) -> None:
        """Insert many (one statement), each skipped when its key is queued."""
        ...

    def wake(self) -> None:
        """After commit, wake every worker (PostgreSQL NOTIFY) and this process's own."""
        ...

    def wake_here(self) -> None:
        """After commit, wake this process's worker only."""
        ...

    async def finish(self, job_id: int, key: str) -> None:
        """Done: delete the job."""
        ...

    async def reschedule(self, job_id: int, key: str, run_at: float, error: str | None = None) -> None:
        """Release the claim and run again at `run_at` (counts as a try)."""
        ...

    async def defer(self, job_id: int, key: str, run_at: float, payload: str) -> None:
        """Release the claim without counting it as a try, with a new (encoded) payload."""
        ...

    async def delete_key(self, key: str) -> None:
        """Drop the queued job with this key, if any."""
        ...

    async def bring_forward(self, key: str, run_at: float) -> bool:
        """Make the unclaimed job with this key due at `run_at` when it is due later; True if moved."""
        ...

    async def requeue(self, key: str, run_at: float, payload: dict[str, Any]) -> bool:
        """Make the unclaimed job with this key due at `run_at` with a new payload; True if moved."""
        ...

    async def postpone(self, key: str, run_at: float) -> None:
        """Make the unclaimed job with this key due at `run_at` when it is due earlier."""
        ...
