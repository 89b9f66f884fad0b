"""The platform's client for the `topup-json` supplier protocol (SPEC section 2).

A dispatch has three outcomes and only two of them are definite: `accepted` and `rejected` need an HTTP 200
with that `result`. Everything else (timeout, network error, 5xx, garbage) is `unknown`: the supplier may or
may not have taken the order, so the caller must wait for a callback or ask with `query`.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import quote

import httpx
import orjson

from topup.signing import signed_headers

RAW_LIMIT = 2000
QUERY_STATUSES = frozenset({"success", "failed", "processing", "not_found"})

DispatchKind = Literal["accepted", "rejected", "unknown"]
QueryStatus = Literal["success", "failed", "processing", "not_found", "error"]


@dataclass
class DispatchRequest:
    """One attempt as sent to a supplier; `ref` is `<order_id>-<attempt no>`."""

    ref: str
    product_code: str
    business_type: str
    account: str
    face_value: int
    callback_url: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class DispatchOutcome:
    """What a dispatch told us. Only `rejected` is a definite failure."""

    kind: DispatchKind
    supplier_order_id: str | None = None
    code: str | None = None
    message: str | None = None
    http_status: int | None = None
    latency_ms: float = 0.0
    raw: str | None = None

    @classmethod
    def accepted(cls, supplier_order_id: str | None = None, **kw: Any) -> DispatchOutcome:
        return cls("accepted", supplier_order_id=supplier_order_id, http_status=200, **kw)

    @classmethod
    def rejected(cls, code: str = "rejected", message: str | None = None, **kw: Any) -> DispatchOutcome:
        return cls("rejected", code=code, message=message, http_status=200, **kw)

    @classmethod
    def unknown(cls, code: str, message: str | None = None, **kw: Any) -> DispatchOutcome:
        return cls("unknown", code=code, message=message, **kw)


@dataclass
class QueryOutcome:
    """A status query's answer; `error` when no valid answer came back."""

    status: QueryStatus
    code: str | None = None
    message: str | None = None
    http_status: int | None = None
    latency_ms: float = 0.0
    raw: str | None = None


class SupplierPort(Protocol):
    """What the services need from a topup-json supplier; `SupplierClient` and the fake both fit."""

    async def dispatch(
        self, base_url: str, secret: str, req: DispatchRequest, timeout_s: float
    ) -> DispatchOutcome: ...

    async def query(self, base_url: str, secret: str, ref: str, timeout_s: float) -> QueryOutcome: ...


