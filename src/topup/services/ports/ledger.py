"""Storage the ledger use cases need (see `topup.services.uow.UnitOfWork`)."""

from __future__ import annotations

from typing import Protocol


class LedgerRepository(Protocol):
    """Filled in as the ledger services move their statements into the SQL repository."""
