"""Storage the supplier-operations use cases need (see `topup.services.uow.UnitOfWork`): balance checks
and pauses, rate-limit slots, and statement reconciliation (SPEC sections 7 and 8)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, Protocol


class LastBalance(NamedTuple):
    amount: int
    currency: str | None
    checked_at: float


class BalanceCheck(NamedTuple):
    ok: bool
    amount: int | None
    currency: str | None
    error: str | None
    checked_at: float


class PauseState(NamedTuple):
    """A channel's pause as stored, and the minimum balance it is judged by."""

    paused: str | None
    paused_at: float | None
    min_balance: int | None


class RateSlot(NamedTuple):
    slot: int
    at: float
    started: float


# One attempt of a statement's channel: (supplier_ref, ref, order_id, status, dispatched at, posted cost).
AttemptCost = tuple[str | None, str, str, str, float, int | None]


class NewException(NamedTuple):
    """An operator exception to raise: one per (kind, ref)."""

    kind: str
    order_id: str | None
    ref: str
    detail: dict[str, Any]


class StatementRow(NamedTuple):
    """A stored statement's header (`summary` is JSON text on both databases)."""

    id: str
    channel_code: str
    period_from: float
    period_to: float
    digest: str
    format: str
    rows: int
    matched: int
    summary: Any
    created_by: str | None
    created_at: float


class NewStatement(NamedTuple):
    id: str
    channel_code: str
    period_from: float
    period_to: float
    digest: str
    format: str
    rows: int
    matched: int
    summary: str
    created_by: str | None


class DiscrepancyRow(NamedTuple):
    """(supplier_ref, kind, ours, theirs) with `ours` / `theirs` JSON text (or None)."""

    supplier_ref: str
    kind: str
    ours: Any
    theirs: Any


class ExceptionState(NamedTuple):
    id: str
    kind: str
    ref: str
    resolved_at: float | None
    resolved_by: str | None
    resolution_note: str | None


class SupplierOpsRepository(Protocol):
    # ---- balances and pauses (SPEC 7)
    async def add_balance_check(
        self, code: str, ok: bool, amount: int | None, currency: str | None, error: str | None
    ) -> None:
        """Keep one answer of the channel's supplier (at the transaction's time)."""
        ...

    async def last_balance(self, code: str) -> LastBalance | None:
        """The channel's last successful check."""
        ...

    async def last_amount(self, code: str) -> tuple[int, str | None] | None:
        """(amount, currency) of the channel's last successful check."""
        ...

    async def balance_history(self, code: str, limit: int) -> list[BalanceCheck]:
        """The newest checks first, failed ones included."""
        ...

    async def lock_pause(self, code: str) -> PauseState | None:
        """The channel's pause, its row locked for the rest of the transaction (None: no channel)."""
        ...

    async def pause(self, code: str, reason: str) -> bool:
        """Pause the channel unless it already is; True when this call paused it."""
        ...

    async def resume(self, code: str, reason: str) -> bool:
        """Resume the channel if it is paused for `reason`; True when this call resumed it."""
        ...

    async def add_exception(self, kind: str, ref: str, channel_code: str, detail: dict[str, Any]) -> bool:
        """Raise an operator exception about a channel unless (kind, ref) exists; True when new."""
        ...

    async def exception_detail(self, kind: str, ref: str) -> dict[str, Any] | None: ...

    async def set_exception_detail(self, kind: str, ref: str, detail: dict[str, Any]) -> None: ...

    # ---- rate limits (SPEC 7)
    def clock_now(self) -> float:
        """The clock now (later than the transaction's `now` when it waited for locks)."""
        ...

    async def ensure_rate_slots(self, code: str, limit: int) -> None:
        """The channel's `limit` slots exist (created once per process and database)."""
        ...

    async def oldest_slot(self, code: str, limit: int, *, skip_locked: bool) -> RateSlot | None:
        """The slot free soonest, locked (on PostgreSQL; `skip_locked`: one locked elsewhere is skipped)."""
        ...

    async def start_on_held_slot(self, code: str, slot: int, now: float, free_since: float) -> bool:
        """Start now on a held slot whose last dispatch started by `free_since`; False when it did not."""
        ...

    async def slot_started(self, code: str, slot: int) -> float | None:
        """When the slot's last dispatch started."""
        ...

    async def claim_slot(self, code: str, slot: RateSlot, now: float) -> bool:
        """Take the slot (as read) for a start now; False when another transaction changed it first."""
        ...

    async def reserve_slot(self, code: str, slot: RateSlot, at: float) -> bool:
        """Reserve the slot's next start at `at`; False when another reservation changed it first."""
        ...

    async def record_slot_start(self, code: str, slot: int, at: float) -> None:
        """The dispatch on the slot really started at `at` (kept when later than recorded)."""
        ...

    async def rate_waiting(self) -> dict[str, int]:
        """Route jobs holding a rate-limit reservation, per channel."""
        ...

    async def rate_waiting_payloads(self, code: str) -> list[dict[str, Any]]:
        """The payloads of the route jobs holding a reservation at one channel."""
        ...

    # ---- statements (SPEC 8)
    async def attempts_in_period(
        self, channel_code: str, cost_kind: str, start: float, end: float
    ) -> list[AttemptCost]:
        """The channel's attempts dispatched in [start, end), with their posted costs (bulk)."""
        ...

    async def attempts_by_supplier_ref(
        self, channel_code: str, cost_kind: str, refs: Iterable[str]
    ) -> list[AttemptCost]:
        """The channel's attempts with these supplier refs, with their posted costs (bulk)."""
        ...

    def new_statement_id(self) -> str:
        """A new, roughly time-ordered statement id."""
        ...

    async def add_statement(self, statement: NewStatement) -> bool:
        """Store a statement unless the same file for the same channel and period is; True when new."""
        ...

    async def add_discrepancies(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """(statement_id, seq, supplier_ref, kind, ours, theirs, at_stake) rows, in one statement."""
        ...

    async def find_statement(
        self, channel_code: str, start: float, end: float, digest: str
    ) -> str | None: ...

    async def order_statuses(self, order_ids: Iterable[str]) -> dict[str, str]: ...

    async def add_exceptions(self, channel_code: str, items: Sequence[NewException]) -> list[NewException]:
        """Raise exceptions about a channel, skipping (kind, ref)s that exist; returns the new ones."""
        ...

    async def statement(self, statement_id: str) -> StatementRow | None: ...

    async def statements(self, channel_code: str | None, limit: int) -> list[StatementRow]:
        """Newest first."""
        ...

    async def discrepancies(
        self, statement_id: str, kind: str | None = None, limit: int | None = None
    ) -> list[DiscrepancyRow]:
        """In their order (optionally one kind, the first `limit`)."""
        ...

    async def exceptions_by_ref(self, refs: Iterable[str], kinds: Iterable[str]) -> list[ExceptionState]: ...
