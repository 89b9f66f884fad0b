"""The in-memory unit of work and its database: each unit works on a deep copy of the state, which
replaces the committed state when the unit ends without an error (one unit at a time, like SQLite)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from topup.adapters.db.memory.areas import (
    MemoryCatalog,
    MemoryLedger,
    MemoryMerchants,
    MemoryNotifications,
    MemoryOperators,
    MemoryPayments,
    MemoryRetention,
    MemorySupplierOps,
)
from topup.adapters.db.memory.jobs import MemoryJobs, claim, next_due
from topup.adapters.db.memory.orders import MemoryOrders
from topup.adapters.db.memory.state import State
from topup.clock import Clock, FakeClock
from topup.services.ports.catalog import CatalogRepository
from topup.services.ports.jobs import JobsRepository, StoredJob
from topup.services.ports.ledger import LedgerRepository
from topup.services.ports.merchants import MerchantsRepository
from topup.services.ports.notifications import NotificationsRepository
from topup.services.ports.operators import OperatorsRepository
from topup.services.ports.orders import OrdersRepository
from topup.services.ports.payments import PaymentsRepository
from topup.services.ports.retention import RetentionRepository
from topup.services.ports.supplier_ops import SupplierOpsRepository
from topup.services.uow import UnitOfWork

T = TypeVar("T")


class MemoryUnitOfWork:
    """`services.uow.UnitOfWork` over a copy of the state."""

    def __init__(self, state: State, now: float) -> None:
        self.state = state
        self._now = now
        self.woke = False
        self._after_commit: list[Callable[[], Any]] = []
        self._before_commit: list[Callable[[], Awaitable[Any]]] = []
        self._first = 0
        self._orders = MemoryOrders(self)
        self._jobs = MemoryJobs(self)
        self._catalog = MemoryCatalog(self)
        self._ledger = MemoryLedger(self)
        self._payments = MemoryPayments(self)
        self._merchants = MemoryMerchants(self)
        self._notifications = MemoryNotifications(self)
        self._supplier_ops = MemorySupplierOps(self)
        self._operators = MemoryOperators(self)
        self._retention = MemoryRetention(self)

    @property
    def now(self) -> float:
        return self._now

    def after_commit(self, fn: Callable[[], Any]) -> None:
        self._after_commit.append(fn)

    def before_commit(self, fn: Callable[[], Awaitable[Any]], last: bool = False) -> None:
        if last:
            self._before_commit.append(fn)
        else:
            self._before_commit.insert(self._first, fn)
            self._first += 1

    async def _run_before_commit(self) -> None:
        i = 0
        while i < len(self._before_commit):  # a hook may register another
            await self._before_commit[i]()
            i += 1

    @property
    def orders(self) -> OrdersRepository:
        return self._orders

    @property
    def jobs(self) -> JobsRepository:
        return self._jobs

    # The fakes below cover what the order path uses; their other methods raise `NotFaked`.

    @property
    def catalog(self) -> CatalogRepository:
        return cast("CatalogRepository", self._catalog)

    @property
    def merchants(self) -> MerchantsRepository:
        return cast("MerchantsRepository", self._merchants)

    @property
    def ledger(self) -> LedgerRepository:
        return cast("LedgerRepository", self._ledger)

    @property
    def payments(self) -> PaymentsRepository:
        return cast("PaymentsRepository", self._payments)

    @property
    def notifications(self) -> NotificationsRepository:
        return cast("NotificationsRepository", self._notifications)

    @property
    def supplier_ops(self) -> SupplierOpsRepository:
        return cast("SupplierOpsRepository", self._supplier_ops)

    @property
    def operators(self) -> OperatorsRepository:
        return cast("OperatorsRepository", self._operators)

    @property
    def retention(self) -> RetentionRepository:
        return cast("RetentionRepository", self._retention)


class MemoryDatabase:
    """`services.uow.Transactions` (and the engine's `Storage`) in memory: `state` is what is committed."""

    def __init__(self, clock: Clock | None = None, state: State | None = None) -> None:
        self.clock = clock or FakeClock()
        self.state = state or State()
        self.commits = 0
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[MemoryUnitOfWork]:
        """Commit on success (the copy becomes the state), drop everything on error."""
        async with self._lock:
            uow = MemoryUnitOfWork(copy.deepcopy(self.state), self.clock.now())
            yield uow
            await uow._run_before_commit()
            self.state = uow.state
            self.commits += 1
        for fn in uow._after_commit:
            fn()

    async def run_grouped(self, fn: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        """No grouping in memory: `fn` in a unit of work of its own."""
        async with self.transaction() as uow:
            return await fn(uow)

    def reads(self) -> contextlib.AbstractAsyncContextManager[MemoryUnitOfWork]:
        return self.transaction()

    def claim_next(self, lease_s: float = 30.0, *, wait_until: float = math.inf) -> StoredJob | None:
        """Claim the unclaimed job due first, as a worker would. With a fake clock, a job due later
        but no later than `wait_until` moves the clock to its time first (nothing sleeps)."""
        job = next_due(self.state)
        if job is None:
            return None
        now = self.clock.now()
        if now < job.run_at <= wait_until and isinstance(self.clock, FakeClock):
            self.clock.advance(job.run_at - now)
            now = self.clock.now()
        if job.run_at > now + 1e-9:  # (advancing by a difference may fall short by a rounding error)
            return None
        return claim(self.state, job, now, lease_s)


if TYPE_CHECKING:
    from topup.services.fulfilment import Storage

    def _is_storage(db: MemoryDatabase) -> Storage:
        return db  # the routing engine runs on the in-memory database
