"""Retention (issue 17): keep the hot tables small without ever losing a money record.

Money and audit records are kept forever: orders, attempts, transfers and postings, payments and their
refunds, batches, exceptions, the audit log, statements and their discrepancies. What goes is the
high-volume operational trail of finished work once it is older than a window (`Prunable` lists it):
webhook deliveries, their tries and events after `retention_days`; supplier callbacks of final orders;
balance checks (each channel's latest stays) and group switches; and, after the longer
`timeline_retention_days`, the timelines of final orders. Jobs are deleted as they finish, so the
queue has nothing to prune.

Each batch is a transaction of its own that deletes at most `batch_size` rows, so a run never holds
locks the order path waits on for long. The `prune` job runs it every `every_s` and puts itself back.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from topup.services import jobs
from topup.services.jobs import Job
from topup.services.ports.retention import Prunable
from topup.services.uow import Transactions

log = structlog.get_logger()

DAY_S = 86400.0
# The first run after the job is first queued: out of the way of a process that is starting.
FIRST_RUN_AFTER_S = 600.0
# Timelines follow their own, longer window (operators and disputes read them longest).
TIMELINE = frozenset({Prunable.ORDER_EVENTS})


@dataclass(frozen=True)
class RetentionPolicy:
    """How long rows are kept (days; 0 keeps them forever) and how many one batch deletes."""

    retention_days: float = 90.0
    timeline_retention_days: float = 400.0
    batch_size: int = 5000

    def cutoff(self, kind: Prunable, now: float) -> float | None:
        """Rows of `kind` older than this may go; None: keep them all."""
        days = self.timeline_retention_days if kind in TIMELINE else self.retention_days
        return now - days * DAY_S if days > 0 else None

    @property
    def keeps_everything(self) -> bool:
        return self.retention_days <= 0 and self.timeline_retention_days <= 0


@dataclass
class Retention:
    db: Transactions
    policy: RetentionPolicy
    every_s: float = DAY_S

    async def prune(self, dry_run: bool = False) -> dict[str, int]:
        """Delete (or with `dry_run`, count) the prunable rows, kind by kind in `Prunable` order
        (tries before deliveries before events); rows per table."""
        async with self.db.reads() as tx:
            now = tx.now
        counts: dict[str, int] = {}
        for kind in Prunable:
            cutoff = self.policy.cutoff(kind, now)
            if cutoff is None:
                counts[kind.value] = 0
            elif dry_run:
                async with self.db.reads() as tx:
                    counts[kind.value] = await tx.retention.count(kind, cutoff)
            else:
                counts[kind.value] = await self._delete(kind, cutoff)
        return counts

    async def _delete(self, kind: Prunable, cutoff: float) -> int:
        size = max(1, self.policy.batch_size)
        total = 0
        while True:
            async with self.db.transaction() as tx:
                gone = await tx.retention.prune(kind, cutoff, size)
            total += gone
            if gone < size:
                return total

    async def handle(self, job: Job[jobs.PrunePayload]) -> None:
        """The `prune` job: prune, log the counts, come back `every_s` later."""
        counts = await self.prune()
        log.info("pruned", **counts, total=sum(counts.values()))
        async with self.db.transaction() as tx:
            # Not a failed try (jobs.defer): the job lives as long as the platform.
            await jobs.defer(tx, job, tx.now + self.every_s, job.payload)

    async def ensure_job(self) -> bool:
        """Queue the `prune` job unless it is queued or nothing is ever pruned; True if queued now."""
        if self.policy.keeps_everything:
            return False
        async with self.db.transaction() as tx:
            first = tx.now + min(FIRST_RUN_AFTER_S, self.every_s)
            return await jobs.enqueue(tx, jobs.PrunePayload(), first)
