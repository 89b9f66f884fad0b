"""Webhook delivery as the notifier sees it (the HTTP sender and its fake are in `adapters/notify`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Webhook:
    """One delivery try: the stored event body, where it goes, and whose secret signs it."""

    url: str
    body: bytes
    merchant_id: str
    secret: str
    event_id: str
    # Per-order notify_url values come from the merchant's request: refuse non-public addresses for them.
    check_address: bool = False


@dataclass(frozen=True)
class WebhookResult:
    """What one try got back. Only a 2xx acknowledges."""

    status_code: int | None
    latency_ms: float
    error: str | None = None
    # A try that can never succeed as configured (e.g. a private address): retrying is pointless.
    permanent: bool = False
    # No connection was made (refused, unreachable, connect timeout): another address may work.
    connect_failed: bool = False

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookSender(Protocol):
    """Sends one try of one webhook; never raises for the receiver's failures."""

    async def send(self, hook: Webhook) -> WebhookResult: ...
