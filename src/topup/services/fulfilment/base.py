"""What every part of the routing engine shares: its ports, its settings and its hooks."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from topup.domain import suppliers as port
from topup.domain.orders import Order
from topup.services.catalog import ConfigCache
from topup.services.dispatch_slots import ChannelSlots
from topup.services.refunds import refund
from topup.services.uow import Declined, Storage, UnitOfWork

OrderHook = Callable[[UnitOfWork, Order], Awaitable[None]]
"""Called inside the unit of work that makes an order final (batches keep their counts with it)."""
FinalHook = OrderHook

# An attempt is stored as `sent` before its dispatch; the dispatch reply replaces that with the reply's
# kind. A deadline finding it still `sent` waits for the reply until `2 * timeout_s` (the dispatch
# itself is bounded by `timeout_s`) plus this long after the attempt was stored.
DISPATCH_SENT = "sent"
DISPATCH_GRACE_S = 2.0
# A route job deferred because its channel is stuck runs again after 0.1 s, doubling with each
# deferral up to DEFER_MAX_S, each delay spread by x0.5-1.5 so a backlog does not come back at once.
DEFER_BASE_S = 0.1
DEFER_MAX_S = 10.0


class ChannelBusy(Declined):
    """The chosen channel is stuck: no new dispatch slot for it in this process (see ChannelSlots)."""

    def __init__(self, channel_code: str, in_flight: int) -> None:
        super().__init__(channel_code)
        self.channel_code = channel_code
        self.in_flight = in_flight


def defer_delay(deferrals: int) -> float:
    """How long a route job deferred for the n-th time waits, before jitter: 0.1 s, 0.2 s ... 10 s."""
    return float(min(DEFER_MAX_S, DEFER_BASE_S * 2 ** max(deferrals - 1, 0)))


def _default_on_failed() -> list[OrderHook]:
    return [refund]


@dataclass
class EngineBase:
    """The routing engine's ports: storage, config cache, supplier protocols, callback base URL."""

    db: Storage
    cache: ConfigCache
    suppliers: Mapping[str, port.SupplierProtocol]
    callback_base: str
    rng: random.Random = field(default_factory=random.Random)
    # Called inside the unit of work that makes an order final, whichever way (batches keep counts).
    final_hooks: list[OrderHook] = field(default_factory=list)
    # Called inside the unit of work that fails an order, before `final_hooks` (payments refund it).
    on_order_failed: list[OrderHook] = field(default_factory=_default_on_failed)
    # Dispatch slots per channel in this process (limit 0: none).
    slots: ChannelSlots = field(default_factory=lambda: ChannelSlots(0))
    # Inline first dispatches in flight at most in this process (0: every order gets a route job).
    inline_max: int = 0
    _rates: dict[str, tuple[float, float]] = field(default_factory=dict)
    _inline: set[asyncio.Task[None]] = field(default_factory=set)
