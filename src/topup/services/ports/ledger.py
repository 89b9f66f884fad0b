"""Storage the ledger use cases need (see `topup.services.uow.UnitOfWork`)."""

from __future__ import annotations

from typing import NamedTuple, Protocol

from topup.domain import ledger as L
from topup.domain.costs import MarginBy


class TransferMade(NamedTuple):
    """The stored head of a transfer: what it moved, and when."""

    amount: int
    created_at: float


class Mismatch(NamedTuple):
    """An account whose cached balance differs from the sum of its postings."""

    account: str
    balance: int
    postings: int


class BooksTotals(NamedTuple):
    """The figures `ledger.check` judges the books by."""

    postings_sum: int
    unbalanced_transfers: int
    mismatched: list[Mismatch]
    negative_accounts: list[str]
    transfers: int


class Prepayment(NamedTuple):
    reference: str
    amount: int
    created_at: float


class RevenueLine(NamedTuple):
    """Succeeded orders of a margin report line: (key, orders, revenue, orders without a cost posting)."""

    key: str
    orders: int
    revenue: int
    uncosted: int


class CostLine(NamedTuple):
    """Cost postings of a margin report line: (key, cost, fulfilments)."""

    key: str
    cost: int
    fulfilments: int


class LedgerRepository(Protocol):
    """Transfers, postings and the cached account balances."""

    async def ensure_account(self, account_id: str, merchant_id: str | None = None) -> None:
        """Create the account with a zero balance unless it exists."""
        ...

    async def add_transfer(
        self,
        kind: L.TransferKind,
        reference: str,
        postings: list[L.Posting],
        amount: int,
        merchant_id: str | None,
        order_id: str | None,
        payment_id: str | None,
    ) -> bool:
        """Insert the transfer and its postings unless (kind, reference) exists; False if it did."""
        ...

    def change_balances(self, changes: list[tuple[str, int, str | None]]) -> None:
        """Queue (account, delta, owner merchant) changes, applied as the transaction's last statements."""
        ...

    async def apply_balances(self) -> None:
        """Apply the queued balance changes now (a read of balances follows)."""
        ...

    async def balances(self, account_ids: list[str]) -> dict[str, int]:
        """Cached balances of the given accounts (missing accounts are left out)."""
        ...

    async def supplier_balances(self) -> dict[str, int]:
        """Cached balance of every `supplier:` account."""
        ...

    async def prepaid_by_supplier(self) -> dict[str, int]:
        """Sum of the prepayment postings of every `supplier:` account."""
        ...

    async def transfer_amount(self, kind: L.TransferKind, reference: str) -> int:
        """The amount of a transfer known to exist."""
        ...

    async def transfer_made(self, kind: L.TransferKind, reference: str) -> TransferMade | None: ...

    async def prepayments(self, prefix: str, limit: int) -> list[Prepayment]:
        """Prepayment transfers whose reference starts with `prefix`, newest first."""
        ...

    async def books_totals(self) -> BooksTotals: ...

    async def margin_lines(
        self, start: float, end: float, by: MarginBy
    ) -> tuple[list[RevenueLine], list[CostLine]]:
        """Revenue of orders succeeded in [start, end) and costs posted in it, grouped `by`."""
        ...
