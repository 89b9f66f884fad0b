"""Operator changes with their audit entry: each reads the object before, makes the change through its
own service, and records who changed what (before -> after, secrets masked) in the same transaction.

The operator API, the console (which calls the API's handlers) and the CLI all change configuration
and money through these functions, so no interface can skip the audit log.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, update

from topup.adapters.db import tables as t
from topup.adapters.db.engine import Tx
from topup.domain.errors import InvalidState, NotFound
from topup.domain.roles import Actor
from topup.domain.suppliers import SupplierProtocol
from topup.keys import CredentialBox
from topup.services import audit, catalog, ledger, merchants
from topup.services.catalog import ConfigCache


async def _product(tx: Tx, code: str) -> dict[str, Any] | None:
    row = (await tx.conn.execute(select(t.products).where(t.products.c.code == code))).first()
    if row is None:
        return None
    return {
        "code": row.code,
        "business_type": row.business_type,
        "brand": row.brand,
        "name": row.name,
        "face_value": int(row.face_value),
        "price": int(row.price),
        "enabled": bool(row.enabled),
    }


async def put_product(tx: Tx, actor: Actor, code: str, data: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    before = await _product(tx, code)
    out, created = await catalog.put_product(tx, code, data)
    await audit.record(tx, actor, "product.put", f"product:{code}", before, await _product(tx, code))
    return out, created


async def put_channel(
    tx: Tx,
    actor: Actor,
    cache: ConfigCache,
    code: str,
    data: dict[str, Any],
    box: CredentialBox,
    suppliers: Mapping[str, SupplierProtocol],
) -> tuple[dict[str, Any], bool]:
    """Credentials appear masked by their protocol's `secret_fields` (`Channel.public()`)."""
    old = (await cache.fresh(tx)).channels.get(code)
    out, created = await catalog.put_channel(tx, code, data, box, suppliers)
    await audit.record(tx, actor, "channel.put", f"channel:{code}", old.public() if old else None, out)
    return out, created


async def set_channel_enabled(tx: Tx, actor: Actor, code: str, enabled: bool) -> None:
    row = (await tx.conn.execute(select(t.channels.c.enabled).where(t.channels.c.code == code))).first()
    await catalog.set_channel_enabled(tx, code, enabled)  # NotFound for an unknown channel
    assert row is not None
    await audit.record(
        tx,
        actor,
        "channel.enable" if enabled else "channel.disable",
        f"channel:{code}",
        {"enabled": bool(row.enabled)},
        {"enabled": enabled},
    )


def _group_config(code: str, data: Mapping[str, Any], members: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "code": code,
        "business_type": data["business_type"],
        "brand": data["brand"],
        "strategy": str(data["strategy"]),
        "sticky": bool(data["sticky"]),
        "recovery_s": data["recovery_s"],
        "members": sorted(
            (
                {
                    "channel": m["channel"],
                    "priority": m["priority"],
                    "weight": m["weight"],
                    "costs": dict(m.get("costs") or {}),
                    **{k: sorted(m[k]) for k in ("carriers", "regions") if m.get(k) is not None},
                }
                for m in members
            ),
            key=lambda m: (m["priority"], m["channel"]),
        ),
    }


async def put_group(tx: Tx, actor: Actor, cache: ConfigCache, code: str, data: dict[str, Any]) -> bool:
    old = (await cache.fresh(tx)).groups.get(code)
    before = None
    if old is not None:
        members = [
            {
                "channel": m.channel,
                "priority": m.priority,
                "weight": m.weight,
                "costs": m.costs,
                "carriers": m.carriers,
                "regions": m.regions,
            }
            for m in old.members
        ]
        fields = {
            "business_type": old.business_type,
            "brand": old.brand,
            "strategy": old.strategy,
            "sticky": old.sticky,
            "recovery_s": old.recovery_s,
        }
        before = _group_config(code, fields, members)
    after = _group_config(code, data, list(data["members"]))
    created = await catalog.put_group(tx, code, dict(data))
    await audit.record(tx, actor, "group.put", f"group:{code}", before, after)
    return created


def _merchant_view(row: Any) -> dict[str, Any]:
    return {**merchants.public(row), "secret": row.secret}


async def put_merchant(
    tx: Tx, actor: Actor, merchant_id: str, data: dict[str, Any]
) -> tuple[dict[str, Any], bool]:
    row = await merchants.get_merchant(tx, merchant_id)
    before = None if row is None else _merchant_view(row)
    out, created = await merchants.put_merchant(tx, merchant_id, data)
    after = _merchant_view(await merchants.get_merchant(tx, merchant_id))
    if data.get("password"):
        after["password"] = "**** (changed)"
    await audit.record(tx, actor, "merchant.put", f"merchant:{merchant_id}", before, after)
    return out, created


async def credit(
    tx: Tx, actor: Actor, merchant_id: str, amount: int, reference: str
) -> tuple[dict[str, Any], bool]:
    """A deposit; the replay of a reference already booked changes nothing and is not an entry."""
    if await merchants.get_merchant(tx, merchant_id) is None:
        raise NotFound(f"merchant {merchant_id} does not exist")
    before = await ledger.balance(tx, merchant_id)
    out, created = await merchants.credit(tx, merchant_id, amount, reference)
    if created:
        await audit.record(
            tx,
            actor,
            "merchant.credit",
            f"merchant:{merchant_id}",
            {"balance": before},
            {"amount": amount, "reference": reference, "balance": out["balance"]},
        )
    return out, created


async def resolve_exception(tx: Tx, actor: Actor, exception_id: str, note: str, by: str) -> Any:
    """Mark an exception resolved (409 when it already is); returns the row."""
    res = await tx.conn.execute(
        update(t.exceptions)
        .where(t.exceptions.c.id == exception_id, t.exceptions.c.resolved_at.is_(None))
        .values(resolved_at=tx.now, resolved_by=by, resolution_note=note)
    )
    row = (await tx.conn.execute(select(t.exceptions).where(t.exceptions.c.id == exception_id))).first()
    if row is None:
        raise NotFound(f"exception {exception_id} not found")
    if res.rowcount != 1:
        raise InvalidState("exception is already resolved")
    await audit.record(
        tx,
        actor,
        "exception.resolve",
        f"exception:{exception_id}",
        {"kind": row.kind, "order_id": row.order_id, "resolved": False},
        {"kind": row.kind, "order_id": row.order_id, "resolved": True, "resolved_by": by, "note": note},
    )
    return row
