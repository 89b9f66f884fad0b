"""Storage the notifications use cases need (see `topup.services.uow.UnitOfWork`)."""

from __future__ import annotations

from typing import Protocol


class NotificationsRepository(Protocol):
    """Filled in as the notifications services move their statements into the SQL repository."""
