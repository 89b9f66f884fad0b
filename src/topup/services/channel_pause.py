"""A channel pauses itself on a low balance and resumes when it is topped up (SPEC section 7).

Decided on every successful balance check (`balances.record`) and when an operator saves the channel
(its `min_balance` may have changed): while the last balance is below `min_balance` the channel is
`paused` (routing skips it for new attempts; attempts in flight go on). A pause is raised to operators
once, as a `channel_paused` exception; the resume is noted on that entry. Both changes are conditional
UPDATEs, so two checks racing each other pause or resume a channel once.
"""

from __future__ import annotations

import structlog

from topup.clock import rfc3339
from topup.domain.supplier_ops import PauseReason, low_balance
from topup.services import jobs
from topup.services.uow import UnitOfWork

log = structlog.get_logger("topup.channels")

EXCEPTION_KIND = "channel_paused"


def balance_job_key(code: str) -> str:
    return jobs.BalanceCheckPayload(code).key


def _exception_ref(code: str, paused_at: float) -> str:
    """One entry per pause: the channel and the second it paused (fits the 80 characters of a ref)."""
    return f"{code}@{int(paused_at)}"


async def schedule_check(tx: UnitOfWork, code: str, at: float | None = None) -> None:
    """Make the channel's balance check due at `at` (default now): queued when missing, brought
    forward when it is due later (a check already running is left alone)."""
    run_at = tx.now if at is None else at
    key = balance_job_key(code)
    if not await jobs.enqueue(tx, jobs.BalanceCheckPayload(code), run_at, key=key):
        await jobs.bring_forward(tx, key, run_at)


async def apply(
    uow: UnitOfWork, code: str, min_balance: int | None, amount: int | None, currency: str | None = None
) -> str | None:
    """Pause or resume the channel for a balance of `amount` (None: no balance known); returns its
    pause reason afterwards (None when it takes orders)."""
    row = await uow.supplier_ops.lock_pause(code)
    if row is None:
        return None
    # Judge against the minimum as stored now, under the row lock: a check that read the channel
    # before an operator changed its minimum must not pause it by the old one.
    min_balance = row.min_balance
    low = low_balance(amount, min_balance)
    if low and row.paused is None:
        if await uow.supplier_ops.pause(code, str(PauseReason.LOW_BALANCE)):
            await _raise_pause(uow, code, amount, currency, min_balance)
        return str(PauseReason.LOW_BALANCE)
    if not low and row.paused == PauseReason.LOW_BALANCE:
        if await uow.supplier_ops.resume(code, str(PauseReason.LOW_BALANCE)):
            await _note_resume(uow, code, row.paused_at, amount, currency, min_balance)
        return None
    return row.paused


def first_check_at(now: float, min_balance: int | None, balance_check_s: float) -> float:
    """A channel that pauses on its balance is checked at once when saved; any other one (only
    watched) when its interval has passed."""
    return now if min_balance is not None else now + balance_check_s


async def on_channel_saved(
    uow: UnitOfWork, code: str, min_balance: int | None, balance_check_s: float, has_balance: bool
) -> str | None:
    """An operator saved the channel: judge the last balance against the (new) `min_balance` and queue
    its balance check (see `first_check_at`; when its protocol can). Returns the pause reason after."""
    last = await uow.supplier_ops.last_amount(code)
    paused = await apply(
        uow,
        code,
        min_balance,
        None if last is None else last[0],
        None if last is None else last[1],
    )
    if has_balance:
        await schedule_check(uow, code, first_check_at(uow.now, min_balance, balance_check_s))
    return paused


async def _raise_pause(
    uow: UnitOfWork, code: str, amount: int | None, currency: str | None, min_balance: int | None
) -> None:
    detail = {
        "reason": str(PauseReason.LOW_BALANCE),
        "balance": amount,
        "currency": currency,
        "min_balance": min_balance,
        "paused_at": rfc3339(uow.now),
    }
    await uow.supplier_ops.add_exception(EXCEPTION_KIND, _exception_ref(code, uow.now), code, detail)
    uow.after_commit(lambda: log.warning("channel_paused", channel=code, **detail))


async def _note_resume(
    uow: UnitOfWork,
    code: str,
    paused_at: float | None,
    amount: int | None,
    currency: str | None,
    min_balance: int | None,
) -> None:
    """The pause's entry says when and at what balance the channel resumed (an operator may still
    want to look at why it ran low, so the entry stays open)."""
    resumed = {"resumed_at": rfc3339(uow.now), "resumed_balance": amount}
    if paused_at is not None:
        ref = _exception_ref(code, paused_at)
        detail = await uow.supplier_ops.exception_detail(EXCEPTION_KIND, ref)
        if detail is not None:
            await uow.supplier_ops.set_exception_detail(EXCEPTION_KIND, ref, {**detail, **resumed})
    fields = {"balance": amount, "currency": currency, "min_balance": min_balance}
    uow.after_commit(lambda: log.info("channel_resumed", channel=code, **fields))
