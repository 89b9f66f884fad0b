"""The SQL repositories: every statement the services run, grouped by area.

`Repositories` is mixed into `Tx`, so a transaction is the SQL `UnitOfWork`: `tx.orders`, `tx.jobs`, ...
are built on first use (most transactions touch two or three areas) and share the transaction.
"""

from __future__ import annotations

from functools import cached_property

from topup.adapters.db.repos.catalog import SqlCatalog
from topup.adapters.db.repos.jobs import SqlJobs
from topup.adapters.db.repos.ledger import SqlLedger
from topup.adapters.db.repos.merchants import SqlMerchants
from topup.adapters.db.repos.notifications import SqlNotifications
from topup.adapters.db.repos.operators import SqlOperators
from topup.adapters.db.repos.orders import SqlOrders
from topup.adapters.db.repos.payments import SqlPayments
from topup.adapters.db.repos.retention import SqlRetention
from topup.adapters.db.repos.supplier_ops import SqlSupplierOps


class Repositories:
    """The repository attributes of a SQL unit of work (see `topup.services.uow.UnitOfWork`)."""

    @cached_property
    def orders(self) -> SqlOrders:
        return SqlOrders(self)  # type: ignore[arg-type]

    @cached_property
    def jobs(self) -> SqlJobs:
        return SqlJobs(self)  # type: ignore[arg-type]

    @cached_property
    def catalog(self) -> SqlCatalog:
        return SqlCatalog(self)  # type: ignore[arg-type]

    @cached_property
    def merchants(self) -> SqlMerchants:
        return SqlMerchants(self)  # type: ignore[arg-type]

    @cached_property
    def ledger(self) -> SqlLedger:
        return SqlLedger(self)  # type: ignore[arg-type]

    @cached_property
    def payments(self) -> SqlPayments:
        return SqlPayments(self)  # type: ignore[arg-type]

    @cached_property
    def notifications(self) -> SqlNotifications:
        return SqlNotifications(self)  # type: ignore[arg-type]

    @cached_property
    def supplier_ops(self) -> SqlSupplierOps:
        return SqlSupplierOps(self)  # type: ignore[arg-type]

    @cached_property
    def operators(self) -> SqlOperators:
        return SqlOperators(self)  # type: ignore[arg-type]

    @cached_property
    def retention(self) -> SqlRetention:
        return SqlRetention(self)  # type: ignore[arg-type]
