"""The notify job handler on a real SQLite schema with a fake clock and a fake sender."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select

from topup.adapters.db import tables as t
from topup.adapters.db.engine import Database, migrate
from topup.adapters.db.repos import jobs as job_queue
from topup.adapters.notify.webhook import FakeWebhookSender
from topup.clock import FakeClock
from topup.domain.notifications import GIVE_UP_AFTER_S
from topup.services import jobs
from topup.services.notifications import Notifier, requeue

PAYLOAD = {"event_id": "evt_1", "type": "order.succeeded", "order": {"order_id": "ord_1"}}


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path}/n.db", FakeClock())
    await migrate(database)
    now = database.clock.now()
    async with database.transaction() as tx:
        await tx.conn.execute(
            t.merchants.insert().values(id="m1", name="m1", secret="s", created_at=now, updated_at=now)
        )
        await tx.conn.execute(
            t.events.insert().values(
                id="evt_1",
                merchant_id="m1",
                order_id="ord_1",
                type="order.succeeded",
                payload=PAYLOAD,
                created_at=now,
            )
        )
        await tx.conn.execute(
            t.deliveries.insert().values(
                event_id="evt_1",
                merchant_id="m1",
                order_id="ord_1",
                url="https://m.example/cb",
                status="pending",
                tries=0,
                next_at=now,
                created_at=now,
            )
        )
        await jobs.enqueue(tx, jobs.NotifyPayload("evt_1"))
    yield database
    await database.dispose()


async def run_due(db: Database, notifier: Notifier) -> int:
    claimed = await job_queue.claim_due(db, 10, 60)
    for job in claimed:
        await notifier.handle(jobs.decode(job))
    return len(claimed)


async def state(db: Database) -> tuple[str, int, list[int | None], float | None]:
    async with db.transaction() as tx:
        d = (await tx.conn.execute(select(t.deliveries))).one()
        attempts = (
            await tx.conn.execute(select(t.delivery_attempts).order_by(t.delivery_attempts.c.id))
        ).all()
        run_at = (await tx.conn.execute(select(t.jobs.c.run_at))).scalar()
    return d.status, d.tries, [a.status_code for a in attempts], run_at


async def test_failures_back_off_then_a_2xx_delivers(db: Database) -> None:
    clock: FakeClock = db.clock  # type: ignore[assignment]
    fake = FakeWebhookSender()
    fake.answer([500, None])
    notifier = Notifier(db, fake)
    start = clock.now()

    assert await run_due(db, notifier) == 1
    status, tries, codes, run_at = await state(db)
    assert (status, tries, codes, run_at) == ("pending", 1, [500], start + 2)
    assert await run_due(db, notifier) == 0  # not due yet

    clock.advance(2)
    await run_due(db, notifier)
    assert (await state(db))[3] == start + 2 + 5

    clock.advance(5)
    await run_due(db, notifier)
    status, tries, codes, run_at = await state(db)
    assert (status, tries, codes, run_at) == ("delivered", 3, [500, None, 200], None)
    # Every try sent the same signed body for the same event.
    assert {h.body for h in fake.sent} == {orjson.dumps(PAYLOAD)}
    assert {h.event_id for h in fake.sent} == {"evt_1"}


async def test_gives_up_after_the_window_and_an_operator_retry_reopens_it(db: Database) -> None:
    clock: FakeClock = db.clock  # type: ignore[assignment]
    fake = FakeWebhookSender(default_status=503)
    notifier = Notifier(db, fake)
    start = clock.now()
    while (await state(db))[0] == "pending":
        await run_due(db, notifier)
        run_at = (await state(db))[3]
        if run_at is not None:
            clock._now = run_at
    status, tries, codes, _ = await state(db)
    assert status == "gave_up" and tries == len(codes) > 30
    assert 24 * 3600 <= clock.now() - start <= GIVE_UP_AFTER_S

    fake.default_status = 200
    async with db.transaction() as tx:
        assert (await requeue(tx, "evt_1"))["status"] == "pending"
    await run_due(db, notifier)
    assert (await state(db))[:2] == ("delivered", tries + 1)


async def test_a_merchant_at_its_bound_steps_aside(db: Database) -> None:
    clock: FakeClock = db.clock  # type: ignore[assignment]
    fake = FakeWebhookSender()
    notifier = Notifier(db, fake, per_merchant=1)
    notifier.in_flight["m1"] = 1  # another delivery of m1 is on the wire
    await run_due(db, notifier)
    status, tries, codes, run_at = await state(db)
    assert (status, tries, codes) == ("pending", 0, []) and fake.sent == []
    assert run_at is not None and clock.now() < run_at <= clock.now() + 1.0
