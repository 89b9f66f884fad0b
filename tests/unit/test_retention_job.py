"""Retention's policy and its `prune` job, on the in-memory database with a fake clock."""

from __future__ import annotations

import pytest

from topup.adapters.db.memory import MemoryDatabase
from topup.clock import FakeClock
from topup.services import jobs
from topup.services.ports.retention import Prunable
from topup.services.retention import DAY_S, FIRST_RUN_AFTER_S, Retention, RetentionPolicy

NOW = 1_800_000_000.0


def test_cutoffs_follow_the_two_windows_and_zero_keeps_forever() -> None:
    policy = RetentionPolicy(retention_days=90, timeline_retention_days=400)
    assert policy.cutoff(Prunable.DELIVERIES, NOW) == NOW - 90 * DAY_S
    assert policy.cutoff(Prunable.CALLBACKS, NOW) == NOW - 90 * DAY_S
    assert policy.cutoff(Prunable.ORDER_EVENTS, NOW) == NOW - 400 * DAY_S
    only_timelines = RetentionPolicy(retention_days=0, timeline_retention_days=400)
    assert only_timelines.cutoff(Prunable.EVENTS, NOW) is None
    assert only_timelines.cutoff(Prunable.ORDER_EVENTS, NOW) == NOW - 400 * DAY_S
    assert not only_timelines.keeps_everything
    assert RetentionPolicy(0, 0).keeps_everything


async def test_a_policy_that_keeps_everything_prunes_nothing_and_touches_no_table() -> None:
    # The in-memory retention repository is not faked: any query would raise NotFaked.
    retention = Retention(MemoryDatabase(FakeClock(NOW)), RetentionPolicy(0, 0))
    assert await retention.prune() == {k.value: 0 for k in Prunable}
    assert await retention.prune(dry_run=True) == {k.value: 0 for k in Prunable}


async def test_ensure_job_queues_one_prune_job_a_little_after_start() -> None:
    db = MemoryDatabase(FakeClock(NOW))
    retention = Retention(db, RetentionPolicy(), every_s=DAY_S)
    assert await retention.ensure_job() is True
    assert await retention.ensure_job() is False  # a second process finds it queued
    (job,) = db.state.jobs.values()
    assert (job.kind, job.key, job.run_at) == ("prune", "prune", NOW + FIRST_RUN_AFTER_S)


async def test_nothing_is_queued_when_everything_is_kept_forever() -> None:
    db = MemoryDatabase(FakeClock(NOW))
    assert await Retention(db, RetentionPolicy(0, 0)).ensure_job() is False
    assert db.state.jobs == {}


@pytest.mark.parametrize("every_s", [3600.0, DAY_S])
async def test_the_prune_job_puts_itself_back_every_s_later(every_s: float) -> None:
    clock = FakeClock(NOW)
    db = MemoryDatabase(clock)
    retention = Retention(db, RetentionPolicy(0, 0), every_s=every_s)
    async with db.transaction() as tx:
        await jobs.enqueue(tx, jobs.PrunePayload(), NOW)
    for run in range(1, 4):
        stored = db.claim_next(wait_until=NOW + 10 * every_s)
        assert stored is not None and stored.kind == "prune"
        claimed_at = clock.now()
        assert claimed_at == pytest.approx(NOW + (run - 1) * every_s)
        job = jobs.decode(stored)
        assert isinstance(job.payload, jobs.PrunePayload)
        await retention.handle(job)  # type: ignore[arg-type]
        (row,) = db.state.jobs.values()
        # Back in the queue, unclaimed, `every_s` later, and not counted as a failed try.
        assert row.key == "prune" and row.locked_until is None
        assert row.run_at == pytest.approx(claimed_at + every_s)
        assert row.tries == 0


async def test_bootstrap_wires_the_settings_and_the_prune_handler() -> None:
    from topup import bootstrap
    from topup.config import Settings

    settings = Settings(
        database_url="sqlite:///:memory:",
        retention_days=30,
        timeline_retention_days=0,
        prune_batch_size=100,
        prune_every_s=7200,
    )
    c = bootstrap.build(settings)
    try:
        assert c.retention.policy == RetentionPolicy(30, 0, 100)
        assert c.retention.every_s == 7200
        assert c.job_handlers.for_kind(jobs.JobKind.PRUNE) == c.retention.handle
    finally:
        await c.close()
