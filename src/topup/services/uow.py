"""The unit of work: what a use case sees of one transaction.

Services take a `UnitOfWork` and reach storage only through its repositories (typed methods, one per
statement or batch of statements); they never import tables or write SQL. `topup.adapters.db.engine.Tx`
is the SQL implementation (`Database.transaction()` yields one); `topup.adapters.db.memory` holds the
in-memory fakes for fast tests.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, TypeVar

from topup.clock import Clock
from topup.services.ports.catalog import CatalogRepository
from topup.services.ports.jobs import JobsRepository
from topup.services.ports.ledger import LedgerRepository
from topup.services.ports.merchants import MerchantsRepository
from topup.services.ports.notifications import NotificationsRepository
from topup.services.ports.operators import OperatorsRepository
from topup.services.ports.orders import OrdersRepository
from topup.services.ports.payments import PaymentsRepository
from topup.services.ports.retention import RetentionRepository
from topup.services.ports.supplier_ops import SupplierOpsRepository

T = TypeVar("T")


class Declined(Exception):
    """A unit of work declines: it raises this to roll back what it wrote (a route job whose channel
    is at its rate limit or stuck). When that happens in a group, `run_grouped` runs the unit again
    alone only after the group-mates it was tried with (who came first) have committed without it: it
    then meets the limit as they left it, as it would have one after the other."""


class UnitOfWork(Protocol):
    """One transaction: commit on success, roll back on error (the caller's `async with` decides)."""

    @property
    def now(self) -> float:
        """The transaction's clock reading (epoch seconds), the same for every statement in it."""
        ...

    def after_commit(self, fn: Callable[[], Any]) -> None:
        """Run `fn` once the transaction committed (dropped on rollback)."""
        ...

    def before_commit(self, fn: Callable[[], Awaitable[Any]], last: bool = False) -> None:
        """Run `fn` as the transaction's last statements; an exception from it rolls everything back."""
        ...

    @property
    def orders(self) -> OrdersRepository: ...

    @property
    def jobs(self) -> JobsRepository: ...

    @property
    def catalog(self) -> CatalogRepository: ...

    @property
    def merchants(self) -> MerchantsRepository: ...

    @property
    def ledger(self) -> LedgerRepository: ...

    @property
    def payments(self) -> PaymentsRepository: ...

    @property
    def notifications(self) -> NotificationsRepository: ...

    @property
    def supplier_ops(self) -> SupplierOpsRepository: ...

    @property
    def operators(self) -> OperatorsRepository: ...

    @property
    def retention(self) -> RetentionRepository: ...


class Transactions(Protocol):
    """Where units of work come from (`topup.adapters.db.engine.Database`, or the in-memory fake)."""

    def transaction(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """A new unit of work: committed when the block ends, rolled back if it raises."""
        ...

    async def run_grouped(self, fn: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        """`fn(uow)` (database work only: no HTTP, no sleeping) in a unit of work that may be shared
        with other callers' at that moment (group commit); its result once that committed. Whatever
        happens to the others, the caller gets the outcome it would have had in a unit of its own."""
        ...

    def reads(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """A unit of work for a few independent statements that need no transaction around them
        (on PostgreSQL each runs on its own); nothing in it may wait for a commit."""
        ...


class Storage(Transactions, Protocol):
    """Transactions plus the clock they read (`Database`, or the in-memory fake with a fake clock)."""

    @property
    def clock(self) -> Clock: ...
