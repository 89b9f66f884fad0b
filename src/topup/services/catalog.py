"""Operator configuration: products, channels and groups, with a short-lived per-process cache."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
import structlog
from sqlalchemy import delete, select, update

from topup.adapters.db import tables as t
from topup.adapters.db.engine import Database, Tx
from topup.adapters.db.helpers import insert_ignore
from topup.domain.coverage import CoverageError, normalise, with_coverage
from topup.domain.errors import InvalidRequest, NotFound
from topup.domain.routing import Destination, GroupState, Member
from topup.domain.suppliers import ChannelAccess, InvalidChannelConfig, SupplierProtocol
from topup.keys import CredentialBox, CredentialError, mask
from topup.services import channel_pause, rate_limits


@dataclass(frozen=True)
class Product:
    code: str
    business_type: str
    brand: str | None
    name: str
    face_value: int
    price: int
    enabled: bool = True

    def public(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "business_type": self.business_type,
            "brand": self.brand,
            "name": self.name,
            "face_value": self.face_value,
            "price": self.price,
        }


@dataclass(frozen=True)
class Channel:
    code: str
    name: str
    protocol: str
    base_url: str
    timeout_s: float
    max_wait_s: float
    supports_query: bool
    enabled: bool
    credentials: Mapping[str, Any] = field(default_factory=dict)
    """Decrypted; never shown (see `public`)."""
    products: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    serves: frozenset[str] | None = None
    """The product codes this channel can be sent (None: every product)."""
    secret_fields: tuple[str, ...] = ("secret",)
    # Supplier operations (SPEC 7).
    min_balance: int | None = None
    balance_check_s: float = 300.0
    rate_limit_per_s: int | None = None
    paused: str | None = None
    """Why the channel takes no new attempts by itself (`low_balance`), or None."""
    paused_at: float | None = None

    @property
    def secret(self) -> str:
        """The topup-json signing secret."""
        return str(self.credentials.get("secret", ""))

    def can_serve(self, product_code: str) -> bool:
        return self.serves is None or product_code in self.serves

    def access(self, callback_base: str) -> ChannelAccess:
        """What the channel's protocol adapter needs, with its static callback URL."""
        return ChannelAccess(
            code=self.code,
            protocol=self.protocol,
            base_url=self.base_url,
            credentials=self.credentials,
            products=self.products,
            options=self.options,
            timeout_s=self.timeout_s,
            callback_url=f"{callback_base}/callbacks/{self.protocol}/{self.code}",
        )

    def public(self) -> dict[str, Any]:
        """Credentials masked: enough to recognise, never enough to use."""
        return {
            "code": self.code,
            "name": self.name,
            "protocol": self.protocol,
            "base_url": self.base_url,
            "timeout_s": self.timeout_s,
            "max_wait_s": self.max_wait_s,
            "supports_query": self.supports_query,
            "enabled": self.enabled,
            "credentials": {
                k: mask(v) if k in self.secret_fields else v for k, v in sorted(self.credentials.items())
            },
            "products": {k: dict(v) for k, v in self.products.items()},
            "options": dict(self.options),
            "min_balance": self.min_balance,
            "balance_check_s": self.balance_check_s,
            "rate_limit_per_s": self.rate_limit_per_s,
            "paused": self.paused,
        }


@dataclass(frozen=True)
class Group:
    code: str
    business_type: str
    brand: str | None
    strategy: str
    sticky: bool
    recovery_s: float
    members: tuple[Member, ...] = field(default_factory=tuple)


@dataclass
class Snapshot:
    products: dict[str, Product]
    channels: dict[str, Channel]
    groups: dict[str, Group]
    loaded_at: float

    def group_for(self, business_type: str, brand: str | None) -> Group | None:
        """The group for (type, brand), else the type's group with no brand."""
        fallback = None
        for g in self.groups.values():
            if g.business_type != business_type:
                continue
            if brand is not None and g.brand == brand:
                return g
            if g.brand is None:
                fallback = fallback or g
        return fallback

    def members_of(
        self, group: Group, product_code: str | None = None, to: Destination | None = None
    ) -> list[Member]:
        """Members with `enabled` reflecting their channel's switch and pause (SPEC 7), given a product
        whether the channel can be sent it at all (a channel without the product is not a candidate,
        SPEC 6), and given a destination whether the member covers its carrier and region (SPEC 7)."""
        out = []
        for m in group.members:
            ch = self.channels.get(m.channel)
            usable = bool(
                ch
                and ch.enabled
                and ch.paused is None
                and (product_code is None or ch.can_serve(product_code))
                and (to is None or m.covers(to))
            )
            out.append(replace(m, enabled=usable))
        return out


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

    async def current(self, db: Database) -> Snapshot:
        """`get` without a transaction of the caller's: opens one only when the snapshot is stale."""
        snap = self._snap
        if snap is not None and time.monotonic() - snap.loaded_at < self.ttl_s:
            return snap
        async with db.transaction() as tx:
            return await self.get(tx)

    async def fresh(self, tx: Tx) -> Snapshot:
        """The configuration as stored now (operator pages must not show a stale copy)."""
        snap = await load_snapshot(tx, self.box, self.suppliers)
        self._snap = snap
        return snap

    async def get(self, tx: Tx) -> Snapshot:
        snap = self._snap
        if snap is not None and time.monotonic() - snap.loaded_at < self.ttl_s:
            return snap
        snap = await load_snapshot(tx, self.box, self.suppliers)
        self._snap = snap
        return snap


