"""Operator changes with their audit entry: each reads the object before, makes the change through its
own service, and records who changed what (before -> after, secrets masked) in the same transaction.

The operator API, the console (which calls the API's handlers) and the CLI all change configuration
and money through these functions, so no interface can skip the audit log.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from topup.domain.errors import InvalidState, NotFound
from topup.domain.roles import Actor
from topup.domain.suppliers import SupplierProtocol
from topup.keys import CredentialBox
from topup.services import audit, catalog, ledger, merchants
from topup.services.catalog import ConfigCache
from topup.services.ports.operators import ExceptionRow
from topup.services.uow import UnitOfWork


async def _product(uow: UnitOfWork, code: str) -> dict[str, Any] | None:
    row = await uow.catalog.product(code)
    return None if row is None else row._asdict()


async def put_product(
    uow: UnitOfWork, actor: Actor, code: str, data: dict[str, Any]
) -> tuple[dict[str, Any], bool]:
    before = await _product(uow, code)
    out, created = await catalog.put_product(uow, code, data)
    await audit.record(uow, actor, "product.put", f"product:{code}", before, await _product(uow, code))
    return out, created


async def put_channel(
    uow: UnitOfWork,
    actor: Actor,
    cache: ConfigCache,
    code: str,
    data: dict[str, Any],
    box: CredentialBox,
    suppliers: Mapping[str, SupplierProtocol],
) -> tuple[dict[str, Any], bool]:
    """Credentials appear masked by their protocol's `secret_fields` (`Channel.public()`)."""
    old = (await cache.fresh(uow)).channels.get(code)
    out, created = await catalog.put_channel(uow, code, data, box, suppliers)
    await audit.record(uow, actor, "channel.put", f"channel:{code}", old.public() if old else None, out)
    return out, created


async def set_channel_enabled(uow: UnitOfWork, actor: Actor, code: str, enabled: bool) -> None:
    was = await uow.catalog.channel_enabled(code)
    await catalog.set_channel_enabled(uow, code, enabled)  # NotFound for an unknown channel
    assert was is not None
    await audit.record(
        uow,
        actor,
        "channel.enable" if enabled else "channel.disable",
        f"channel:{code}",
        {"enabled": was},
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


async def put_group(
    uow: UnitOfWork, actor: Actor, cache: ConfigCache, code: str, data: dict[str, Any]
) -> bool:
    old = (await cache.fresh(uow)).groups.get(code)
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
    created = await catalog.put_group(uow, code, dict(data))
    await audit.record(uow, actor, "group.put", f"group:{code}", before, after)
    return created


def _merchant_view(row: Any) -> dict[str, Any]:
    return {**merchants.public(row), "secret": row.secret}


async def put_merchant(
    uow: UnitOfWork, actor: Actor, merchant_id: str, data: dict[str, Any]
) -> tuple[dict[str, Any], bool]:
    row = await merchants.get_merchant(uow, merchant_id)
    before = None if row is None else _merchant_view(row)
    out, created = await merchants.put_merchant(uow, merchant_id, data)
    after = _merchant_view(await merchants.get_merchant(uow, merchant_id))
    if data.get("password"):
        after["password"] = "**** (changed)"
    await audit.record(uow, actor, "merchant.put", f"merchant:{merchant_id}", before, after)
    return out, created


async def credit(
    uow: UnitOfWork, actor: Actor, merchant_id: str, amount: int, reference: str
) -> tuple[dict[str, Any], bool]:
    """A deposit; the replay of a reference already booked changes nothing and is not an entry."""
    if await merchants.get_merchant(uow, merchant_id) is None:
        raise NotFound(f"merchant {merchant_id} does not exist")
    before = await ledger.balance(uow, merchant_id)
    out, created = await merchants.credit(uow, merchant_id, amount, reference)
    if created:
        await audit.record(
            uow,
            actor,
            "merchant.credit",
            f"merchant:{merchant_id}",
            {"balance": before},
            {"amount": amount, "reference": reference, "balance": out["balance"]},
        )
    return out, created


async def resolve_exception(
    uow: UnitOfWork, actor: Actor, exception_id: str, note: str, by: str
) -> ExceptionRow:
    """Mark an exception resolved (409 when it already is); returns the row."""
    resolved = await uow.operators.resolve_exception(exception_id, by, note)
    row = await uow.operators.exception(exception_id)
    if row is None:
        raise NotFound(f"exception {exception_id} not found")
    if not resolved:
        raise InvalidState("exception is already resolved")
    await audit.record(
        uow,
        actor,
        "exception.resolve",
        f"exception:{exception_id}",
        {"kind": row.kind, "order_id": row.order_id, "resolved": False},
        {"kind": row.kind, "order_id": row.order_id, "resolved": True, "resolved_by": by, "note": note},
    )
    return row
