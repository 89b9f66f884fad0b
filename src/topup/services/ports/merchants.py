"""Storage the merchants use cases need (see `topup.services.uow.UnitOfWork`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Merchant:
    """A stored merchant (the secret and password hash never leave the platform: see `merchants.public`)."""

    id: str
    name: str
    secret: str
    password_hash: str | None
    notify_url: str | None
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class MerchantProfile:
    """What a merchant writes: name, signing secret, default notify URL, password hash (None: keep)."""

    name: str
    secret: str
    notify_url: str | None
    password_hash: str | None


class MerchantsRepository(Protocol):
    """Merchant rows."""

    async def put(self, merchant_id: str, profile: MerchantProfile) -> bool:
        """Create the merchant or replace its profile; True when it was created."""
        ...

    async def get(self, merchant_id: str) -> Merchant | None: ...

    async def one(self, merchant_id: str) -> Merchant:
        """The merchant, known to exist."""
        ...

    async def default_notify_url(self, merchant_id: str) -> str | None:
        """The merchant's default notify URL (None also when there is no such merchant)."""
        ...
