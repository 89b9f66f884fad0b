"""The operator configuration as the services read it: products, channels and groups (SPEC 6-7)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from topup.domain.routing import Destination, Member
from topup.domain.suppliers import ChannelAccess
from topup.keys import mask


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

    @property
    def rate_limited(self) -> bool:
        """Some channel has a rate limit (its orders wait in line, SPEC 7)."""
        return any(ch.rate_limit_per_s for ch in self.channels.values())

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
