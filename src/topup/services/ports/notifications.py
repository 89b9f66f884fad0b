"""Storage the notifications use cases need: the outbox (events, deliveries), webhook delivery records
and the merchant's event feed (see `topup.services.uow.UnitOfWork`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from topup.domain.orders import Order


@dataclass(frozen=True)
class Delivery:
    """A webhook delivery of one event (`status`: pending | delivered | gave_up)."""

    event_id: str
    merchant_id: str
    order_id: str
    url: str
    status: str
    tries: int
    next_at: float | None
    delivered_at: float | None
    created_at: float


@dataclass(frozen=True)
class DeliveryAttempt:
    """One try of a delivery."""

    event_id: str
    at: float
    status_code: int | None
    latency_ms: float | None
    error: str | None


@dataclass(frozen=True)
class DeliveryClaim:
    """What sending a delivery needs: where, the stored payload, the merchant's secret."""

    url: str
    status: str
    merchant_id: str
    created_at: float
    payload: Any
    secret: str
    notify_url: str | None


class StoredEvent(NamedTuple):
    """An event of the merchant's feed (`payload`: the JSON body, parsed or as stored)."""

    id: str
    payload: Any
    created_at: float


class NewEvent(NamedTuple):
    id: str
    merchant_id: str
    order_id: str
    type: str
    payload: str
    created_at: float


class NewDelivery(NamedTuple):
    event_id: str
    merchant_id: str
    order_id: str
    url: str
    created_at: float


class NotificationsRepository(Protocol):
    """Events, deliveries and delivery attempts."""

    # ---- the outbox ----------------------------------------------------------------------------

    async def order_rows(self, order_ids: Sequence[str]) -> list[Order]:
        """The orders as stored now (what an event renders)."""
        ...

    async def add_events(self, events: list[NewEvent], deliveries: list[NewDelivery]) -> None:
        """Store the events, then their pending deliveries."""
        ...

    def announce(self, merchant_ids: Iterable[str]) -> None:
        """Wake the merchants' streams once the transaction commits."""
        ...

    # ---- delivering ----------------------------------------------------------------------------

    async def claim(self, event_id: str) -> DeliveryClaim | None: ...

    async def add_attempt(
        self, event_id: str, status_code: int | None, latency_ms: float | None, error: str | None
    ) -> None: ...

    async def delivered(self, event_id: str) -> bool:
        """pending -> delivered (one more try); False when it was not pending."""
        ...

    async def failures_since(self, event_id: str, since: float) -> int:
        """Failed tries since `since`."""
        ...

    async def give_up(self, event_id: str) -> bool:
        """pending -> gave_up (one more try); False when it was not pending."""
        ...

    async def retry_at(self, event_id: str, next_at: float) -> bool:
        """A pending delivery failed one more try and runs again at `next_at`."""
        ...

    async def reopen(self, event_id: str) -> bool:
        """Back to pending, due now (row-locked first); False when there is no such delivery."""
        ...

    # ---- reads ---------------------------------------------------------------------------------

    async def delivery(self, event_id: str) -> Delivery | None: ...

    async def deliveries(
        self, status: str | None, merchant_id: str | None, cursor: str | None, limit: int
    ) -> list[Delivery]:
        """Deliveries by event id (time order), after `cursor`, at most `limit`."""
        ...

    async def last_attempts(self, event_ids: list[str]) -> dict[str, DeliveryAttempt]:
        """The latest try of each delivery that has one."""
        ...

    async def event_seq(self, merchant_id: str, event_id: str) -> int | None:
        """The feed position of the merchant's event."""
        ...

    async def events_after(self, merchant_id: str, seq: int, limit: int) -> list[StoredEvent]:
        """The merchant's events past `seq`, oldest first, at most `limit`."""
        ...