def _channel(
    r: Any,
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


def _operations(r: Any) -> dict[str, Any]:
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
    tx: Tx, box: CredentialBox | None = None, suppliers: Mapping[str, SupplierProtocol] | None = None
) -> Snapshot:
    prods = {
        r.code: Product(
            r.code, r.business_type, r.brand, r.name, int(r.face_value), int(r.price), bool(r.enabled)
        )
        for r in (await tx.conn.execute(select(t.products))).all()
    }
    chans = {
        r.code: _channel(r, prods, box, suppliers or {})
        for r in (await tx.conn.execute(select(t.channels))).all()
    }
    members: dict[str, list[Member]] = {}
    for r in (await tx.conn.execute(select(t.group_members))).all():
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
        for r in (await tx.conn.execute(select(t.groups))).all()
    }
    return Snapshot(prods, chans, grps, time.monotonic())


async def put_product(tx: Tx, code: str, data: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    values = {**data, "updated_at": tx.now}
    created = await insert_ignore(tx, t.products, {"code": code, **values}, ["code"])
    if not created:
        await tx.conn.execute(update(t.products).where(t.products.c.code == code).values(**values))
    return {"code": code, **data}, created


async def put_channel(
    tx: Tx,
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
        "updated_at": tx.now,
    }
    created = await insert_ignore(tx, t.channels, {"code": code, **values}, ["code"])
    if not created:
        await tx.conn.execute(update(t.channels).where(t.channels.c.code == code).values(**values))
    if data.get("rate_limit_per_s"):
        await rate_limits.ensure_slots(tx, code, int(data["rate_limit_per_s"]))
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
            tx,
            code,
            data.get("min_balance"),
            float(data.get("balance_check_s", 300.0)),
            adapter.has_balance,
        ),
    )
    return shown.public(), created


async def set_channel_enabled(tx: Tx, code: str, enabled: bool) -> None:
    res = await tx.conn.execute(
        update(t.channels).where(t.channels.c.code == code).values(enabled=enabled, updated_at=tx.now)
    )
    if res.rowcount != 1:
        raise NotFound(f"channel {code} does not exist")


async def put_group(tx: Tx, code: str, data: dict[str, Any]) -> bool:
    members = data.pop("members")
    known = {r.code for r in (await tx.conn.execute(select(t.channels.c.code))).all()}
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
    clash = (
        await tx.conn.execute(
            select(t.groups.c.code).where(
                t.groups.c.business_type == data["business_type"],
                t.groups.c.brand.is_(None) if data["brand"] is None else t.groups.c.brand == data["brand"],
                t.groups.c.code != code,
            )
        )
    ).first()
    if clash:
        raise InvalidRequest(
            f"group {clash.code} already serves business_type {data['business_type']} brand {data['brand']}"
        )
    values = {**data, "updated_at": tx.now}
    created = await insert_ignore(tx, t.groups, {"code": code, **values}, ["code"])
    if not created:
        await tx.conn.execute(update(t.groups).where(t.groups.c.code == code).values(**values))
        await tx.conn.execute(delete(t.group_members).where(t.group_members.c.group_code == code))
    if members:
        await tx.conn.execute(
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
    # The active channel must stay a member.
    row = (await tx.conn.execute(select(t.groups.c.active_channel).where(t.groups.c.code == code))).first()
    if row and row.active_channel and row.active_channel not in {m["channel"] for m in members}:
        await tx.conn.execute(
            update(t.groups)
            .where(t.groups.c.code == code)
            .values(active_channel=None, switched_at=None, probe_order_id=None, probe_until=None)
        )
    return created


_GROUP_STATE = (
    "SELECT sticky, recovery_s, active_channel, switched_at, probe_order_id, probe_until"
    " FROM groups WHERE code = $1"
)


async def group_state(tx: Tx, code: str, for_update: bool = False) -> GroupState | None:
    sql = _GROUP_STATE + " FOR UPDATE" if for_update and tx.is_postgres else _GROUP_STATE
    r = await tx.fetchrow(sql, code)
    if r is None:
        return None
    return GroupState(
        bool(r.sticky), r.recovery_s, r.active_channel, r.switched_at, r.probe_order_id, r.probe_until
    )


async def save_group_state(tx: Tx, code: str, state: GroupState) -> None:
    await tx.conn.execute(
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
    tx: Tx, group: str, from_ch: str | None, to_ch: str, reason: str, order_id: str | None
) -> None:
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
