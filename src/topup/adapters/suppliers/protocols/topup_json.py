"""The platform's own supplier protocol, `topup-json` (SPEC section 2).

A dispatch has three outcomes and only two of them are definite: `accepted` and `rejected` need an HTTP 200
with that `result`. Everything else (timeout, network error, 5xx, garbage) is `unknown`: the supplier may or
may not have taken the order, so the caller must wait for a callback or ask with `query`.
`SupplierClient` is the wire client; `TopupJson` fits it to the supplier port.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from topup import signing
from topup.adapters.suppliers.transport import (
    NoReply,
    build,
    join,
    json_object,
    ms_since,
    raw_text,
    send,
    text,
)
from topup.domain import suppliers as port
from topup.domain.suppliers import BalanceOutcome, DispatchOutcome, QueryOutcome

NAME = "topup-json"
QUERY_STATUSES = frozenset({"success", "failed", "processing", "not_found"})

__all__ = ["DispatchOutcome", "QueryOutcome", "DispatchRequest", "SupplierClient", "TopupJson", "create"]


@dataclass
class DispatchRequest:
    """One attempt as sent to a topup-json supplier; `ref` is `<order_id>-<attempt no>`."""

    ref: str
    product_code: str
    business_type: str
    account: str
    face_value: int
    callback_url: str
    extra: dict[str, Any] = field(default_factory=dict)


class SupplierClient:
    """Signed topup-json requests over an injected `httpx.AsyncClient`.

    `now` supplies unix seconds for the signature timestamp (a Clock's `now`); latency is measured on the
    monotonic clock. Never raises for anything the supplier or the network does.
    """

    def __init__(self, client: httpx.AsyncClient, now: Callable[[], float]) -> None:
        self._client = client
        self._now = now

    async def dispatch(
        self, base_url: str, secret: str, req: DispatchRequest, timeout_s: float
    ) -> DispatchOutcome:
        body = orjson.dumps(asdict(req))
        started = time.perf_counter()
        try:
            response = await self._send("POST", join(base_url, "/orders"), secret, body, timeout_s)
        except NoReply as exc:
            return DispatchOutcome.unknown(exc.code, exc.message, latency_ms=ms_since(started))
        return _dispatch_outcome(response, ms_since(started))

    async def query(self, base_url: str, secret: str, ref: str, timeout_s: float) -> QueryOutcome:
        url = join(base_url, "/orders/" + quote(ref, safe=""))
        started = time.perf_counter()
        try:
            response = await self._send("GET", url, secret, b"", timeout_s)
        except NoReply as exc:
            return QueryOutcome("error", exc.code, exc.message, latency_ms=ms_since(started))
        return _query_outcome(response, ref, ms_since(started))

    async def balance(self, base_url: str, secret: str, timeout_s: float) -> BalanceOutcome:
        try:
            response = await self._send("GET", join(base_url, "/balance"), secret, b"", timeout_s)
        except NoReply as exc:
            return BalanceOutcome.failed(exc.code, exc.message)
        data = json_object(response.content)
        common: dict[str, Any] = {"http_status": response.status_code, "raw": raw_text(response)}
        if response.status_code != 200 or data is None:
            return BalanceOutcome.failed(f"http_{response.status_code}", **common)
        amount, currency = data.get("amount"), data.get("currency") or "CNY"
        if not isinstance(amount, int) or isinstance(amount, bool):
            return BalanceOutcome.failed("malformed_reply", f"amount={amount!r}", **common)
        return BalanceOutcome(True, amount, str(currency), **common)

    async def _send(
        self, method: str, url: str, secret: str, body: bytes, timeout_s: float
    ) -> httpx.Response:
        request = build(self._client, method, url, timeout_s, content=body or None)
        # Sign the target exactly as it goes on the wire, including any base_url path prefix.
        target = request.url.raw_path.decode("ascii")
        request.headers.update(signing.signed_headers(secret, method, target, body, self._now()))
        if body:
            request.headers["Content-Type"] = "application/json"
        return await send(self._client, request, timeout_s)


def _dispatch_outcome(response: httpx.Response, latency_ms: float) -> DispatchOutcome:
    common: dict[str, Any] = {
        "http_status": response.status_code,
        "latency_ms": latency_ms,
        "raw": raw_text(response),
    }
    if response.status_code != 200:
        return DispatchOutcome("unknown", code=f"http_{response.status_code}", **common)
    data = json_object(response.content)
    if data is None:
        message = "reply is not a JSON object"
        return DispatchOutcome("unknown", code="malformed_reply", message=message, **common)
    result = data.get("result")
    if result == "accepted":
        return DispatchOutcome("accepted", supplier_order_id=text(data.get("supplier_order_id")), **common)
    if result == "rejected":
        code = text(data.get("code")) or "rejected"
        return DispatchOutcome("rejected", code=code, message=text(data.get("message")), **common)
    return DispatchOutcome("unknown", code="unexpected_reply", message=f"result={result!r}", **common)


def _query_outcome(response: httpx.Response, ref: str, latency_ms: float) -> QueryOutcome:
    common: dict[str, Any] = {
        "http_status": response.status_code,
        "latency_ms": latency_ms,
        "raw": raw_text(response),
    }
    data = json_object(response.content)
    status = data.get("status") if data is not None else None
    # A 404 that says `not_found` in protocol form is a valid answer; any other 404 is not.
    valid_http = response.status_code == 200 or (response.status_code == 404 and status == "not_found")
    if not valid_http:
        return QueryOutcome("error", code=f"http_{response.status_code}", **common)
    if data is None:
        return QueryOutcome("error", code="malformed_reply", message="reply is not a JSON object", **common)
    if status not in QUERY_STATUSES:
        return QueryOutcome("error", code="unexpected_reply", message=f"status={status!r}", **common)
    if data.get("ref") not in (None, ref):
        return QueryOutcome("error", code="ref_mismatch", message=f"reply is for {data['ref']!r}", **common)
    return QueryOutcome(
        status,  # type: ignore[arg-type]  # checked against QUERY_STATUSES above
        code=text(data.get("code")),
        message=text(data.get("message")),
        **common,
    )


class TopupJson:
    """The `topup-json` protocol on the supplier port."""

    name = NAME
    has_callbacks = True
    has_balance = True
    credential_fields: tuple[str, ...] = ("secret",)
    secret_fields: tuple[str, ...] = ("secret",)
    product_fields: tuple[str, ...] = ()
    option_fields: tuple[str, ...] = ()

    def __init__(self, client: httpx.AsyncClient, now: Callable[[], float]) -> None:
        self.client = SupplierClient(client, now)

    def validate(
        self, credentials: Mapping[str, Any], products: Mapping[str, Any], options: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, Any]]:
        secret = credentials.get("secret")
        if not isinstance(secret, str) or not 8 <= len(secret) <= 200:
            raise port.InvalidChannelConfig("credentials.secret", "required, 8-200 characters")
        extra = set(credentials) - {"secret"}
        if extra:
            raise port.InvalidChannelConfig("credentials", f"unknown fields {sorted(extra)}")
        for code, entry in products.items():
            if not isinstance(entry, Mapping):
                raise port.InvalidChannelConfig(f"products.{code}", "must be an object")
        return {"secret": secret}, {k: dict(v) for k, v in products.items()}, dict(options)

    def serves(self, channel: port.ChannelAccess, product_code: str, business_type: str) -> bool:
        return True  # sends our product_code as it is

    def supplier_ref(self, order_id: str, attempt_no: int) -> str:
        return f"{order_id}-{attempt_no}"

    async def dispatch(self, channel: port.ChannelAccess, req: port.DispatchRequest) -> DispatchOutcome:
        wire = DispatchRequest(
            ref=req.supplier_ref,
            product_code=req.product_code,
            business_type=req.business_type,
            account=req.account,
            face_value=req.face_value,
            callback_url=channel.callback_url,
            extra=dict(req.extra),
        )
        secret = str(channel.credentials["secret"])
        return await self.client.dispatch(channel.base_url, secret, wire, channel.timeout_s)

    async def query(self, channel: port.ChannelAccess, req: port.QueryRequest) -> QueryOutcome:
        secret = str(channel.credentials["secret"])
        return await self.client.query(channel.base_url, secret, req.supplier_ref, channel.timeout_s)

    async def balance(self, channel: port.ChannelAccess) -> BalanceOutcome:
        secret = str(channel.credentials["secret"])
        return await self.client.balance(channel.base_url, secret, channel.timeout_s)

    def parse_callback(
        self, channel: port.ChannelAccess, request: port.CallbackRequest, now: float
    ) -> port.CallbackData:
        secret = str(channel.credentials["secret"])
        try:
            signing.verify(secret, request.headers, "POST", request.target, request.body, now)
        except signing.SignatureError as e:
            raise port.CallbackRefused("unauthorized", str(e)) from None
        data = json_object(request.body)
        if data is None:
            raise port.CallbackRefused("malformed", "malformed callback: body is not a JSON object")
        ref, status = data.get("ref"), data.get("status")
        if not isinstance(ref, str) or not 1 <= len(ref) <= 200:
            raise port.CallbackRefused("malformed", "malformed callback: ref is required")
        if status not in ("success", "failed"):
            raise port.CallbackRefused("malformed", "malformed callback: status must be success or failed")
        for key in ("supplier_order_id", "code", "message"):
            value = data.get(key)
            if value is not None and (not isinstance(value, str | int) or len(str(value)) > 500):
                raise port.CallbackRefused("malformed", f"malformed callback: {key}")
        return port.CallbackData(
            supplier_ref=ref,
            status=status,
            supplier_order_id=text(data.get("supplier_order_id")),
            code=text(data.get("code")),
            message=text(data.get("message")),
        )

    def ack(self, data: port.CallbackData, outcome: str = "") -> port.Ack:
        body = {"received": True, "outcome": outcome} if outcome else {"received": True}
        return port.Ack(200, orjson.dumps(body), "application/json")


def create(client: httpx.AsyncClient, now: Callable[[], float]) -> TopupJson:
    return TopupJson(client, now)
