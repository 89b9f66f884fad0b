"""Storage the payments and batches use cases need (see `topup.services.uow.UnitOfWork`).

Batches live with payments: a batch is placed, then paid with one payment, and settles with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from topup.domain.batches import BatchStatus
from topup.domain.orders import Order
from topup.domain.payments import PaymentStatus


@dataclass(frozen=True)
class Payment:
    """A stored payment."""

    id: str
    merchant_id: str
    batch_id: str | None
    method: str
    amount: int
    status: str
    refunded: int
    expires_at: float | None
    created_at: float
    paid_at: float | None
    updated_at: float


@dataclass(frozen=True)
class Batch:
    """A stored batch (`rows`: the per-row results of placing it)."""

    id: str
    merchant_id: str
    merchant_batch_id: str
    request_hash: str
    status: str
    total_rows: int
    valid_rows: int
    amount: int
    notify_url: str | None
    payment_id: str | None
    rows: list[dict[str, Any]]
    created_at: float
    updated_at: float
    completed_at: float | None


class BatchOrderState(NamedTuple):
    """Where one order of a batch stands."""

    status: str
    price: int
    failure_reason: str | None
    updated_at: float


class PaymentsRepository(Protocol):
    """Payments, refunds, batches, and the `pending_payment` orders they start or cancel."""

    # ---- payments -------------------------------------------------------------------------------

    async def add(self, payment: Payment) -> None: ...

    async def get(self, payment_id: str, for_update: bool = False) -> Payment | None:
        """The payment (row-locked on PostgreSQL with `for_update`)."""
        ...

    async def settle(self, payment_id: str, outcome: PaymentStatus) -> bool:
        """pending -> `outcome` (paid also stamps paid_at); False when the payment was not pending."""
        ...

    async def order_ids(self, payment_id: str) -> list[str]:
        """Every order of the payment, by id."""
        ...

    async def pending_order_ids(self, payment_id: str) -> list[str]:
        """The payment's orders still in `pending_payment`, by id."""
        ...

    async def add_refund(self, payment_id: str, order_id: str, amount: int) -> None:
        """Record a refund to the gateway of one order's price."""
        ...

    async def add_refunded(self, payment_id: str, amount: int) -> None:
        """Add to the payment's refunded total."""
        ...

    # ---- the orders a payment moves ------------------------------------------------------------

    async def attach_orders(
        self, order_ids: list[str], merchant_id: str, payment_id: str, funding: str | None
    ) -> int:
        """Tie the merchant's `pending_payment` orders to the payment (with `funding`: paid, now
        processing); the number of orders changed."""
        ...

    async def start_orders(self, order_ids: list[str], funding: str) -> None:
        """`pending_payment` -> `processing`, paid with `funding`."""
        ...

    async def cancel_orders(self, order_ids: list[str], reason: str) -> list[str]:
        """`pending_payment` -> `cancelled`; the ids that moved."""
        ...

    async def add_order_events(self, order_ids: list[str], kind: str, detail: dict[str, Any]) -> None:
        """The same event for each order."""
        ...

    async def order_rows(self, order_ids: list[str]) -> list[Order]:
        """The orders as stored (what the order-final hooks take)."""
        ...

    # ---- batches -------------------------------------------------------------------------------

    async def add_batch(self, batch: Batch) -> bool:
        """Insert the batch unless the merchant used its merchant_batch_id; False if it did."""
        ...

    async def add_batch_orders(self, orders: Sequence[Order], batch_id: str) -> None:
        """Insert the batch's orders and their `created` events."""
        ...

    async def placed(self, batch_id: str, status: BatchStatus, completed: bool) -> None:
        """The batch's status once its orders are in."""
        ...

    async def batch(self, batch_id: str, merchant_id: str | None, for_update: bool = False) -> Batch | None:
        """The batch (of that merchant, when given); row-locked on PostgreSQL with `for_update`."""
        ...

    async def batch_by_merchant_id(self, merchant_id: str, merchant_batch_id: str) -> Batch | None: ...

    async def batches(self, merchant_id: str, limit: int) -> list[Batch]:
        """The merchant's batches, newest first."""
        ...

    async def set_batch_status(self, batch_id: str, status: BatchStatus, final: bool = False) -> None: ...

    async def set_batch_payment(self, batch_id: str, payment_id: str, status: BatchStatus) -> None: ...

    async def complete_batch(self, batch_id: str) -> bool:
        """processing -> completed; False when the batch was not processing."""
        ...

    async def touch_batch(self, batch_id: str) -> None:
        """Stamp the batch's updated_at."""
        ...

    async def batch_counts(self, batch_id: str) -> dict[str, int]:
        """Order count per status."""
        ...

    async def batch_order_states(self, batch_id: str, since: float | None) -> dict[str, BatchOrderState]:
        """Where each order of the batch stands (changed since `since`, when given)."""
        ...

    async def batch_payables(self, batch_id: str) -> list[tuple[str, int]]:
        """(order id, price) of the batch's `pending_payment` orders, by id."""
        ...

    async def batch_unpaid_order_ids(self, batch_id: str) -> list[str]: ...

    async def batch_has_open_orders(self, batch_id: str) -> bool:
        """Is any order of the batch not final yet?"""
        ...
