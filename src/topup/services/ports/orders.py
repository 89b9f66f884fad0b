"""Storage the orders use cases need (see `topup.services.uow.UnitOfWork`): orders, their attempts,
the operator timeline (order events), supplier callbacks and exceptions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from topup.domain.orders import Attempt, AttemptStatus, Order, OrderStatus


class DueAttempt(NamedTuple):
    """An attempt whose deadline came, with what a status query needs of its order."""

    attempt: Attempt
    product_code: str
    business_type: str


class DispatchReply(NamedTuple):
    """What a dispatch reply changes on its attempt."""

    supplier_order_id: str | None
    latency_ms: float
    dispatch_state: str
    dispatched_at: float
    deadline_at: float
    """The new deadline, applied only while the attempt is pending."""
    cost: int | None


class NewAttempt(NamedTuple):
    """An attempt about to be dispatched (stored `pending` before the request leaves)."""

    order_id: str
    no: int
    ref: str
    channel_code: str
    group_code: str
    dispatch_state: str
    deadline_at: float
    supplier_ref: str


class StoredCallback(NamedTuple):
    """A verified supplier callback, stored once per (channel, ref, status)."""

    channel_code: str
    ref: str
    status: str
    supplier_order_id: str | None
    code: str | None
    message: str | None


class OrderFilter(NamedTuple):
    """What a listing of orders is narrowed to (None: any)."""

    merchant_id: str | None = None
    status: str | None = None
    merchant_order_id: str | None = None
    account: str | None = None
    batch_id: str | None = None


class OrdersRepository(Protocol):
    """Orders and attempts within one unit of work; a status change is a conditional UPDATE whose row
    count says whether this unit of work made it."""

    # ---- orders -----------------------------------------------------------------------------------

    async def insert(self, order: Order) -> bool:
        """Store a new order unless the merchant already used its merchant_order_id; True if stored."""
        ...

    async def insert_many(self, orders: Sequence[Order]) -> None:
        """Store new orders whose merchant_order_ids nobody used (a batch's rows), in one statement."""
        ...

    async def get(self, order_id: str, merchant_id: str | None = None) -> Order | None:
        """The order (only if it is the merchant's, when `merchant_id` is given)."""
        ...

    async def by_merchant_order_id(self, merchant_id: str, merchant_order_id: str) -> Order | None: ...

    async def lock(self, order_id: str) -> Order | None:
        """The order, its row locked until commit (PostgreSQL; SQLite's writer lock covers it)."""
        ...

    async def page(
        self, where: OrderFilter, limit: int, before: tuple[float, str] | None = None
    ) -> list[Order]:
        """Newest first (created_at, id), at most `limit`, strictly before the `before` position."""
        ...

    async def move(
        self,
        order: Order,
        to: OrderStatus,
        *,
        failure_reason: str | None = None,
        succeeded_ref: str | None = None,
    ) -> bool:
        """Move the order as the transition table allows (`ForbiddenTransition` otherwise), provided
        it is still stored with the status it has here; False if it was not (another unit won)."""
        ...

    async def save_plan(self, order_id: str, plan: list[str], probe: bool, attempt_count: int) -> None:
        """Fix the order's route plan (and whether it probes) with its attempt count."""
        ...

    async def count_attempts(self, order_id: str, attempt_count: int) -> None: ...

    # ---- attempts ---------------------------------------------------------------------------------

    async def attempts(self, order_id: str) -> list[Attempt]:
        """The order's attempts, first first."""
        ...

    async def attempts_of(self, order_ids: list[str]) -> dict[str, list[Attempt]]:
        """The attempts of many orders (every id is a key, maybe with no attempts)."""
        ...

    async def attempt(self, ref: str) -> Attempt | None: ...

    async def attempt_by_supplier_ref(self, channel_code: str, supplier_ref: str) -> Attempt | None: ...

    async def due_attempt(self, ref: str) -> DueAttempt | None:
        """The attempt with its order's product and business type (for a status query)."""
        ...

    async def attempt_status(self, attempt_id: int) -> AttemptStatus | None:
        """The attempt's status as stored now."""
        ...

    async def add_attempt(self, new: NewAttempt) -> Attempt:
        """Store a `pending` attempt, started and dispatched now; the attempt as stored."""
        ...

    async def record_reply(self, ref: str, reply: DispatchReply) -> Attempt | None:
        """Store the dispatch reply on the attempt; the attempt as it is then (None: no such ref)."""
        ...

    async def move_attempt(self, attempt: Attempt, to: AttemptStatus, reason: str | None = None) -> bool:
        """Move the attempt as the transition table allows, provided its stored status is one the
        table allows that move from; False if it was not (someone else finished it)."""
        ...

    async def extend_deadline(self, attempt_id: int, deadline_at: float) -> None: ...

    async def channel_outcomes(self, channel_code: str, window: int) -> list[bool]:
        """Whether each of the channel's last `window` finished attempts succeeded, newest first."""
        ...

    # ---- timeline, callbacks, exceptions ----------------------------------------------------------

    def add_event(self, order_id: str, attempt_no: int | None, kind: str, detail: Mapping[str, Any]) -> None:
        """Append to the order's timeline (written with the unit of work's other events before commit)."""
        ...

    async def store_callback(self, callback: StoredCallback) -> bool:
        """Store a callback once per (channel, ref, status); False for a repeat."""
        ...

    async def set_callback_outcome(self, callback: StoredCallback, outcome: str) -> None: ...

    async def add_exception(
        self,
        kind: str,
        order_id: str | None,
        ref: str | None,
        channel_code: str | None,
        detail: Mapping[str, Any],
    ) -> None:
        """Something an operator must look at; one per (kind, ref) (`ref` defaults to the order id)."""
        ...
