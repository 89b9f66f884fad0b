"""Supplier balance checks (SPEC sections 6 and 7): ask the channel's supplier, keep every answer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from topup.adapters.db.engine import Database, Tx
from topup.domain.errors import NotFound, SupplierError
from topup.domain.suppliers import BalanceOutcome, SupplierProtocol
from topup.services import channel_pause
from topup.services.catalog import Channel, ConfigCache


async def check_balance(
    db: Database,
    cache: ConfigCache,
    suppliers: Mapping[str, SupplierProtocol],
    code: str,
    callback_base: str,
) -> dict[str, Any]:
    """Ask the supplier now and record the answer; `SupplierError` (502) when it gives none."""
    async with db.transaction() as tx:
        channel = (await cache.fresh(tx)).channels.get(code)
    if channel is None:
        raise NotFound(f"channel {code} does not exist")
    adapter = suppliers.get(channel.protocol)
    if adapter is None or not adapter.has_balance:
        raise SupplierError(f"protocol {channel.protocol} has no balance query")
    outcome = await adapter.balance(channel.access(callback_base))
    async with db.transaction() as tx:
        checked_at = tx.now
        await record(tx, channel, outcome)
    if not outcome.ok:
        detail = {"code": outcome.code, "http_status": outcome.http_status, "raw": outcome.raw}
        raise SupplierError(f"balance query failed: {outcome.code} {outcome.message or ''}".strip(), detail)
    return {"channel": code, "amount": outcome.amount, "currency": outcome.currency, "checked_at": checked_at}


async def record(tx: Tx, channel: Channel, outcome: BalanceOutcome) -> None:
    """Keep the answer; a successful one also pauses or resumes the channel (SPEC 7, `min_balance`)."""
    error = None if outcome.ok else f"{outcome.code}: {outcome.message or ''}"[:500]
    await tx.exec(
        "INSERT INTO channel_balances (channel_code, ok, amount, currency, error, checked_at)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        channel.code,
        outcome.ok,
        outcome.amount if outcome.ok else None,
        outcome.currency if outcome.ok else None,
        error,
        tx.now,
    )
    if outcome.ok:
        await channel_pause.apply(tx, channel.code, channel.min_balance, outcome.amount, outcome.currency)


async def last_balance(tx: Tx, code: str) -> dict[str, Any] | None:
    """The last successful check of a channel: {"amount", "currency", "checked_at"} or None."""
    row = await tx.fetchrow(
        "SELECT amount, currency, checked_at FROM channel_balances WHERE channel_code = $1 AND ok"
        " ORDER BY checked_at DESC, id DESC LIMIT 1",
        code,
    )
    if row is None:
        return None
    return {"amount": int(row.amount), "currency": row.currency, "checked_at": row.checked_at}


async def history(tx: Tx, code: str, limit: int = 100) -> list[dict[str, Any]]:
    """The newest checks first, failed ones included."""
    rows = await tx.fetch(
        "SELECT ok, amount, currency, error, checked_at FROM channel_balances WHERE channel_code = $1"
        " ORDER BY checked_at DESC, id DESC LIMIT $2",
        code,
        limit,
    )
    return [
        {
            "ok": bool(r.ok),
            "amount": None if r.amount is None else int(r.amount),
            "currency": r.currency,
            "error": r.error,
            "checked_at": r.checked_at,
        }
        for r in rows
    ]
