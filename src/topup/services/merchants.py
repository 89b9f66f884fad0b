"""Merchants: create/replace, deposits, authentication lookups."""

from __future__ import annotations

from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update

from topup.adapters.db import tables as t
from topup.adapters.db.engine import Tx
from topup.adapters.db.helpers import insert_ignore
from topup.domain import ledger as L
from topup.domain.errors import IdempotencyConflict, NotFound
from topup.services import ledger

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


async def put_merchant(tx: Tx, merchant_id: str, data: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    values: dict[str, Any] = {
        "name": data["name"],
        "secret": data["secret"],
        "notify_url": data.get("notify_url"),
        "updated_at": tx.now,
    }
    if data.get("password"):
        values["password_hash"] = hash_password(data["password"])
    created = await insert_ignore(
        tx, t.merchants, {"id": merchant_id, "created_at": tx.now, **values}, ["id"]
    )
    if not created:
        await tx.conn.execute(update(t.merchants).where(t.merchants.c.id == merchant_id).values(**values))
    await ledger.ensure_account(tx, L.available_account(merchant_id), merchant_id)
    await ledger.ensure_account(tx, L.held_account(merchant_id), merchant_id)
    row = (await tx.conn.execute(select(t.merchants).where(t.merchants.c.id == merchant_id))).one()
    return public(row), created


async def get_merchant(tx: Tx, merchant_id: str) -> Any | None:
    return (await tx.conn.execute(select(t.merchants).where(t.merchants.c.id == merchant_id))).first()


async def credit(tx: Tx, merchant_id: str, amount: int, reference: str) -> tuple[dict[str, Any], bool]:
    """A deposit, idempotent by reference: the same reference twice credits once."""
    if await get_merchant(tx, merchant_id) is None:
        raise NotFound(f"merchant {merchant_id} does not exist")
    created = await ledger.post(
        tx,
        L.TransferKind.DEPOSIT,
        f"{merchant_id}:{reference}",
        L.transfer(L.WORLD_DEPOSITS, L.available_account(merchant_id), amount),
        merchant_id=merchant_id,
    )
    row = (
        await tx.conn.execute(
            select(t.transfers.c.amount).where(
                t.transfers.c.kind == str(L.TransferKind.DEPOSIT),
                t.transfers.c.reference == f"{merchant_id}:{reference}",
            )
        )
    ).one()
    if not created and int(row.amount) != amount:
        raise IdempotencyConflict(
            f"deposit reference {reference} was already used with amount {int(row.amount)}"
        )
    bal = await ledger.balance(tx, merchant_id)
    return {
        "merchant_id": merchant_id,
        "reference": reference,
        "amount": int(row.amount),
        "balance": bal,
    }, created
