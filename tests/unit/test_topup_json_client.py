"""SupplierClient against httpx.MockTransport: outcome kinds, signatures, what is sent."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import orjson
import pytest

from topup.adapters.suppliers.fake import FakeSupplier
from topup.adapters.suppliers.protocols.topup_json import (
    DispatchOutcome,
    DispatchRequest,
    QueryOutcome,
    SupplierClient,
)
from topup.domain import suppliers as port
from topup.signing import SignatureError, verify

NOW = 1_700_000_000.0
SECRET = "chan-secret"
BASE = "http://supplier.test/sim/supA"

Handler = Callable[[httpx.Request], httpx.Response]


def make_request(ref: str = "ord_1-1") -> DispatchRequest:
    return DispatchRequest(
        ref=ref,
        product_code="airtime.50",
        business_type="mobile_airtime",
        account="13800138000",
        face_value=5000,
        callback_url="http://platform.test/callbacks/topup-json/supA",
        extra={"region": "bj"},
    )


def client_for(handler: Callable[[httpx.Request], object]) -> tuple[SupplierClient, httpx.AsyncClient]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))  # type: ignore[arg-type]
    return SupplierClient(http, now=lambda: NOW), http


def reply(status: int = 200, json: object = None, content: bytes | None = None) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        if content is not None:
            return httpx.Response(status, content=content)
        return httpx.Response(status, json=json)

    return handler


async def dispatch_with(
    handler: Callable[[httpx.Request], object], timeout_s: float = 1.0
) -> DispatchOutcome:
    client, http = client_for(handler)
    async with http:
        return await client.dispatch(BASE, SECRET, make_request(), timeout_s)


async def query_with(handler: Callable[[httpx.Request], object], ref: str = "ord_1-1") -> QueryOutcome:
    client, http = client_for(handler)
    async with http:
        return await client.query(BASE, SECRET, ref, 1.0)


async def test_accepted_reply() -> None:
    outcome = await dispatch_with(reply(json={"result": "accepted", "supplier_order_id": "S-9"}))
    assert outcome.kind == "accepted"
    assert outcome.supplier_order_id == "S-9"
    assert outcome.http_status == 200
    assert outcome.latency_ms >= 0
    assert outcome.raw is not None and "S-9" in outcome.raw


async def test_rejected_reply_keeps_code_and_message() -> None:
    body = {"result": "rejected", "code": "R01", "message": "no stock"}
    outcome = await dispatch_with(reply(json=body))
    assert (outcome.kind, outcome.code, outcome.message) == ("rejected", "R01", "no stock")


async def test_rejected_body_on_non_200_is_unknown() -> None:
    outcome = await dispatch_with(reply(500, json={"result": "rejected", "code": "R01"}))
    assert (outcome.kind, outcome.code, outcome.http_status) == ("unknown", "http_500", 500)


@pytest.mark.parametrize(
    ("handler", "code"),
    [
        (reply(503, content=b"busy"), "http_503"),
        (reply(202, json={"result": "accepted"}), "http_202"),
        (reply(content=b"<html>oops"), "malformed_reply"),
        (reply(json=["accepted"]), "malformed_reply"),
        (reply(json={"result": "maybe"}), "unexpected_reply"),
    ],
)
async def test_other_replies_are_unknown(handler: Handler, code: str) -> None:
    outcome = await dispatch_with(handler)
    assert (outcome.kind, outcome.code) == ("unknown", code)
    assert outcome.raw is not None


async def test_raw_is_truncated_to_2000_chars() -> None:
    outcome = await dispatch_with(reply(content=b"x" * 10_000))
    assert outcome.raw == "x" * 2000


async def test_transport_timeout_is_unknown() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    outcome = await dispatch_with(handler)
    assert (outcome.kind, outcome.code, outcome.http_status) == ("unknown", "timeout", None)


async def test_slow_supplier_is_cut_off_at_timeout() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, json={"result": "accepted"})

    outcome = await dispatch_with(handler, timeout_s=0.05)
    assert (outcome.kind, outcome.code) == ("unknown", "timeout")
    assert outcome.latency_ms < 1000


async def test_connect_error_is_unknown() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    outcome = await dispatch_with(handler)
    assert (outcome.kind, outcome.code) == ("unknown", "connect_error")


async def test_dispatch_is_signed_over_the_exact_bytes_and_full_path() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"result": "accepted", "supplier_order_id": "S-1"})

    await dispatch_with(handler)
    (request,) = seen
    assert request.method == "POST"
    assert request.url.raw_path == b"/sim/supA/orders"
    body = request.content
    assert orjson.loads(body) == {
        "ref": "ord_1-1",
        "product_code": "airtime.50",
        "business_type": "mobile_airtime",
        "account": "13800138000",
        "face_value": 5000,
        "callback_url": "http://platform.test/callbacks/topup-json/supA",
        "extra": {"region": "bj"},
    }
    assert b" " not in body  # compact JSON
    assert request.headers["X-Timestamp"] == str(int(NOW))
    verify(SECRET, request.headers, "POST", "/sim/supA/orders", body, NOW)
    with pytest.raises(SignatureError):
        verify("other-secret", request.headers, "POST", "/sim/supA/orders", body, NOW)
    with pytest.raises(SignatureError):
        verify(SECRET, request.headers, "POST", "/orders", body, NOW)


@pytest.mark.parametrize("status", ["success", "failed", "processing", "not_found"])
async def test_query_statuses(status: str) -> None:
    outcome = await query_with(reply(json={"ref": "ord_1-1", "status": status}))
    assert outcome.status == status
    assert outcome.http_status == 200


async def test_query_is_signed_get_with_empty_body_and_quoted_ref() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ref": "a/b", "status": "processing"})

    outcome = await query_with(handler, ref="a/b")
    assert outcome.status == "processing"
    (request,) = seen
    assert request.method == "GET"
    assert request.content == b""
    assert request.url.raw_path == b"/sim/supA/orders/a%2Fb"
    verify(SECRET, request.headers, "GET", "/sim/supA/orders/a%2Fb", b"", NOW)


async def test_query_404_in_protocol_form_is_not_found() -> None:
    outcome = await query_with(reply(404, json={"ref": "ord_1-1", "status": "not_found"}))
    assert outcome.status == "not_found"


@pytest.mark.parametrize(
    ("handler", "code"),
    [
        (reply(404, content=b"no such route"), "http_404"),
        (reply(503, json={"status": "processing"}), "http_503"),
        (reply(content=b"not json"), "malformed_reply"),
        (reply(json={"ref": "ord_1-1", "status": "done"}), "unexpected_reply"),
        (reply(json={"ref": "ord_9-1", "status": "success"}), "ref_mismatch"),
    ],
)
async def test_query_without_a_valid_answer_is_error(handler: Handler, code: str) -> None:
    outcome = await query_with(handler)
    assert (outcome.status, outcome.code) == ("error", code)


async def test_query_timeout_is_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("slow", request=request)

    outcome = await query_with(handler)
    assert (outcome.status, outcome.code) == ("error", "timeout")


def _access() -> port.ChannelAccess:
    return port.ChannelAccess("supA", "topup-json", BASE, {"secret": SECRET}, {}, {}, 1.0, "http://p/cb")


def _port_request(ref: str) -> port.DispatchRequest:
    return port.DispatchRequest(ref, ref, "airtime.50", "mobile_airtime", "13800138000", 5000)


async def test_fake_records_calls_and_plays_script() -> None:
    fake = FakeSupplier(
        dispatch_outcomes=[DispatchOutcome.rejected("R01"), DispatchOutcome.unknown("timeout")],
        query_outcomes=[QueryOutcome("not_found")],
    )
    first = await fake.dispatch(_access(), _port_request("o-1"))
    second = await fake.dispatch(_access(), _port_request("o-2"))
    third = await fake.dispatch(_access(), _port_request("o-3"))
    assert [first.kind, second.kind, third.kind] == ["rejected", "unknown", "accepted"]
    assert third.supplier_order_id == "fake-o-3"
    assert fake.dispatched_refs == ["o-1", "o-2", "o-3"]
    question = port.QueryRequest("o-2", "o-2", "airtime.50", "mobile_airtime")
    assert (await fake.query(_access(), question)).status == "not_found"
    assert (await fake.query(_access(), question)).status == "processing"
    assert [c.ref for c in fake.query_calls] == ["o-2", "o-2"]
