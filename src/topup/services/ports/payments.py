"""Storage the payments use cases need (see `topup.services.uow.UnitOfWork`)."""

from __future__ import annotations

from typing import Protocol


class PaymentsRepository(Protocol):
    """Filled in as the payments services move their statements into the SQL repository."""
