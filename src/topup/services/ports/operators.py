"""Storage the operators use cases need (see `topup.services.uow.UnitOfWork`)."""

from __future__ import annotations

from typing import Protocol


class OperatorsRepository(Protocol):
    """Filled in as the operators services move their statements into the SQL repository."""
