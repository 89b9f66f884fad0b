"""Merchants: create/replace, deposits, authentication lookups."""

from __future__ import annotations

from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from topup.domain import ledger as L
from topup.domain.errors import IdempotencyConflict, NotFound
from topup.services import ledger
from topup.services.ports.merchants import Merchant, MerchantProfile
from topup.services.uow import UnitOfWork

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def public(row: Any) -> dict[str, Any]:
    """A merchant as operators see it: never the secret or the password hash."""
    return {
        "id": row.id,
        "name": row.name,
        "notify_url": row.notify_url,
        "has_password": bool(row.password_hash),
    }


async def put_merchant(
    uow: UnitOfWork, merchant_id: str, data: dict[str, Any]
) -> tuple[dict[str, Any], bool]:
    profile = MerchantProfile(
        name=data["name"],
        secret=data["secret"],
        notify_url=data.get("notify_url"),
        password_hash=hash_password(data["password"]) if data.get("password") else None,
    )
    created = await uow.merchants.put(merchant_id, profile)
    await ledger.ensure_account(uow, L.available_account(merchant_id), merchant_id)
    await ledger.ensure_account(uow, L.held_account(merchant_id), merchant_id)
    return public(await uow.merchants.one(merchant_id)), created


async def get_merchant(uow: UnitOfWork, merchant_id: str) -> Merchant | None:
    return await uow.merchants.get(merchant_id)


async def credit(
    uow: UnitOfWork, merchant_id: str, amount: int, reference: str
) -> tuple[dict[str, Any], bool]:
    """A deposit, idempotent by reference: the same reference twice credits once."""
    if await get_merchant(uow, merchant_id) is None:
        raise NotFound(f"merchant {merchant_id} does not exist")
    created = await ledger.post(
        uow,
        L.TransferKind.DEPOSIT,
        f"{merchant_id}:{reference}",
        L.transfer(L.WORLD_DEPOSITS, L.available_account(merchant_id), amount),
        merchant_id=merchant_id,
    )
    booked = await uow.ledger.transfer_amount(L.TransferKind.DEPOSIT, f"{merchant_id}:{reference}")
    if not created and booked != amount:
        raise IdempotencyConflict(f"deposit reference {reference} was already used with amount {booked}")
    bal = await ledger.balance(uow, merchant_id)
    return {
        "merchant_id": merchant_id,
        "reference": reference,
        "amount": booked,
        "balance": bal,
    }, created
