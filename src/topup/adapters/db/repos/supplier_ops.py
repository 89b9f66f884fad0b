"""Every statement the supplier-operations services run (implements `services.ports.supplier_ops`)."""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import func, select, update

from topup.adapters.db import tables as t
from topup.adapters.db.helpers import in_param, insert_ignore, list_param, new_id
from topup.services.ports.supplier_ops import (
    AttemptCost,
    BalanceCheck,
    DiscrepancyRow,
    ExceptionState,
    LastBalance,
    NewException,
    NewStatement,
    PauseState,
    RateSlot,
    StatementRow,
)

if TYPE_CHECKING:
    from topup.adapters.db.engine import Database, Tx

# Rate slots known to exist, per database and (channel, limit): created once, read many times.
_ensured: weakref.WeakKeyDictionary[Database, set[tuple[str, int]]] = weakref.WeakKeyDictionary()

_ATTEMPTS = (
    "SELECT a.supplier_ref, a.ref, a.order_id, a.status, COALESCE(a.dispatched_at, a.started_at), c.amount"
    " FROM attempts a LEFT JOIN transfers c ON c.kind = $2 AND c.reference = a.ref"
    " WHERE a.channel_code = $1 AND "
)


def _statement(r: Any) -> StatementRow:
    return StatementRow(*(r[f] for f in StatementRow._fields))


