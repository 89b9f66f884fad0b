"""Rate limits per channel across every worker process (SPEC section 7).

A channel with `rate_limit_per_s` N has N rows in `channel_rate_slots`, shared by all workers through
the database (PostgreSQL or SQLite). Each slot keeps `at`, the latest start reserved on it, and
`started`, when the latest dispatch that used it really went out. A dispatch may use a slot only when
the slot's previous dispatch started at least `WINDOW_S` earlier, so no 1 s holds more than N starts.

The routing transaction takes its turn with `take_turn`: a turn the order already holds is used at its
time; otherwise a slot free now is claimed in that same transaction (a rollback gives it back). With no
free slot, `RateLimited` rolls the transaction back and `wait_turn` reserves the next start (first come,
first served) and defers the route job to it, the reservation in its payload. As the request leaves,
`mark_start` writes its real start into the slot: a dispatch that went out late pushes the slot's next
one back by as much. Nothing of the order changes while it waits: no attempt exists yet,
so no supplier clock runs, no active channel moves and nothing counts as a failure.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import structlog

from topup.clock import rfc3339
from topup.domain.supplier_ops import WINDOW_S, next_start
from topup.services import jobs
from topup.services.uow import Declined, Storage, UnitOfWork

log = structlog.get_logger("topup.rate_limits")

# A waiting order's job comes back this long before its turn and sleeps the rest in the worker, so its
# dispatch starts on time whichever worker's poll finds it.
EARLY_S = 0.2
_RESERVE_TRIES = 20


class RateLimited(Declined):
    """No dispatch slot of the channel now: the order waits its turn (the routing unit rolls back)."""

    def __init__(self, channel_code: str, limit: int, held: Turn | None = None) -> None:
        super().__init__(channel_code)
        self.channel_code = channel_code
        self.limit = limit
        self.held = held
        """The turn this order keeps (it came back too early), or None to queue anew."""


@dataclass(frozen=True)
class Turn:
    """A reserved start on one slot: the route job's payload keeps it while the order waits."""

    channel: str
    at: float
    slot: int


def held_turn(payload: jobs.RoutePayload) -> Turn | None:
    channel, at, slot = payload.rate_channel, payload.rate_at, payload.rate_slot
    if isinstance(channel, str) and isinstance(at, int | float) and isinstance(slot, int):
        return Turn(channel, float(at), slot)
    return None


async def sleep_until_turn(db: Storage, payload: jobs.RoutePayload) -> None:
    """Before routing a job that came back early for its turn: wait in-process until it starts."""
    turn = held_turn(payload)
    if turn is not None:
        delay = turn.at - db.clock.now()
        if 0 < delay <= EARLY_S + 0.05:
            await asyncio.sleep(delay)


async def ensure_slots(uow: UnitOfWork, code: str, limit: int) -> None:
    """The channel's `limit` slots exist (made when the channel is saved, and before a reservation)."""
    await uow.supplier_ops.ensure_rate_slots(code, limit)


async def take_turn(
    uow: UnitOfWork, code: str, limit: int | None, held: Turn | None
) -> tuple[str, int] | None:
    """In the routing transaction, for the channel it chose: return when the dispatch may start now
    (the (channel, slot) it took, for `mark_start`; None when the channel has no limit), else raise
    `RateLimited`. Call it last, just before the attempt is stored.

    A turn held on a slot goes ahead once its time has come and the slot's previous dispatch started
    a window ago. Otherwise a slot free now is claimed; on PostgreSQL one another routing transaction
    holds is skipped, never waited for (this one already holds the order and maybe its group). Slots
    are made when the channel is saved and by `wait_turn`, never here, for the same reason."""
    if not limit:
        return None
    ops = uow.supplier_ops
    # The clock now, not the transaction's start: the routing transaction may have waited for locks.
    now = ops.clock_now()
    if held is not None and held.channel == code and held.slot < limit:
        if now < held.at - 0.001:
            raise RateLimited(code, limit, held)
        if not await ops.start_on_held_slot(code, held.slot, now, now - WINDOW_S):
            # The slot's last dispatch went out late: this one waits as much longer.
            started = await ops.slot_started(code, held.slot)
            after = next_start(started, now) if started is not None else now
            raise RateLimited(code, limit, Turn(code, after, held.slot))
        return (code, held.slot)
    slot = await ops.oldest_slot(code, limit, skip_locked=True)
    if slot is None or next_start(max(slot.at, slot.started), now) > now:
        raise RateLimited(code, limit)
    if not await ops.claim_slot(code, slot, now):
        raise RateLimited(code, limit)
    return (code, slot.slot)


