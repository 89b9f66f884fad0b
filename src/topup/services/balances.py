"""Supplier balance checks (SPEC sections 6 and 7): ask the channel's supplier, keep every answer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from topup.domain.errors import NotFound, SupplierError
from topup.domain.suppliers import BalanceOutcome, SupplierProtocol
from topup.services import channel_pause
from topup.services.catalog import Channel, ConfigCache
from topup.services.uow import Transactions, UnitOfWork


async def check_balance(
    db: Transactions,
    cache: ConfigCache,
    suppliers: Mapping[str, SupplierProtocol],
    code: str,
    callback_base: str,
) -> dict[str, Any]:
    """Ask the supplier now and record the answer; `SupplierError` (502) when it gives none."""
    async with db.transaction() as uow:
        channel = (await cache.fresh(uow)).channels.get(code)
    if channel is None:
        raise NotFound(f"channel {code} does not exist")
    adapter = suppliers.get(channel.protocol)
    if adapter is None or not adapter.has_balance:
        raise SupplierError(f"protocol {channel.protocol} has no balance query")
    outcome = await adapter.balance(channel.access(callback_base))
    async with db.transaction() as uow:
        checked_at = uow.now
        await record(uow, channel, outcome)
    if not outcome.ok:
        detail = {"code": outcome.code, "http_status": outcome.http_status, "raw": outcome.raw}
        raise SupplierError(f"balance query failed: {outcome.code} {outcome.message or ''}".strip(), detail)
    return {"channel": code, "amount": outcome.amount, "currency": outcome.currency, "checked_at": checked_at}


async def record(uow: UnitOfWork, channel: Channel, outcome: BalanceOutcome) -> None:
    """Keep the answer; a successful one also pauses or resumes the channel (SPEC 7, `min_balance`)."""
    error = None if outcome.ok else f"{outcome.code}: {outcome.message or ''}"[:500]
    await uow.supplier_ops.add_balance_check(
        channel.code,
        outcome.ok,
        outcome.amount if outcome.ok else None,
        outcome.currency if outcome.ok else None,
        error,
    )
    if outcome.ok:
        await channel_pause.apply(uow, channel.code, channel.min_balance, outcome.amount, outcome.currency)


async def last_balance(uow: UnitOfWork, code: str) -> dict[str, Any] | None:
    """The last successful check of a channel: {"amount", "currency", "checked_at"} or None."""
    last = await uow.supplier_ops.last_balance(code)
    return None if last is None else last._asdict()


async def history(uow: UnitOfWork, code: str, limit: int = 100) -> list[dict[str, Any]]:
    """The newest checks first, failed ones included."""
    return [check._asdict() for check in await uow.supplier_ops.balance_history(code, limit)]
