"""Every statement the merchants services run (implements `services.ports.merchants`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from topup.adapters.db import tables as t
from topup.adapters.db.helpers import insert_ignore
from topup.services.ports.merchants import Merchant, MerchantProfile

if TYPE_CHECKING:
    from topup.adapters.db.engine import Tx


def merchant_of(r: Any) -> Merchant:
    return Merchant(r.id, r.name, r.secret, r.password_hash, r.notify_url, r.created_at, r.updated_at)


class SqlMerchants:
    __slots__ = ("tx",)

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def put(self, merchant_id: str, profile: MerchantProfile) -> bool:
        tx = self.tx
        values: dict[str, Any] = {
            "name": profile.name,
            "secret": profile.secret,
            "notify_url": profile.notify_url,
            "updated_at": tx.now,
        }
        if profile.password_hash is not None:
            values["password_hash"] = profile.password_hash
        created = await insert_ignore(
            tx, t.merchants, {"id": merchant_id, "created_at": tx.now, **values}, ["id"]
        )
        if not created:
            await tx.conn.execute(update(t.merchants).where(t.merchants.c.id == merchant_id).values(**values))
        return created

    async def get(self, merchant_id: str) -> Merchant | None:
        row = (await self.tx.conn.execute(select(t.merchants).where(t.merchants.c.id == merchant_id))).first()
        return None if row is None else merchant_of(row)

    async def one(self, merchant_id: str) -> Merchant:
        return merchant_of(
            (await self.tx.conn.execute(select(t.merchants).where(t.merchants.c.id == merchant_id))).one()
        )

    async def default_notify_url(self, merchant_id: str) -> str | None:
        row = await self.tx.fetchrow("SELECT notify_url FROM merchants WHERE id = $1", merchant_id)
        return row.notify_url if row else None