def mark_start(db: Storage, taken: tuple[str, int] | None, at: float) -> asyncio.Task[None] | None:
    """As the request leaves at `at`: the slot the dispatch took (`take_turn`'s answer) records that
    start (later than claimed when the commit or a busy process held it up), written beside the send
    so as not to delay it; await the task afterwards. None when the dispatch took no slot."""
    if taken is None:
        return None
    return asyncio.create_task(_record_start(db, *taken, at))


async def _record_start(db: Storage, code: str, slot: int, at: float) -> None:
    try:
        async with db.reads() as uow:
            await uow.supplier_ops.record_slot_start(code, slot, at)
    except Exception as e:  # the claim's own start stands (a little early); never fail the dispatch
        log.warning("rate_slot_start_not_recorded", channel=code, slot=slot, error=str(e)[:200])


async def _reserve(uow: UnitOfWork, code: str, limit: int) -> Turn:
    """The channel's next start, taken for this order (its own transaction: it waits for a slot row
    another transaction holds, and holds nothing else)."""
    await ensure_slots(uow, code, limit)
    ops = uow.supplier_ops
    for _ in range(_RESERVE_TRIES):
        slot = await ops.oldest_slot(code, limit, skip_locked=False)
        if slot is None:
            break
        at = next_start(max(slot.at, slot.started), ops.clock_now())
        if await ops.reserve_slot(code, slot, at):
            return Turn(code, at, slot.slot)
    raise RuntimeError(f"no rate slot of channel {code} could be reserved")


async def wait_turn(
    db: Storage, job: jobs.Job[jobs.RoutePayload], order_id: str, limited: RateLimited
) -> float:
    """Queue the order for the channel's next start and put its route job back until then (not a
    failed try); the first wait goes on the order's timeline. Returns the start."""
    from topup.services.orders import add_event  # orders -> catalog -> this module

    code = limited.channel_code
    async with db.transaction() as tx:
        turn = limited.held if limited.held is not None else await _reserve(tx, code, limited.limit)
        payload = job.payload.waiting_turn(code, turn.at, turn.slot)
        waits = payload.rate_waits
        await jobs.defer(tx, job, max(tx.now, turn.at - EARLY_S), payload)
        # Wake this process's worker: it then sleeps exactly until the job is due.
        tx.jobs.wake_here()
        if waits == 1:
            detail = {"channel": code, "limit_per_s": limited.limit, "turn_at": rfc3339(turn.at)}
            await add_event(tx, order_id, None, "rate_limited", detail)
    return turn.at


async def waiting(uow: UnitOfWork) -> dict[str, int]:
    """Orders waiting for their turn, per channel (route jobs holding a reservation)."""
    return await uow.supplier_ops.rate_waiting()


async def waiting_orders(uow: UnitOfWork, code: str, limit: int = 50) -> list[dict[str, Any]]:
    """The orders waiting for a turn at one channel, next first: {"order_id", "turn_at"}."""
    turns: list[tuple[float, str]] = []
    for payload in await uow.supplier_ops.rate_waiting_payloads(code):
        turn = held_turn(jobs.from_json(jobs.RoutePayload, payload))
        if turn is not None:
            turns.append((turn.at, str(payload.get("order_id"))))
    return [{"order_id": order_id, "turn_at": at} for at, order_id in sorted(turns)[:limit]]
