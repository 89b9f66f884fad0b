"""Storage the orders use cases need (see `topup.services.uow.UnitOfWork`)."""

from __future__ import annotations

from typing import Protocol


class OrdersRepository(Protocol):
    """Filled in as the orders services move their statements into the SQL repository."""