class SqlSupplierOps:
    __slots__ = ("tx",)

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    # ---- balances and pauses

    async def add_balance_check(
        self, code: str, ok: bool, amount: int | None, currency: str | None, error: str | None
    ) -> None:
        tx = self.tx
        await tx.exec(
            "INSERT INTO channel_balances (channel_code, ok, amount, currency, error, checked_at)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            code,
            ok,
            amount,
            currency,
            error,
            tx.now,
        )

    async def last_balance(self, code: str) -> LastBalance | None:
        row = await self.tx.fetchrow(
            "SELECT amount, currency, checked_at FROM channel_balances WHERE channel_code = $1 AND ok"
            " ORDER BY checked_at DESC, id DESC LIMIT 1",
            code,
        )
        if row is None:
            return None
        return LastBalance(int(row.amount), row.currency, row.checked_at)

    async def last_amount(self, code: str) -> tuple[int, str | None] | None:
        last = await self.tx.fetchrow(
            "SELECT amount, currency FROM channel_balances WHERE channel_code = $1 AND ok"
            " ORDER BY checked_at DESC, id DESC LIMIT 1",
            code,
        )
        return None if last is None else (int(last.amount), last.currency)

    async def balance_history(self, code: str, limit: int) -> list[BalanceCheck]:
        rows = await self.tx.fetch(
            "SELECT ok, amount, currency, error, checked_at FROM channel_balances WHERE channel_code = $1"
            " ORDER BY checked_at DESC, id DESC LIMIT $2",
            code,
            limit,
        )
        return [
            BalanceCheck(
                bool(r.ok), None if r.amount is None else int(r.amount), r.currency, r.error, r.checked_at
            )
            for r in rows
        ]

    async def lock_pause(self, code: str) -> PauseState | None:
        tx = self.tx
        sql = "SELECT paused, paused_at, min_balance FROM channels WHERE code = $1"
        row = await tx.fetchrow(sql + " FOR UPDATE" if tx.is_postgres else sql, code)
        if row is None:
            return None
        return PauseState(
            row.paused, row.paused_at, None if row.min_balance is None else int(row.min_balance)
        )

    async def pause(self, code: str, reason: str) -> bool:
        tx = self.tx
        paused = await tx.exec(
            "UPDATE channels SET paused = $1, paused_at = $2 WHERE code = $3 AND paused IS NULL",
            reason,
            tx.now,
            code,
        )
        return bool(paused)

    async def resume(self, code: str, reason: str) -> bool:
        resumed = await self.tx.exec(
            "UPDATE channels SET paused = NULL, paused_at = NULL WHERE code = $1 AND paused = $2",
            code,
            reason,
        )
        return bool(resumed)

    async def add_exception(self, kind: str, ref: str, channel_code: str, detail: dict[str, Any]) -> bool:
        tx = self.tx
        return await insert_ignore(
            tx,
            t.exceptions,
            {
                "id": new_id("exc", tx.now),
                "kind": kind,
                "order_id": None,
                "ref": ref,
                "channel_code": channel_code,
                "detail": detail,
                "created_at": tx.now,
            },
            ["kind", "ref"],
        )

    async def exception_detail(self, kind: str, ref: str) -> dict[str, Any] | None:
        e = t.exceptions
        entry = (e.c.kind == kind) & (e.c.ref == ref)
        row = (await self.tx.conn.execute(select(e.c.detail).where(entry))).first()
        if row is None:
            return None
        return row.detail if isinstance(row.detail, dict) else orjson.loads(row.detail)  # type: ignore[no-any-return]

    async def set_exception_detail(self, kind: str, ref: str, detail: dict[str, Any]) -> None:
        e = t.exceptions
        entry = (e.c.kind == kind) & (e.c.ref == ref)
        await self.tx.conn.execute(update(e).where(entry).values(detail=detail))

    # ---- rate limits

    def clock_now(self) -> float:
        return self.tx.db.clock.now()

    async def ensure_rate_slots(self, code: str, limit: int) -> None:
        tx = self.tx
        seen = _ensured.setdefault(tx.db, set())
        if (code, limit) in seen:
            return
        await tx.executemany(
            "INSERT INTO channel_rate_slots (channel_code, slot, at, started) VALUES ($1, $2, 0, 0)"
            " ON CONFLICT (channel_code, slot) DO NOTHING",
            [(code, i) for i in range(limit)],
        )
        tx.after_commit(lambda: seen.add((code, limit)))

    async def oldest_slot(self, code: str, limit: int, *, skip_locked: bool) -> RateSlot | None:
        tx = self.tx
        lock = " FOR UPDATE SKIP LOCKED" if skip_locked else " FOR UPDATE"
        sql = (
            "SELECT slot, at, started FROM channel_rate_slots WHERE channel_code = $1 AND slot < $2"
            " ORDER BY CASE WHEN at > started THEN at ELSE started END, slot LIMIT 1"
        )
        row = await tx.fetchrow(sql + lock if tx.is_postgres else sql, code, limit)
        return None if row is None else RateSlot(int(row.slot), row.at, row.started)

    async def start_on_held_slot(self, code: str, slot: int, now: float, free_since: float) -> bool:
        row = await self.tx.fetchrow(
            "UPDATE channel_rate_slots SET started = $1 WHERE channel_code = $2 AND slot = $3"
            " AND started <= $4 RETURNING slot",
            now,
            code,
            slot,
            free_since,
        )
        return row is not None

    async def slot_started(self, code: str, slot: int) -> float | None:
        last = await self.tx.fetchrow(
            "SELECT started FROM channel_rate_slots WHERE channel_code = $1 AND slot = $2",
            code,
            slot,
        )
        return None if last is None else float(last.started)

    async def claim_slot(self, code: str, slot: RateSlot, now: float) -> bool:
        claimed = await self.tx.exec(
            "UPDATE channel_rate_slots SET at = $1, started = $1 WHERE channel_code = $2 AND slot = $3"
            " AND at = $4 AND started = $5",
            now,
            code,
            slot.slot,
            slot.at,
            slot.started,
        )
        return claimed == 1

    async def reserve_slot(self, code: str, slot: RateSlot, at: float) -> bool:
        claimed = await self.tx.exec(
            "UPDATE channel_rate_slots SET at = $1 WHERE channel_code = $2 AND slot = $3 AND at = $4",
            at,
            code,
            slot.slot,
            slot.at,
        )
        return claimed == 1

    async def record_slot_start(self, code: str, slot: int, at: float) -> None:
        await self.tx.exec(
            "UPDATE channel_rate_slots SET started = $1"
            " WHERE channel_code = $2 AND slot = $3 AND started < $1",
            at,
            code,
            slot,
        )

    async def rate_waiting(self) -> dict[str, int]:
        j = t.jobs
        channel = j.c.payload["rate_channel"].as_string()
        rows = (
            await self.tx.conn.execute(
                select(channel.label("channel"), func.count().label("n"))
                .where(j.c.kind == "route", channel.is_not(None))
                .group_by(channel)
            )
        ).all()
        return {r.channel: int(r.n) for r in rows}

    async def rate_waiting_payloads(self, code: str) -> list[dict[str, Any]]:
        j = t.jobs
        rows = (
            await self.tx.conn.execute(
                select(j.c.payload).where(
                    j.c.kind == "route", j.c.payload["rate_channel"].as_string() == code
                )
            )
        ).all()
        return [r.payload if isinstance(r.payload, dict) else orjson.loads(r.payload) for r in rows]

    # ---- statements

    async def attempts_in_period(
        self, channel_code: str, cost_kind: str, start: float, end: float
    ) -> list[AttemptCost]:
        return await self.tx.fetch_values(  # type: ignore[return-value]
            _ATTEMPTS + "a.dispatched_at >= $3 AND a.dispatched_at < $4", channel_code, cost_kind, start, end
        )

    async def attempts_by_supplier_ref(
        self, channel_code: str, cost_kind: str, refs: Iterable[str]
    ) -> list[AttemptCost]:
        tx = self.tx
        return await tx.fetch_values(  # type: ignore[return-value]
            _ATTEMPTS + f"a.supplier_ref {in_param(tx, 3)}", channel_code, cost_kind, list_param(tx, refs)
        )

    def new_statement_id(self) -> str:
        return new_id("stm", self.tx.now)

    async def add_statement(self, statement: NewStatement) -> bool:
        tx = self.tx
        inserted = await tx.exec(
            "INSERT INTO statements (id, channel_code, period_from, period_to, digest, format, rows, matched,"
            " summary, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            " ON CONFLICT (channel_code, period_from, period_to, digest) DO NOTHING",
            *statement,
            tx.now,
        )
        return bool(inserted)

    async def add_discrepancies(self, rows: Sequence[tuple[Any, ...]]) -> None:
        await self.tx.executemany(
            "INSERT INTO statement_discrepancies (statement_id, seq, supplier_ref, kind, ours, theirs,"
            " at_stake) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            list(rows),
        )

    async def find_statement(self, channel_code: str, start: float, end: float, digest: str) -> str | None:
        row = await self.tx.fetchrow(
            "SELECT id FROM statements WHERE channel_code = $1 AND period_from = $2 AND period_to = $3"
            " AND digest = $4",
            channel_code,
            start,
            end,
            digest,
        )
        return None if row is None else str(row.id)

    async def order_statuses(self, order_ids: Iterable[str]) -> dict[str, str]:
        tx = self.tx
        return {
            order_id: status
            for order_id, status in await tx.fetch_values(
                f"SELECT id, status FROM orders WHERE id {in_param(tx, 1)}", list_param(tx, order_ids)
            )
        }

    async def add_exceptions(self, channel_code: str, items: Sequence[NewException]) -> list[NewException]:
        tx = self.tx
        refs = {item.ref for item in items}
        existing = set(
            await tx.fetch_values(
                f"SELECT kind, ref FROM exceptions WHERE ref {in_param(tx, 1)}", list_param(tx, refs)
            )
        )
        new = [item for item in items if (item.kind, item.ref) not in existing]
        await tx.executemany(
            "INSERT INTO exceptions (id, kind, order_id, ref, channel_code, detail, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (kind, ref) DO NOTHING",
            [
                (
                    new_id("exc", tx.now),
                    kind,
                    order_id,
                    ref,
                    channel_code,
                    orjson.dumps(detail).decode(),
                    tx.now,
                )
                for kind, order_id, ref, detail in new
            ],
        )
        return new

    async def statement(self, statement_id: str) -> StatementRow | None:
        row = await self.tx.fetchrow("SELECT * FROM statements WHERE id = $1", statement_id)
        return None if row is None else _statement(row)

    async def statements(self, channel_code: str | None, limit: int) -> list[StatementRow]:
        where, args = ("WHERE channel_code = $2", [channel_code]) if channel_code else ("", [])
        rows = await self.tx.fetch(
            f"SELECT * FROM statements {where} ORDER BY created_at DESC, id DESC LIMIT $1", limit, *args
        )
        return [_statement(r) for r in rows]

    async def discrepancies(
        self, statement_id: str, kind: str | None = None, limit: int | None = None
    ) -> list[DiscrepancyRow]:
        sql = "SELECT supplier_ref, kind, ours, theirs FROM statement_discrepancies WHERE statement_id = $1"
        args: list[Any] = [statement_id]
        if kind:
            args.append(kind)
            sql += f" AND kind = ${len(args)}"
        sql += " ORDER BY seq"
        if limit is not None:
            args.append(limit)
            sql += f" LIMIT ${len(args)}"
        return [DiscrepancyRow(*r) for r in await self.tx.fetch_values(sql, *args)]

    async def exceptions_by_ref(self, refs: Iterable[str], kinds: Iterable[str]) -> list[ExceptionState]:
        tx = self.tx
        rows = await tx.fetch(
            "SELECT id, kind, ref, resolved_at, resolved_by, resolution_note FROM exceptions"
            f" WHERE ref {in_param(tx, 1)} AND kind {in_param(tx, 2)}",
            list_param(tx, refs),
            list_param(tx, kinds),
        )
        return [ExceptionState(**r) for r in rows]
