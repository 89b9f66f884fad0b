"""Operator changes to the catalog, and the groups' routing state (sticky channel, probe, switches)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from topup.domain.coverage import CoverageError, normalise
from topup.domain.errors import InvalidRequest, NotFound
from topup.domain.routing import GroupState
from topup.domain.suppliers import InvalidChannelConfig, SupplierProtocol
from topup.keys import CredentialBox
from topup.services import channel_pause, rate_limits
from topup.services.catalog.model import Channel

if TYPE_CHECKING:
    from topup.services.uow import UnitOfWork


async def put_product(uow: UnitOfWork, code: str, data: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    values = {**data, "updated_at": uow.now}
    created = await uow.catalog.put_product(code, values)
    return {"code": code, **data}, created


async def put_channel(
    uow: UnitOfWork,
    code: str,
    data: dict[str, Any],
    box: CredentialBox,
    suppliers: Mapping[str, SupplierProtocol],
) -> tuple[dict[str, Any], bool]:
    """Create or replace a channel: its protocol checks credentials, products and options, and the
    credentials are stored sealed. Returns the channel as shown (credentials masked) and `created`."""
    data = dict(data)
    adapter = suppliers.get(data["protocol"])
    if adapter is None:
        raise InvalidRequest(f"protocol: {data['protocol']!r} is not one of {sorted(suppliers)}")
    credentials = dict(data.pop("credentials", None) or {})
    secret = data.pop("secret", None)
    if secret and "secret" in adapter.credential_fields:
        credentials.setdefault("secret", secret)
    try:
        credentials, products, options = adapter.validate(
            credentials, data.pop("products", None) or {}, data.pop("options", None) or {}
        )
    except InvalidChannelConfig as e:
        raise InvalidRequest(str(e), {"field": e.field}) from None
    values = {
        **data,
        "secret": "",
        "credentials": box.seal(credentials),
        "products": products,
        "options": options,
        "updated_at": uow.now,
    }
    created = await uow.catalog.put_channel(code, values)
    if data.get("rate_limit_per_s"):
        await rate_limits.ensure_slots(uow, code, int(data["rate_limit_per_s"]))
    shown = Channel(
        code,
        data["name"],
        data["protocol"],
        data["base_url"],
        data["timeout_s"],
        data["max_wait_s"],
        data["supports_query"],
        data["enabled"],
        credentials,
        products,
        options,
        secret_fields=adapter.secret_fields,
        min_balance=data.get("min_balance"),
        balance_check_s=float(data.get("balance_check_s", 300.0)),
        rate_limit_per_s=data.get("rate_limit_per_s"),
        paused=await channel_pause.on_channel_saved(
            uow,
            code,
            data.get("min_balance"),
            float(data.get("balance_check_s", 300.0)),
            adapter.has_balance,
        ),
    )
    return shown.public(), created


async def set_channel_enabled(uow: UnitOfWork, code: str, enabled: bool) -> None:
    if not await uow.catalog.set_channel_enabled(code, enabled):
        raise NotFound(f"channel {code} does not exist")


async def put_group(uow: UnitOfWork, code: str, data: dict[str, Any]) -> bool:
    members = data.pop("members")
    known = await uow.catalog.channel_codes()
    missing = sorted({m["channel"] for m in members} - known)
    if missing:
        raise InvalidRequest(f"members: unknown channel(s) {', '.join(missing)}", {"channels": missing})
    if len({m["channel"] for m in members}) != len(members):
        raise InvalidRequest("members: a channel may appear only once")
    for i, m in enumerate(members):
        try:
            m["carriers"], m["regions"] = normalise(
                data["business_type"], m.get("carriers"), m.get("regions")
            )
        except CoverageError as e:
            raise InvalidRequest(f"members[{i}].{e}", {"channel": m["channel"]}) from None
    clash = await uow.catalog.group_serving(data["business_type"], data["brand"], code)
    if clash:
        raise InvalidRequest(
            f"group {clash} already serves business_type {data['business_type']} brand {data['brand']}"
        )
    values = {**data, "updated_at": uow.now}
    created = await uow.catalog.put_group(code, values)
    if members:
        await uow.catalog.add_members(code, members)
    # The active channel must stay a member.
    active = await uow.catalog.active_channel(code)
    if active and active not in {m["channel"] for m in members}:
        await uow.catalog.clear_active_channel(code)
    return created


async def group_state(uow: UnitOfWork, code: str, for_update: bool = False) -> GroupState | None:
    return await uow.catalog.group_state(code, for_update)


async def save_group_state(uow: UnitOfWork, code: str, state: GroupState) -> None:
    await uow.catalog.save_group_state(code, state)


async def record_switch(
    uow: UnitOfWork, group: str, from_ch: str | None, to_ch: str, reason: str, order_id: str | None
) -> None:
    await uow.catalog.record_switch(group, from_ch, to_ch, reason, order_id)
