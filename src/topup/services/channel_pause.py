"""A channel pauses itself on a low balance and resumes when it is topped up (SPEC section 7).

Decided on every successful balance check (`balances.record`) and when an operator saves the channel
(its `min_balance` may have changed): while the last balance is below `min_balance` the channel is
`paused` (routing skips it for new attempts; attempts in flight go on). A pause is raised to operators
once, as a `channel_paused` exception; the resume is noted on that entry. Both changes are conditional
UPDATEs, so two checks racing each other pause or resume a channel once.
"""

from __future__ import annotations

from typing import Any

import orjson
import structlog
from sqlalchemy import select, update

from topup.adapters.db import tables as t
from topup.adapters.db.engine import Tx
from topup.adapters.db.helpers import insert_ignore, new_id
from topup.clock import rfc3339
from topup.domain.supplier_ops import PauseReason, low_balance
from topup.services import jobs

log = structlog.get_logger("topup.channels")

BALANCE_JOB = "balance_check"
EXCEPTION_KIND = "channel_paused"


def balance_job_key(code: str) -> str:
    return f"balance:{code}"


def _exception_ref(code: str, paused_at: float) -> str:
    """One entry per pause: the channel and the second it paused (fits the 80 characters of a ref)."""
    return f"{code}@{int(paused_at)}"


async def schedule_check(tx: Tx, code: str, at: float | None = None) -> None:
    """Make the channel's balance check due at `at` (default now): queued when missing, brought
    forward when it is due later (a check already running is left alone)."""
    run_at = tx.now if at is None else at
    key = balance_job_key(code)
    if await jobs.enqueue(tx, BALANCE_JOB, key, {"channel": code}, run_at):
        return
    moved = await tx.exec(
        "UPDATE jobs SET run_at = $1 WHERE key = $2 AND run_at > $1"
        " AND (locked_until IS NULL OR locked_until < $3)",
        run_at,
        key,
        tx.now,
    )
    if moved and run_at <= tx.now + jobs.WAKE_WITHIN_S:
        tx.notify("topup_jobs")
        tx.jobs_enqueued = True


async def apply(
    tx: Tx, code: str, min_balance: int | None, amount: int | None, currency: str | None = None
) -> str | None:
    """Pause or resume the channel for a balance of `amount` (None: no balance known); returns its
    pause reason afterwards (None when it takes orders)."""
    sql = "SELECT paused, paused_at, min_balance FROM channels WHERE code = $1"
    row = await tx.fetchrow(sql + " FOR UPDATE" if tx.is_postgres else sql, code)
    if row is None:
        return None
    # Judge against the minimum as stored now, under the row lock: a check that read the channel
    # before an operator changed its minimum must not pause it by the old one.
    min_balance = None if row.min_balance is None else int(row.min_balance)
    low = low_balance(amount, min_balance)
    if low and row.paused is None:
        paused = await tx.exec(
            "UPDATE channels SET paused = $1, paused_at = $2 WHERE code = $3 AND paused IS NULL",
            str(PauseReason.LOW_BALANCE),
            tx.now,
            code,
        )
        if paused:
            await _raise_pause(tx, code, amount, currency, min_balance)
        return str(PauseReason.LOW_BALANCE)
    if not low and row.paused == PauseReason.LOW_BALANCE:
        resumed = await tx.exec(
            "UPDATE channels SET paused = NULL, paused_at = NULL WHERE code = $1 AND paused = $2",
            code,
            str(PauseReason.LOW_BALANCE),
        )
        if resumed:
            await _note_resume(tx, code, row.paused_at, amount, currency, min_balance)
        return None
    return row.paused  # type: ignore[no-any-return]


def first_check_at(now: float, min_balance: int | None, balance_check_s: float) -> float:
    """A channel that pauses on its balance is checked at once when saved; any other one (only
    watched) when its interval has passed."""
    return now if min_balance is not None else now + balance_check_s


async def on_channel_saved(
    tx: Tx, code: str, min_balance: int | None, balance_check_s: float, has_balance: bool
) -> str | None:
    """An operator saved the channel: judge the last balance against the (new) `min_balance` and queue
    its balance check (see `first_check_at`; when its protocol can). Returns the pause reason after."""
    last = await tx.fetchrow(
        "SELECT amount, currency FROM channel_balances WHERE channel_code = $1 AND ok"
        " ORDER BY checked_at DESC, id DESC LIMIT 1",
        code,
    )
    paused = await apply(
        tx,
        code,
        min_balance,
        None if last is None else int(last.amount),
        None if last is None else last.currency,
    )
    if has_balance:
        await schedule_check(tx, code, first_check_at(tx.now, min_balance, balance_check_s))
    return paused


async def _raise_pause(
    tx: Tx, code: str, amount: int | None, currency: str | None, min_balance: int | None
) -> None:
    detail = {
        "reason": str(PauseReason.LOW_BALANCE),
        "balance": amount,
        "currency": currency,
        "min_balance": min_balance,
        "paused_at": rfc3339(tx.now),
    }
    await insert_ignore(
        tx,
        t.exceptions,
        {
            "id": new_id("exc", tx.now),
            "kind": EXCEPTION_KIND,
            "order_id": None,
            "ref": _exception_ref(code, tx.now),
            "channel_code": code,
            "detail": detail,
            "created_at": tx.now,
        },
        ["kind", "ref"],
    )
    tx.after_commit(lambda: log.warning("channel_paused", channel=code, **detail))


async def _note_resume(
    tx: Tx,
    code: str,
    paused_at: float | None,
    amount: int | None,
    currency: str | None,
    min_balance: int | None,
) -> None:
    """The pause's entry says when and at what balance the channel resumed (an operator may still
    want to look at why it ran low, so the entry stays open)."""
    resumed = {"resumed_at": rfc3339(tx.now), "resumed_balance": amount}
    if paused_at is not None:
        e = t.exceptions
        entry = (e.c.kind == EXCEPTION_KIND) & (e.c.ref == _exception_ref(code, paused_at))
        row = (await tx.conn.execute(select(e.c.detail).where(entry))).first()
        if row is not None:
            detail: dict[str, Any] = row.detail if isinstance(row.detail, dict) else orjson.loads(row.detail)
            await tx.conn.execute(update(e).where(entry).values(detail={**detail, **resumed}))
    fields = {"balance": amount, "currency": currency, "min_balance": min_balance}
    tx.after_commit(lambda: log.info("channel_resumed", channel=code, **fields))