class _NoReply(Exception):
    """The request got no HTTP reply at all; `code` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _join(base_url: str, path: str) -> str:
    return base_url.rstrip("/") + path


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


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
            response = await self._send("POST", _join(base_url, "/orders"), secret, body, timeout_s)
        except _NoReply as exc:
            return DispatchOutcome.unknown(exc.code, exc.message, latency_ms=_ms_since(started))
        return _dispatch_outcome(response, _ms_since(started))

    async def query(self, base_url: str, secret: str, ref: str, timeout_s: float) -> QueryOutcome:
        url = _join(base_url, "/orders/" + quote(ref, safe=""))
        started = time.perf_counter()
        try:
            response = await self._send("GET", url, secret, b"", timeout_s)
        except _NoReply as exc:
            return QueryOutcome("error", exc.code, exc.message, latency_ms=_ms_since(started))
        return _query_outcome(response, ref, _ms_since(started))

    async def _send(
        self, method: str, url: str, secret: str, body: bytes, timeout_s: float
    ) -> httpx.Response:
        try:
            request = self._client.build_request(method, url, content=body or None, timeout=timeout_s)
        except httpx.InvalidURL as exc:
            raise _NoReply("invalid_url", str(exc)) from None
        # Sign the target exactly as it goes on the wire, including any base_url path prefix.
        target = request.url.raw_path.decode("ascii")
        request.headers.update(signed_headers(secret, method, target, body, self._now()))
        if body:
            request.headers["Content-Type"] = "application/json"
        try:
            # httpx timeouts apply per phase; this bounds the whole exchange.
            async with asyncio.timeout(timeout_s):
                return await self._client.send(request)
        except (TimeoutError, httpx.TimeoutException):
            raise _NoReply("timeout", f"no reply within {timeout_s:g} s") from None
        except httpx.ConnectError as exc:
            raise _NoReply("connect_error", str(exc) or type(exc).__name__) from None
        except httpx.TransportError as exc:
            raise _NoReply("network_error", str(exc) or type(exc).__name__) from None
        except httpx.HTTPError as exc:
            raise _NoReply("request_error", str(exc) or type(exc).__name__) from None


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _raw(response: httpx.Response) -> str:
    return response.content[: RAW_LIMIT * 4].decode("utf-8", errors="replace")[:RAW_LIMIT]


def _dispatch_outcome(response: httpx.Response, latency_ms: float) -> DispatchOutcome:
    common: dict[str, Any] = {
        "http_status": response.status_code,
        "latency_ms": latency_ms,
        "raw": _raw(response),
    }
    if response.status_code != 200:
        return DispatchOutcome("unknown", code=f"http_{response.status_code}", **common)
    data = _json_object(response.content)
    if data is None:
        message = "reply is not a JSON object"
        return DispatchOutcome("unknown", code="malformed_reply", message=message, **common)
    result = data.get("result")
    if result == "accepted":
        return DispatchOutcome("accepted", supplier_order_id=_text(data.get("supplier_order_id")), **common)
    if result == "rejected":
        code = _text(data.get("code")) or "rejected"
        return DispatchOutcome("rejected", code=code, message=_text(data.get("message")), **common)
    return DispatchOutcome("unknown", code="unexpected_reply", message=f"result={result!r}", **common)


def _query_outcome(response: httpx.Response, ref: str, latency_ms: float) -> QueryOutcome:
    common: dict[str, Any] = {
        "http_status": response.status_code,
        "latency_ms": latency_ms,
        "raw": _raw(response),
    }
    data = _json_object(response.content)
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
        code=_text(data.get("code")),
        message=_text(data.get("message")),
        **common,
    )


@dataclass
class DispatchCall:
    base_url: str
    secret: str
    req: DispatchRequest
    timeout_s: float


@dataclass
class QueryCall:
    base_url: str
    secret: str
    ref: str
    timeout_s: float


DispatchScript = DispatchOutcome | Callable[[DispatchCall], DispatchOutcome]
QueryScript = QueryOutcome | Callable[[QueryCall], QueryOutcome]


class FakeSupplierClient:
    """In-memory stand-in for `SupplierClient`: records every call and returns scripted outcomes.

    Scripted outcomes (or callables taking the recorded call) are used in order; once they run out the
    `default_*` answer is returned (accepted / processing unless given).
    """

    def __init__(
        self,
        dispatch_outcomes: Iterable[DispatchScript] = (),
        query_outcomes: Iterable[QueryScript] = (),
        default_dispatch: DispatchScript | None = None,
        default_query: QueryScript | None = None,
    ) -> None:
        self.dispatch_calls: list[DispatchCall] = []
        self.query_calls: list[QueryCall] = []
        self._dispatch_script: deque[DispatchScript] = deque(dispatch_outcomes)
        self._query_script: deque[QueryScript] = deque(query_outcomes)
        self.default_dispatch: DispatchScript = default_dispatch or (
            lambda call: DispatchOutcome.accepted(f"fake-{call.req.ref}")
        )
        self.default_query: QueryScript = default_query or QueryOutcome("processing", http_status=200)

    def script_dispatch(self, *outcomes: DispatchScript) -> None:
        self._dispatch_script.extend(outcomes)

    def script_query(self, *outcomes: QueryScript) -> None:
        self._query_script.extend(outcomes)

    @property
    def dispatched_refs(self) -> list[str]:
        return [call.req.ref for call in self.dispatch_calls]

    async def dispatch(
        self, base_url: str, secret: str, req: DispatchRequest, timeout_s: float
    ) -> DispatchOutcome:
        call = DispatchCall(base_url, secret, req, timeout_s)
        self.dispatch_calls.append(call)
        script = self._dispatch_script.popleft() if self._dispatch_script else self.default_dispatch
        return script(call) if callable(script) else script

    async def query(self, base_url: str, secret: str, ref: str, timeout_s: float) -> QueryOutcome:
        call = QueryCall(base_url, secret, ref, timeout_s)
        self.query_calls.append(call)
        script = self._query_script.popleft() if self._query_script else self.default_query
        return script(call) if callable(script) else script
