"""Every statement the catalog services run (implements `services.ports.catalog`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update

from topup.adapters.db import tables as t
from topup.adapters.db.helpers import insert_ignore
from topup.domain.routing import GroupState
from topup.services.ports.catalog import CatalogRows, ChannelRow, GroupRow, MemberRow, ProductRow

if TYPE_CHECKING:
    from topup.adapters.db.engine import Tx

_GROUP_STATE = (
    "SELECT sticky, recovery_s, active_channel, switched_at, probe_order_id, probe_until"
    " FROM groups WHERE code = $1"
)


def _product(r: Any) -> ProductRow:
    return ProductRow(
        r.code, r.business_type, r.brand, r.name, int(r.face_value), int(r.price), bool(r.enabled)
    )


class SqlCatalog:
    __slots__ = ("tx",)

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def load(self) -> CatalogRows:
        conn = self.tx.conn
        products = [_product(r) for r in (await conn.execute(select(t.products))).all()]
        channels = [
            ChannelRow(**{f: getattr(r, f) for f in ChannelRow._fields})
            for r in (await conn.execute(select(t.channels))).all()
        ]
        members = [
            MemberRow(r.group_code, r.channel_code, r.priority, r.weight, r.costs, r.carriers, r.regions)
            for r in (await conn.execute(select(t.group_members))).all()
        ]
        groups = [
            GroupRow(r.code, r.business_type, r.brand, r.strategy, r.sticky, r.recovery_s)
            for r in (await conn.execute(select(t.groups))).all()
        ]
        return CatalogRows(products, channels, members, groups)

    async def product(self, code: str) -> ProductRow | None:
        row = (await self.tx.conn.execute(select(t.products).where(t.products.c.code == code))).first()
        return None if row is None else _product(row)

    async def put_product(self, code: str, values: Mapping[str, Any]) -> bool:
        tx = self.tx
        created = await insert_ignore(tx, t.products, {"code": code, **values}, ["code"])
        if not created:
            await tx.conn.execute(update(t.products).where(t.products.c.code == code).values(**values))
        return created

    async def put_channel(self, code: str, values: Mapping[str, Any]) -> bool:
        tx = self.tx
        created = await insert_ignore(tx, t.channels, {"code": code, **values}, ["code"])
        if not created:
            await tx.conn.execute(update(t.channels).where(t.channels.c.code == code).values(**values))
        return created

    async def channel_enabled(self, code: str) -> bool | None:
        row = (
            await self.tx.conn.execute(select(t.channels.c.enabled).where(t.channels.c.code == code))
        ).first()
        return None if row is None else bool(row.enabled)

    async def set_channel_enabled(self, code: str, enabled: bool) -> bool:
        tx = self.tx
        res = await tx.conn.execute(
            update(t.channels).where(t.channels.c.code == code).values(enabled=enabled, updated_at=tx.now)
        )
        return bool(res.rowcount == 1)

    async def channel_codes(self) -> set[str]:
        return {r.code for r in (await self.tx.conn.execute(select(t.channels.c.code))).all()}

    async def group_serving(self, business_type: str, brand: str | None, other_than: str) -> str | None:
        clash = (
            await self.tx.conn.execute(
                select(t.groups.c.code).where(
                    t.groups.c.business_type == business_type,
                    t.groups.c.brand.is_(None) if brand is None else t.groups.c.brand == brand,
                    t.groups.c.code != other_than,
                )
            )
        ).first()
        return None if clash is None else str(clash.code)

    async def put_group(self, code: str, values: Mapping[str, Any]) -> bool:
        tx = self.tx
        created = await insert_ignore(tx, t.groups, {"code": code, **values}, ["code"])
        if not created:
            await tx.conn.execute(update(t.groups).where(t.groups.c.code == code).values(**values))
            await tx.conn.execute(delete(t.group_members).where(t.group_members.c.group_code == code))
        return created

    async def add_members(self, code: str, members: Sequence[Mapping[str, Any]]) -> None:
        await self.tx.conn.execute(
            t.group_members.insert(),
            [
                {
                    "group_code": code,
                    "channel_code": m["channel"],
                    "priority": m["priority"],
                    "weight": m["weight"],
                    "costs": m["costs"],
                    "carriers": m["carriers"],
                    "regions": m["regions"],
                }
                for m in members
            ],
        )

    async def active_channel(self, code: str) -> str | None:
        row = (
            await self.tx.conn.execute(select(t.groups.c.active_channel).where(t.groups.c.code == code))
        ).first()
        return None if row is None else row.active_channel  # type: ignore[no-any-return]

    async def clear_active_channel(self, code: str) -> None:
        await self.tx.conn.execute(
            update(t.groups)
            .where(t.groups.c.code == code)
            .values(active_channel=None, switched_at=None, probe_order_id=None, probe_until=None)
        )

    async def group_state(self, code: str, for_update: bool = False) -> GroupState | None:
        tx = self.tx
        sql = _GROUP_STATE + " FOR UPDATE" if for_update and tx.is_postgres else _GROUP_STATE
        r = await tx.fetchrow(sql, code)
        if r is None:
            return None
        return GroupState(
            bool(r.sticky), r.recovery_s, r.active_channel, r.switched_at, r.probe_order_id, r.probe_until
        )

    async def save_group_state(self, code: str, state: GroupState) -> None:
        await self.tx.conn.execute(
            update(t.groups)
            .where(t.groups.c.code == code)
            .values(
                active_channel=state.active_channel,
                switched_at=state.switched_at,
                probe_order_id=state.probe_order_id,
                probe_until=state.probe_until,
            )
        )

    async def record_switch(
        self, group: str, from_ch: str | None, to_ch: str, reason: str, order_id: str | None
    ) -> None:
        tx = self.tx
        await tx.conn.execute(
            t.group_switches.insert().values(
                group_code=group,
                from_channel=from_ch,
                to_channel=to_ch,
                reason=reason,
                order_id=order_id,
                at=tx.now,
            )
        )

    async def channel_credentials(self) -> list[tuple[str, str, str]]:
        ch = t.channels
        rows = (
            await self.tx.conn.execute(select(ch.c.code, ch.c.credentials, ch.c.secret).order_by(ch.c.code))
        ).all()
        return [(r.code, r.credentials, r.secret) for r in rows]

    async def reseal_credentials(self, code: str, sealed: str) -> None:
        ch = t.channels
        await self.tx.conn.execute(update(ch).where(ch.c.code == code).values(credentials=sealed, secret=""))
