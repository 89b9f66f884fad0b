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

import httpx

from topup.adapters.notify import guard
from topup.services.ports.webhooks import Webhook, WebhookResult, WebhookSender
from topup.signing import MERCHANT_HEADER, signed_headers

EVENT_HEADER = "X-Event-Id"
USER_AGENT = "topup-gateway-webhook/1"
DEFAULT_TIMEOUT_S = 5.0
# A pinned send tries at most this many of the checked addresses (each with DEFAULT_TIMEOUT_S).
MAX_ADDRESSES = 2
ERROR_LIMIT = 1000

__all__ = ["FakeWebhookSender", "HttpWebhookSender", "Webhook", "WebhookResult", "WebhookSender"]


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
    """Send to an address just checked instead of resolving the name again (DNS rebinding).

    The URL gets the IP; the Host header keeps the name (ASCII form, with a non-default port); TLS
    still sends the name as SNI and verifies the certificate against it.
    """
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(url.host)
        return url, {}, {}  # an address already: nothing to resolve again
    name = url.raw_host.decode("ascii")  # IDNA-encoded: header values and SNI are ASCII
    default_port = {"http": 80, "https": 443}.get(url.scheme)
    headers = {"Host": name if url.port in (None, default_port) else f"{name}:{url.port}"}
    extensions = {"sni_hostname": name} if url.scheme == "https" else {}
    return url.copy_with(host=address), headers, extensions


class HttpWebhookSender:
    """POSTs a signed event; a timeout, network error or non-2xx is a failed try with its reason.

    Pinned sends (per-order URLs, see `pin`) go through `pinned_http`, which must keep no idle
    connections: its pool is keyed by (scheme, IP, port) alone, so a kept connection, verified for
    one name, could otherwise carry a request for another name at the same address.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        now: Callable[[], float] = time.time,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        allow_private: bool = False,
        pinned_http: httpx.AsyncClient | None = None,
    ) -> None:
        self.http = http
        self.pinned_http = pinned_http or http
        self.now = now
        self.timeout_s = timeout_s
        self.allow_private = allow_private

    async def send(self, hook: Webhook) -> WebhookResult:
        started = time.monotonic()

        def elapsed() -> float:
            return round((time.monotonic() - started) * 1000, 1)

        try:
            url = httpx.URL(hook.url)
            name = url.raw_host.decode("ascii")  # the IDNA form: what DNS, Host and SNI all use
        except (httpx.InvalidURL, ValueError) as e:
            return WebhookResult(None, elapsed(), f"invalid URL: {e}"[:ERROR_LIMIT], permanent=True)
        headers = webhook_headers(hook, self.now())
        if not hook.check_address or self.allow_private:
            return await self._post(self.http, url, hook.body, headers, {}, elapsed)
        # Checked at intake too, but a name can resolve to a private address later.
        try:
            addresses = await guard.resolve_and_check(name, url.port, timeout_s=self.timeout_s)
        except guard.UnsafeAddress as e:
            return WebhookResult(None, elapsed(), f"refused: {e}"[:ERROR_LIMIT], permanent=True)
        except LookupError as e:
            return WebhookResult(None, elapsed(), str(e)[:ERROR_LIMIT])
        # The first MAX_ADDRESSES checked addresses in the resolver's order, until one connects (as
        # a client resolving the name itself would do); a try stays well inside a job's lease.
        errors = []
        for address in addresses[:MAX_ADDRESSES]:
            pinned_url, pinned_headers, extensions = pin(url, address)
            result = await self._post(
                self.pinned_http, pinned_url, hook.body, {**headers, **pinned_headers}, extensions, elapsed
            )
            if not result.connect_failed:
                return result
            errors.append(f"{address}: {result.error}")
        return WebhookResult(None, elapsed(), "; ".join(errors)[:ERROR_LIMIT])

    async def _post(
        self,
        http: httpx.AsyncClient,
        url: httpx.URL,
        body: bytes,
        headers: dict[str, str],
        extensions: dict[str, str],
        elapsed: Callable[[], float],
    ) -> WebhookResult:
        try:
            response = await http.post(
                url,
                content=body,
                headers=headers,
                timeout=self.timeout_s,
                follow_redirects=False,
                extensions=extensions,
            )
        except httpx.ConnectTimeout:
            message = f"connect timed out after {self.timeout_s:g} s"
            return WebhookResult(None, elapsed(), message, connect_failed=True)
        except httpx.ConnectError as e:
            message = f"ConnectError: {e}"[:ERROR_LIMIT]
            return WebhookResult(None, elapsed(), message, connect_failed=True)
        except httpx.TimeoutException:
            return WebhookResult(None, elapsed(), f"timed out after {self.timeout_s:g} s")
        except httpx.HTTPError as e:
            return WebhookResult(None, elapsed(), f"{type(e).__name__}: {e}"[:ERROR_LIMIT])
        except (httpx.InvalidURL, ValueError) as e:  # e.g. a name IDNA refuses, found building the request
            return WebhookResult(None, elapsed(), f"invalid URL: {e}"[:ERROR_LIMIT], permanent=True)
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
