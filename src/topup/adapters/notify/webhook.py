"""Webhook delivery to merchants (SPEC section 1 "Notifications"): one signed POST, one outcome.

`HttpWebhookSender` sends over httpx with an explicit timeout and never follows redirects;
`FakeWebhookSender` records what would have been sent and answers from a script.
"""

from __future__ import annotations

import contextlib
import ipaddress
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from topup.adapters.notify import guard
from topup.signing import MERCHANT_HEADER, signed_headers

EVENT_HEADER = "X-Event-Id"
USER_AGENT = "topup-gateway-webhook/1"
DEFAULT_TIMEOUT_S = 5.0
ERROR_LIMIT = 1000


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

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookSender(Protocol):
    async def send(self, hook: Webhook) -> WebhookResult: ...


def target_of(url: str) -> str:
    """The request target a signature covers: the path with query, exactly as httpx sends it."""
    return httpx.URL(url).raw_path.decode("ascii")


def webhook_headers(hook: Webhook, now: float) -> dict[str, str]:
    headers = signed_headers(hook.secret, "POST", target_of(hook.url), hook.body, now)
    headers[MERCHANT_HEADER] = hook.merchant_id
    headers[EVENT_HEADER] = hook.event_id
    headers["Content-Type"] = "application/json"
    headers["User-Agent"] = USER_AGENT
    return headers


def pin(url: httpx.URL, address: str) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
    """Send to the address just checked instead of resolving the name again (DNS rebinding).

    The URL gets the IP; the Host header keeps the name (with a non-default port); TLS still sends
    the name as SNI and verifies the certificate against it. An HTTPS connection pinned this way is
    closed after its one request, so a connection verified for one name never carries another's.
    """
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(url.host)
        return url, {}, {}  # an address already: nothing to resolve again
    host = (
        url.host
        if url.port in (None, {"http": 80, "https": 443}.get(url.scheme))
        else f"{url.host}:{url.port}"
    )
    headers = {"Host": host}
    extensions: dict[str, str] = {}
    if url.scheme == "https":
        extensions["sni_hostname"] = url.host
        headers["Connection"] = "close"
    return url.copy_with(host=address), headers, extensions


class HttpWebhookSender:
    """POSTs a signed event; a timeout, network error or non-2xx is a failed try with its reason."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        now: Callable[[], float] = time.time,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        allow_private: bool = False,
    ) -> None:
        self.http = http
        self.now = now
        self.timeout_s = timeout_s
        self.allow_private = allow_private

    async def send(self, hook: Webhook) -> WebhookResult:
        started = time.monotonic()

        def elapsed() -> float:
            return round((time.monotonic() - started) * 1000, 1)

        url = httpx.URL(hook.url)
        headers = webhook_headers(hook, self.now())
        extensions: dict[str, str] = {}
        if hook.check_address and not self.allow_private:
            # Checked at intake too, but a name can resolve to a private address later.
            try:
                addresses = await guard.resolve_and_check(url.host, url.port, timeout_s=self.timeout_s)
            except guard.UnsafeAddress as e:
                return WebhookResult(None, elapsed(), f"refused: {e}"[:ERROR_LIMIT], permanent=True)
            except LookupError as e:
                return WebhookResult(None, elapsed(), str(e)[:ERROR_LIMIT])
            url, pinned_headers, extensions = pin(url, addresses[0])
            headers.update(pinned_headers)
        try:
            response = await self.http.post(
                url,
                content=hook.body,
                headers=headers,
                timeout=self.timeout_s,
                follow_redirects=False,
                extensions=extensions,
            )
        except httpx.TimeoutException:
            return WebhookResult(None, elapsed(), f"timed out after {self.timeout_s:g} s")
        except httpx.HTTPError as e:
            return WebhookResult(None, elapsed(), f"{type(e).__name__}: {e}"[:ERROR_LIMIT])
        error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
        return WebhookResult(response.status_code, elapsed(), error)


@dataclass
class FakeWebhookSender:
    """Records every webhook; answers from `script` (status codes, or None for a network error)."""

    script: deque[int | None] = field(default_factory=deque)
    default_status: int = 200
    sent: list[Webhook] = field(default_factory=list)

    def answer(self, statuses: Iterable[int | None]) -> None:
        self.script.extend(statuses)

    async def send(self, hook: Webhook) -> WebhookResult:
        self.sent.append(hook)
        status = self.script.popleft() if self.script else self.default_status
        if status is None:
            return WebhookResult(None, 0.0, "ConnectError: fake network error")
        return WebhookResult(status, 0.0, None if 200 <= status < 300 else f"HTTP {status}")
