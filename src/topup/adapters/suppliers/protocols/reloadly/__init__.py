"""Reloadly Airtime (SPEC section 6 `reloadly`): an OAuth token, JSON top-ups, HMAC-signed webhooks.

`codec` is the pure half (bodies and classification), `tokens` the token cache; this module is the thin
transport that ties them to the supplier port. Every call is bounded as a whole by the channel's
`timeout_s`, token request and a 401 retry included.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from topup.adapters.suppliers.transport import NoReply, build, join, ms_since, raw_text, send
from topup.domain import suppliers as port
from topup.domain.suppliers import BalanceOutcome, DispatchOutcome, QueryOutcome

from .codec import (
    CREDENTIALS,
    MOBILE_TYPES,
    PRODUCT_FIELDS,
    REQUIRED_CREDENTIALS,
    Product,
    classify_balance,
    classify_order,
    classify_query,
    order_body,
    parse_webhook,
    verify_webhook,
)
from .tokens import DEFAULT_AUTH_URL, TokenCache, TokenError

NAME = "reloadly"
ACCEPT = "application/com.reloadly.topups-v1+json"

__all__ = ["ACCEPT", "NAME", "Reloadly", "create"]


class Reloadly:
    """The `reloadly` protocol on the supplier port."""

    name = NAME
    has_callbacks = True
    has_balance = True
    credential_fields: tuple[str, ...] = CREDENTIALS
    secret_fields: tuple[str, ...] = ("client_secret", "webhook_secret")
    product_fields: tuple[str, ...] = tuple(PRODUCT_FIELDS.values())
    option_fields: tuple[str, ...] = ()

    def __init__(self, client: httpx.AsyncClient, now: Callable[[], float]) -> None:
        self._client = client
        self.tokens = TokenCache(client, now)

    def validate(
        self, credentials: Mapping[str, Any], products: Mapping[str, Any], options: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, Any]]:
        extra = set(credentials) - set(CREDENTIALS)
        if extra:
            raise port.InvalidChannelConfig("credentials", f"unknown fields {sorted(extra)}")
        creds: dict[str, Any] = {}
        for key in REQUIRED_CREDENTIALS:
            value = credentials.get(key)
            if not isinstance(value, str) or not value.strip() or len(value) > 500:
                raise port.InvalidChannelConfig(f"credentials.{key}", "required, 1-500 characters")
            creds[key] = value
        auth_url = credentials.get("auth_url") or DEFAULT_AUTH_URL
        if not isinstance(auth_url, str) or not _is_http_url(auth_url):
            raise port.InvalidChannelConfig("credentials.auth_url", "must be an http(s) URL")
        creds["auth_url"] = auth_url.rstrip("/")
        normalised: dict[str, dict[str, Any]] = {}
        for code, entry in products.items():
            try:
                product = Product.parse(entry)
            except port.InvalidChannelConfig as exc:
                where = f"products.{code}.{exc.field}" if exc.field else f"products.{code}"
                raise port.InvalidChannelConfig(where, exc.message) from None
            normalised[code] = {**entry, **product.as_config()}  # keeps other fields (e.g. `price`)
        return creds, normalised, dict(options)

    def serves(self, channel: port.ChannelAccess, product_code: str, business_type: str) -> bool:
        if business_type not in MOBILE_TYPES:
            return False  # Reloadly tops up phone numbers only
        try:
            Product.parse(channel.products.get(product_code))
        except port.InvalidChannelConfig:
            return False
        return True

    def supplier_ref(self, order_id: str, attempt_no: int) -> str:
        return port.compact_ref(order_id, attempt_no)

    async def dispatch(self, channel: port.ChannelAccess, req: port.DispatchRequest) -> DispatchOutcome:
        started = time.perf_counter()
        try:
            product = Product.parse(channel.products.get(req.product_code))
        except port.InvalidChannelConfig as exc:
            # Nothing was sent, so the supplier certainly has no such order.
            where = ".".join(filter(None, ("products", req.product_code, exc.field)))
            message = f"{where}: {exc.message}"
            return DispatchOutcome.rejected("invalid_product", message, latency_ms=ms_since(started))
        body = order_body(product, req.supplier_ref, req.account)
        try:
            response = await self._exchange(channel, "POST", "/topups", content=body)
        except TokenError as exc:
            return DispatchOutcome.unknown(
                "token_error",
                exc.message,
                http_status=exc.http_status,
                raw=exc.raw,
                latency_ms=ms_since(started),
            )
        except NoReply as exc:
            return DispatchOutcome.unknown(exc.code, exc.message, latency_ms=ms_since(started))
        outcome = classify_order(response.status_code, response.content, req.supplier_ref)
        outcome.latency_ms, outcome.raw = ms_since(started), raw_text(response)
        return outcome

    async def query(self, channel: port.ChannelAccess, req: port.QueryRequest) -> QueryOutcome:
        started = time.perf_counter()
        params = {"customIdentifier": req.supplier_ref}
        try:
            response = await self._exchange(channel, "GET", "/topups/reports/transactions", params=params)
        except TokenError as exc:
            return QueryOutcome(
                "error", "token_error", exc.message, exc.http_status, ms_since(started), exc.raw
            )
        except NoReply as exc:
            return QueryOutcome("error", exc.code, exc.message, latency_ms=ms_since(started))
        outcome = classify_query(response.status_code, response.content, req.supplier_ref)
        outcome.latency_ms, outcome.raw = ms_since(started), raw_text(response)
        return outcome

    async def balance(self, channel: port.ChannelAccess) -> BalanceOutcome:
        try:
            response = await self._exchange(channel, "GET", "/accounts/balance")
        except TokenError as exc:
            return BalanceOutcome.failed("token_error", exc.message, http_status=exc.http_status, raw=exc.raw)
        except NoReply as exc:
            return BalanceOutcome.failed(exc.code, exc.message)
        outcome = classify_balance(response.status_code, response.content)
        outcome.raw = raw_text(response)
        return outcome

    def parse_callback(
        self, channel: port.ChannelAccess, request: port.CallbackRequest, now: float
    ) -> port.CallbackData:
        secret = channel.credentials.get("webhook_secret")
        if not isinstance(secret, str) or not secret:
            raise port.CallbackRefused("unauthorized", "the channel has no webhook_secret")
        verify_webhook(secret, request.headers, request.body, now)
        return parse_webhook(request.body)

    def ack(self, data: port.CallbackData, outcome: str = "") -> port.Ack:
        return port.Ack(200, b'{"received":true}', "application/json")

    async def _exchange(
        self, channel: port.ChannelAccess, method: str, path: str, **kw: Any
    ) -> httpx.Response:
        """One authorised call, token and any 401 retry included, bounded as a whole by `timeout_s`."""
        try:
            async with asyncio.timeout(channel.timeout_s):
                token = await self.tokens.get(channel)
                response = await self._send(channel, token, method, path, **kw)
                if response.status_code != 401:
                    return response
                # Refresh once (unless someone already has) and repeat the call once.
                token = await self.tokens.get(channel, stale=token)
                return await self._send(channel, token, method, path, **kw)
        except TimeoutError:
            raise NoReply("timeout", f"no reply within {channel.timeout_s:g} s") from None

    async def _send(
        self, channel: port.ChannelAccess, token: str, method: str, path: str, **kw: Any
    ) -> httpx.Response:
        request = build(self._client, method, join(channel.base_url, path), channel.timeout_s, **kw)
        request.headers["Authorization"] = f"Bearer {token}"
        request.headers["Accept"] = ACCEPT
        if method == "POST":
            request.headers["Content-Type"] = "application/json"
        return await send(self._client, request, channel.timeout_s)


def _is_http_url(value: str) -> bool:
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL:
        return False
    return url.scheme in ("http", "https") and bool(url.host) and not url.query


def create(client: httpx.AsyncClient, now: Callable[[], float]) -> Reloadly:
    return Reloadly(client, now)
