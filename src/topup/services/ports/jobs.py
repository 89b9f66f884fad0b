"""Storage the jobs use cases need (see `topup.services.uow.UnitOfWork`)."""

from __future__ import annotations

from typing import Protocol


class JobsRepository(Protocol):
    """Filled in as the jobs services move their statements into the SQL repository."""
