"""Storage the supplier ops use cases need (see `topup.services.uow.UnitOfWork`)."""

from __future__ import annotations

from typing import Protocol


class SupplierOpsRepository(Protocol):
    """Filled in as the supplier ops services move their statements into the SQL repository."""
