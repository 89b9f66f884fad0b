"""Storage the catalog use cases need (see `topup.services.uow.UnitOfWork`)."""

from __future__ import annotations

from typing import Protocol


class CatalogRepository(Protocol):
    """Filled in as the catalog services move their statements into the SQL repository."""
