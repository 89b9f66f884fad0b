"""The configuration snapshot and its short-lived per-process cache."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson
import structlog

from topup.domain.coverage import with_coverage
from topup.domain.routing import Member
from topup.domain.suppliers import SupplierProtocol
from topup.keys import CredentialBox, CredentialError
from topup.services.catalog.model import Channel, Group, Product, Snapshot
from topup.services.ports.catalog import ChannelRow

if TYPE_CHECKING:
    from topup.services.uow import Transactions, UnitOfWork


class ConfigCache:
    """Products, channels and groups change rarely; read them at most every `ttl_s` per process.

    `box` opens the channels' sealed credentials; `suppliers` (the protocol adapters) say which
    products each channel can be sent. Without them credentials stay empty and every product is served.
    """

    def __init__(
        self,
        ttl_s: float = 1.0,
        box: CredentialBox | None = None,
        suppliers: Mapping[str, SupplierProtocol] | None = None,
    ) -> None:
        self.ttl_s = ttl_s
        self.box = box
        self.suppliers = suppliers or {}
        self._snap: Snapshot | None = None

    def invalidate(self) -> None:
        self._snap = None

    def peek(self) -> Snapshot | None:
        """The snapshot last loaded in this process, however old, without any I/O (or None)."""
        return self._snap

    async def current(self, db: Transactions) -> Snapshot:
        """`get` without a transaction of the caller's: opens one only when the snapshot is stale."""
        snap = self._snap
        if snap is not None and time.monotonic() - snap.loaded_at < self.ttl_s:
            return snap
        async with db.transaction() as uow:
            return await self.get(uow)

    async def fresh(self, uow: UnitOfWork) -> Snapshot:
        """The configuration as stored now (operator pages must not show a stale copy)."""
        snap = await load_snapshot(uow, self.box, self.suppliers)
        self._snap = snap
        return snap

    async def get(self, uow: UnitOfWork) -> Snapshot:
        snap = self._snap
        if snap is not None and time.monotonic() - snap.loaded_at < self.ttl_s:
            return snap
        snap = await load_snapshot(uow, self.box, self.suppliers)
        self._snap = snap
        return snap


def _channel(
    r: ChannelRow,
    products: Mapping[str, Product],
    box: CredentialBox | None,
    suppliers: Mapping[str, SupplierProtocol],
) -> Channel:
    credentials: dict[str, Any] = {}
    if box is not None and r.credentials:
        try:
            credentials = box.open(r.credentials)
        except CredentialError as e:
            # A channel whose secrets no key opens cannot sign anything: it serves nothing.
            structlog.get_logger().error("channel_credentials_unreadable", channel=r.code, error=str(e))
            return Channel(
                r.code,
                r.name,
                r.protocol,
                r.base_url,
                r.timeout_s,
                r.max_wait_s,
                r.supports_query,
                r.enabled,
                serves=frozenset(),
                **_operations(r),
            )
    if not credentials and r.secret:
        credentials = {"secret": r.secret}  # written before credentials were sealed
    adapter = suppliers.get(r.protocol)
    ch = Channel(
        r.code,
        r.name,
        r.protocol,
        r.base_url,
        r.timeout_s,
        r.max_wait_s,
        r.supports_query,
        r.enabled,
        credentials,
        _json_map(r.products),
        _json_map(r.options),
        secret_fields=adapter.secret_fields if adapter else tuple(credentials),
        **_operations(r),
    )
    if adapter is None:
        return ch if not suppliers else replace(ch, serves=frozenset())
    access = ch.access("")
    served = frozenset(code for code, p in products.items() if adapter.serves(access, code, p.business_type))
    return replace(ch, serves=served)


def _operations(r: ChannelRow) -> dict[str, Any]:
    """A channel row's supplier-operations fields (SPEC 7)."""
    return {
        "min_balance": None if r.min_balance is None else int(r.min_balance),
        "balance_check_s": float(r.balance_check_s),
        "rate_limit_per_s": r.rate_limit_per_s,
        "paused": r.paused,
        "paused_at": r.paused_at,
    }


def _json_list(value: Any) -> list[str] | None:
    if isinstance(value, str):
        value = orjson.loads(value) if value else None
    return None if value is None else [str(v) for v in value]


def _json_map(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = orjson.loads(value) if value else {}
    return dict(value or {})


async def load_snapshot(
    uow: UnitOfWork, box: CredentialBox | None = None, suppliers: Mapping[str, SupplierProtocol] | None = None
) -> Snapshot:
    rows = await uow.catalog.load()
    prods = {r.code: Product(*r) for r in rows.products}
    chans = {r.code: _channel(r, prods, box, suppliers or {}) for r in rows.channels}
    members: dict[str, list[Member]] = {}
    for r in rows.members:
        members.setdefault(r.group_code, []).append(
            with_coverage(
                Member(r.channel_code, r.priority, r.weight, dict(r.costs or {})),
                _json_list(r.carriers),
                _json_list(r.regions),
            )
        )
    grps = {
        r.code: Group(
            r.code,
            r.business_type,
            r.brand,
            r.strategy,
            r.sticky,
            r.recovery_s,
            tuple(members.get(r.code, [])),
        )
        for r in rows.groups
    }
    return Snapshot(prods, chans, grps, time.monotonic())
