"""Storage the merchants use cases need (see `topup.services.uow.UnitOfWork`)."""

from __future__ import annotations

from typing import Protocol


class MerchantsRepository(Protocol):
    """Filled in as the merchants services move their statements into the SQL repository."""
