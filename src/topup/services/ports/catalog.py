"""Storage the catalog use cases need (see `topup.services.uow.UnitOfWork`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from topup.domain.routing import GroupState


class ProductRow(NamedTuple):
    code: str
    business_type: str
    brand: str | None
    name: str
    face_value: int
    price: int
    enabled: bool


class ChannelRow(NamedTuple):
    """A channel as stored: `credentials` sealed, `products` / `options` JSON (text on SQLite)."""

    code: str
    name: str
    protocol: str
    base_url: str
    secret: str
    timeout_s: float
    max_wait_s: float
    supports_query: bool
    enabled: bool
    credentials: str
    products: Any
    options: Any
    min_balance: int | None
    balance_check_s: float
    rate_limit_per_s: int | None
    paused: str | None
    paused_at: float | None


class MemberRow(NamedTuple):
    """A group member as stored: `carriers` / `regions` JSON lists or None (every one)."""

    group_code: str
    channel_code: str
    priority: int
    weight: int
    costs: dict[str, int] | None
    carriers: Any
    regions: Any


class GroupRow(NamedTuple):
    code: str
    business_type: str
    brand: str | None
    strategy: str
    sticky: bool
    recovery_s: float


class CatalogRows(NamedTuple):
    """Everything the configuration snapshot is built from."""

    products: list[ProductRow]
    channels: list[ChannelRow]
    members: list[MemberRow]
    groups: list[GroupRow]


class CatalogRepository(Protocol):
    async def load(self) -> CatalogRows:
        """Every product, channel, group member and group."""
        ...

    async def product(self, code: str) -> ProductRow | None: ...

    async def put_product(self, code: str, values: Mapping[str, Any]) -> bool:
        """Insert or replace the product's columns; True when it was created."""
        ...

    async def put_channel(self, code: str, values: Mapping[str, Any]) -> bool:
        """Insert or replace the channel's columns; True when it was created."""
        ...

    async def channel_enabled(self, code: str) -> bool | None:
        """The channel's switch (None: no such channel)."""
        ...

    async def set_channel_enabled(self, code: str, enabled: bool) -> bool:
        """False when there is no such channel."""
        ...

    async def channel_codes(self) -> set[str]: ...

    async def group_serving(self, business_type: str, brand: str | None, other_than: str) -> str | None:
        """The code of another group serving (business_type, brand), if any."""
        ...

    async def put_group(self, code: str, values: Mapping[str, Any]) -> bool:
        """Insert the group, or replace its columns and drop its members; True when it was created."""
        ...

    async def add_members(self, code: str, members: Sequence[Mapping[str, Any]]) -> None:
        """Insert members (`channel`, `priority`, `weight`, `costs`, `carriers`, `regions`)."""
        ...

    async def active_channel(self, code: str) -> str | None: ...

    async def clear_active_channel(self, code: str) -> None:
        """Forget the group's sticky channel and probe."""
        ...

    async def group_state(self, code: str, for_update: bool = False) -> GroupState | None: ...

    async def save_group_state(self, code: str, state: GroupState) -> None: ...

    async def record_switch(
        self, group: str, from_ch: str | None, to_ch: str, reason: str, order_id: str | None
    ) -> None:
        """Append to the group's switch history (at the transaction's time)."""
        ...

    async def channel_credentials(self) -> list[tuple[str, str, str]]:
        """(code, sealed credentials, unsealed legacy secret) of every channel, by code."""
        ...

    async def reseal_credentials(self, code: str, sealed: str) -> None:
        """Store the channel's newly sealed credentials (and drop any unsealed secret)."""
        ...
