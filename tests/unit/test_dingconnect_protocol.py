"""The DingConnect codec and adapter against httpx.MockTransport, with vectors written from SPEC section 6."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from topup.adapters.suppliers.protocols import dingconnect
from topup.adapters.suppliers.protocols.dingconnect import DingConnect, international_number
from topup.domain import suppliers as port

NOW = 1_700_000_000.0
API_KEY = "dc-key-1234567890"
BASE = "https://api.dingconnect.com/api/V1"
REF = "ord18c2f0a1b2c3d4e5f6a7b8cA2"
PRODUCTS: dict[str, dict[str, Any]] = {
    "airtime.50": {"SkuCode": "CN_CM_TopUp_50", "SendValue": "50", "SendCurrencyIso": "CNY"},
    "airtime.49": {"SkuCode": "CN_CU_TopUp", "SendValue": "49.9", "SendCurrencyIso": "CNY"},
    "fuel.100": {"SkuCode": "CN_FUEL_100", "SendValue": "100", "SendCurrencyIso": "CNY"},
}

Handler = Callable[[httpx.Request], httpx.Response]


def channel(products: dict[str, dict[str, Any]] | None = None, base_url: str = BASE) -> port.ChannelAccess:
    return port.ChannelAccess(
        code="dc1",
        protocol="dingconnect",
        base_url=base_url,
        credentials={"api_key": API_KEY},
        products=PRODUCTS if products is None else products,
        options={},
        timeout_s=0.5,
        callback_url="http://platform.test/callbacks/dingconnect/dc1",
    )


def order(product_code: str = "airtime.50", account: str = "13800138000", **kw: Any) -> port.DispatchRequest:
    fields: dict[str, Any] = {
        "supplier_ref": REF,
        "ref": "ord_18c2f0a1b2c3d4e5f6a7b8c-2",
        "product_code": product_code,
        "business_type": "mobile_airtime",
        "account": account,
        "face_value": 5000,
        "carrier": "cmcc",
        **kw,
    }
    return port.DispatchRequest(**fields)


QUESTION = port.QueryRequest(REF, "ord_18c2f0a1b2c3d4e5f6a7b8c-2", "airtime.50", "mobile_airtime")


class Recorder:
    """A MockTransport handler that remembers every request and answers with `reply`."""

    def __init__(self, reply: Handler) -> None:
        self.reply = reply
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.reply(request)


def answer(status: int = 200, json: Any = None, content: bytes | None = None) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        if content is not None:
            return httpx.Response(status, content=content)
        return httpx.Response(status, json=json)

    return handler


def raising(exc: Exception) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


async def dispatch_with(handler: Handler, req: port.DispatchRequest | None = None) -> port.DispatchOutcome:
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        return await DingConnect(http, lambda: NOW).dispatch(channel(), req or order())


async def query_with(handler: Handler) -> port.QueryOutcome:
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        return await DingConnect(http, lambda: NOW).query(channel(), QUESTION)


async def balance_with(handler: Handler) -> port.BalanceOutcome:
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        return await DingConnect(http, lambda: NOW).balance(channel())


def transfer(state: str, result: int = 1, ref: str = REF, errors: list[Any] | None = None) -> dict[str, Any]:
    return {
        "TransferRecord": {
            "TransferId": {"TransferRef": "9876543", "DistributorRef": ref},
            "SkuCode": "CN_CM_TopUp_50",
            "ProcessingState": state,
        },
        "ResultCode": result,
        "ErrorCodes": errors or [],
    }


# ---- what goes on the wire -----------------------------------------------------------------------


async def test_send_transfer_request_is_exactly_the_spec() -> None:
    recorder = Recorder(answer(json=transfer("Submitted")))
    await dispatch_with(recorder)
    (sent,) = recorder.requests
    assert sent.method == "POST"
    assert str(sent.url) == "https://api.dingconnect.com/api/V1/SendTransfer"
    assert sent.headers["api_key"] == API_KEY
    assert sent.headers["content-type"] == "application/json"
    assert sent.content == (
        b'{"SkuCode":"CN_CM_TopUp_50","SendValue":50,"SendCurrencyIso":"CNY",'
        b'"AccountNumber":"8613800138000","DistributorRef":"ord18c2f0a1b2c3d4e5f6a7b8cA2",'
        b'"ValidateOnly":false}'
    )


@pytest.mark.parametrize(
    ("send_value", "wire"),
    [("49.9", b'"SendValue":49.9,'), ("0.01", b'"SendValue":0.01,'), ("100.00", b'"SendValue":100,')],
)
async def test_send_value_is_an_exact_json_number(send_value: str, wire: bytes) -> None:
    recorder = Recorder(answer(json=transfer("Submitted")))
    products = {"airtime.50": {"SkuCode": "S", "SendValue": send_value, "SendCurrencyIso": "CNY"}}
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorder)) as http:
        await DingConnect(http, lambda: NOW).dispatch(channel(products), order())
    assert wire in recorder.requests[0].content


@pytest.mark.parametrize(
    ("account", "business_type", "expected"),
    [
        ("13800138000", "mobile_airtime", "8613800138000"),
        ("+8613800138000", "mobile_airtime", "8613800138000"),
        ("008613912345678", "mobile_data", "8613912345678"),
        ("1000111234567890123", "fuel_card", "1000111234567890123"),
        ("12345678", "membership", "12345678"),
        ("not a number", "mobile_airtime", None),
        ("12", "mobile_airtime", None),
    ],
)
def test_account_number_is_international_without_plus(
    account: str, business_type: str, expected: str | None
) -> None:
    assert international_number(account, business_type) == expected


async def test_an_account_that_is_no_phone_number_is_refused_without_sending() -> None:
    recorder = Recorder(answer(json=transfer("Submitted")))
    outcome = await dispatch_with(recorder, order(account="abc"))
    assert (outcome.kind, outcome.code) == ("rejected", "invalid_account")
    assert recorder.requests == []


async def test_a_product_without_an_entry_is_refused_without_sending() -> None:
    recorder = Recorder(answer(json=transfer("Submitted")))
    outcome = await dispatch_with(recorder, order(product_code="data.1g"))
    assert (outcome.kind, outcome.code) == ("rejected", "product_not_configured")
    assert recorder.requests == []


# ---- dispatch classification, row by row ---------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "kind"),
    [("Complete", "succeeded"), ("Submitted", "accepted"), ("Processing", "accepted")],
)
async def test_result_code_1_by_processing_state(state: str, kind: str) -> None:
    outcome = await dispatch_with(answer(json=transfer(state)))
    assert outcome.kind == kind
    assert outcome.supplier_order_id == "9876543"
    assert outcome.http_status == 200
    assert outcome.raw is not None and state in outcome.raw


async def test_result_code_1_failed_is_a_definite_failure() -> None:
    errors = [{"Code": "ProviderError", "Context": "operator down"}]
    outcome = await dispatch_with(answer(json=transfer("Failed", errors=errors)))
    assert (outcome.kind, outcome.code, outcome.message) == ("failed", "ProviderError", "operator down")


@pytest.mark.parametrize("result", [4, 5])
async def test_result_codes_4_and_5_are_rejections_with_the_first_error_code(result: int) -> None:
    errors = [
        {"Code": "AccountNumberInvalid", "Context": "8613800138000"},
        {"Code": "RechargeNotAllowed", "Context": None},
    ]
    body = {"ResultCode": result, "ErrorCodes": errors, "TransferRecord": None}
    outcome = await dispatch_with(answer(json=body))
    assert (outcome.kind, outcome.code, outcome.message) == (
        "rejected",
        "AccountNumberInvalid",
        "8613800138000",
    )


async def test_a_rejection_without_error_codes_names_the_result_code() -> None:
    outcome = await dispatch_with(answer(json={"ResultCode": 4, "ErrorCodes": []}))
    assert (outcome.kind, outcome.code) == ("rejected", "result_code_4")


@pytest.mark.parametrize(
    "body",
    [
        {"ResultCode": 3, "ErrorCodes": [{"Code": "RateLimited"}]},
        {"ResultCode": 2, "ErrorCodes": [{"Code": "Whatever"}]},
        {"ResultCode": 0},
        {"ResultCode": 6, "ErrorCodes": []},
        {"ResultCode": True},
        {"ErrorCodes": [{"Code": "InsufficientBalance"}]},
        {"ResultCode": "1x"},
    ],
)
async def test_other_result_codes_are_unknown(body: dict[str, Any]) -> None:
    outcome = await dispatch_with(answer(json=body))
    assert outcome.kind == "unknown"


async def test_result_code_as_digit_text_is_read() -> None:
    outcome = await dispatch_with(answer(json={**transfer("Complete"), "ResultCode": "1"}))
    assert outcome.kind == "succeeded"


async def test_an_unknown_processing_state_is_unknown() -> None:
    outcome = await dispatch_with(answer(json=transfer("Cancelled")))
    assert (outcome.kind, outcome.code) == ("unknown", "unexpected_reply")


async def test_a_reply_for_another_ref_is_unknown() -> None:
    outcome = await dispatch_with(answer(json=transfer("Complete", ref="someoneElseA1")))
    assert (outcome.kind, outcome.code) == ("unknown", "ref_mismatch")


@pytest.mark.parametrize(
    "errors",
    [
        [{"Code": "InsufficientBalance", "Context": "balance 3.20"}],
        [{"Code": "Other"}, {"Code": "InsufficientBalance"}],
    ],
)
async def test_a_500_with_insufficient_balance_is_a_rejection(errors: list[Any]) -> None:
    outcome = await dispatch_with(answer(500, json={"ResultCode": 3, "ErrorCodes": errors}))
    assert (outcome.kind, outcome.code, outcome.http_status) == ("rejected", "InsufficientBalance", 500)


@pytest.mark.parametrize(
    ("status", "json"),
    [
        (500, {"ResultCode": 3, "ErrorCodes": [{"Code": "InternalError"}]}),
        (500, {"Message": "An error has occurred."}),
        (502, {"ResultCode": 3, "ErrorCodes": [{"Code": "InsufficientBalance"}]}),
        (503, None),
        (401, {"Message": "Authorization has been denied for this request."}),
        (400, {"ResultCode": 4, "ErrorCodes": [{"Code": "BadRequest"}]}),
    ],
)
async def test_other_http_statuses_are_unknown(status: int, json: Any) -> None:
    outcome = await dispatch_with(answer(status, json=json))
    assert (outcome.kind, outcome.code, outcome.http_status) == ("unknown", f"http_{status}", status)


@pytest.mark.parametrize("content", [b"<html>502 upstream gibberish", b"[1, 2]", b""])
async def test_an_unparseable_reply_is_unknown(content: bytes) -> None:
    outcome = await dispatch_with(answer(content=content))
    assert (outcome.kind, outcome.code) == ("unknown", "malformed_reply")


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (httpx.ReadTimeout("slow"), "timeout"),
        (httpx.ConnectError("refused"), "connect_error"),
        (httpx.RemoteProtocolError("reset"), "network_error"),
    ],
)
async def test_no_reply_is_unknown(exc: Exception, code: str) -> None:
    outcome = await dispatch_with(raising(exc))
    assert (outcome.kind, outcome.code) == ("unknown", code)


# ---- status query --------------------------------------------------------------------------------


async def test_the_query_request_is_exactly_the_spec() -> None:
    recorder = Recorder(answer(json={"ResultCode": 1, "ErrorCodes": [], "Items": []}))
    await query_with(recorder)
    (sent,) = recorder.requests
    assert (sent.method, str(sent.url)) == ("POST", "https://api.dingconnect.com/api/V1/ListTransferRecords")
    assert sent.headers["api_key"] == API_KEY
    assert sent.content == b'{"DistributorRef":"ord18c2f0a1b2c3d4e5f6a7b8cA2","Take":1}'


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ("Complete", "success"),
        ("Failed", "failed"),
        ("Submitted", "processing"),
        ("Processing", "processing"),
    ],
)
async def test_query_maps_processing_state(state: str, status: str) -> None:
    item = transfer(state, errors=[{"Code": "ProviderError", "Context": "x"}] if state == "Failed" else None)
    outcome = await query_with(answer(json={"ResultCode": 1, "ErrorCodes": [], "Items": [item]}))
    assert outcome.status == status
    assert outcome.supplier_order_id == "9876543"
    if status == "failed":
        assert outcome.code == "ProviderError"


async def test_query_without_an_item_is_not_found() -> None:
    outcome = await query_with(answer(json={"ResultCode": 1, "ErrorCodes": [], "Items": []}))
    assert outcome.status == "not_found"


@pytest.mark.parametrize(
    ("status", "reply", "code"),
    [
        (200, {"ResultCode": 3, "ErrorCodes": [{"Code": "RateLimited"}], "Items": []}, "result_code_3"),
        (200, {"ResultCode": 4, "Items": []}, "result_code_4"),
        (200, {"Items": []}, "unexpected_reply"),
        (200, {"ResultCode": 1, "Items": None}, "malformed_reply"),
        (200, {"ResultCode": 1, "Items": [transfer("Cancelled")]}, "unexpected_reply"),
        (200, {"ResultCode": 1, "Items": ["junk"]}, "unexpected_reply"),
        (200, {"ResultCode": 1, "Items": [transfer("Complete", ref="otherA1")]}, "ref_mismatch"),
        (500, {"ResultCode": 3}, "http_500"),
        (401, {"Message": "denied"}, "http_401"),
    ],
)
async def test_query_errors(status: int, reply: Any, code: str) -> None:
    outcome = await query_with(answer(status, json=reply))
    assert (outcome.status, outcome.code) == ("error", code)


async def test_query_of_gibberish_or_silence_is_an_error() -> None:
    garbage = await query_with(answer(content=b"<html>oops"))
    assert (garbage.status, garbage.code) == ("error", "malformed_reply")
    silence = await query_with(raising(httpx.ReadTimeout("slow")))
    assert (silence.status, silence.code) == ("error", "timeout")


# ---- balance -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "amount", "currency"),
    [
        (b'{"Balance": 1234.5, "CurrencyIso": "CNY", "ResultCode": 1, "ErrorCodes": []}', 123450, "CNY"),
        (b'{"Balance": 123456789012345.67, "CurrencyIso": "CNY"}', 12345678901234567, "CNY"),
        (b'{"Balance": 20, "CurrencyIso": "usd"}', 2000, "USD"),
        (b'{"Balance": "99.90", "CurrencyIso": "EUR"}', 9990, "EUR"),
        (b'{"Balance": 0.01, "CurrencyIso": "CNY"}', 1, "CNY"),
    ],
)
async def test_balance_in_minor_units(body: bytes, amount: int, currency: str) -> None:
    recorder = Recorder(answer(content=body))
    outcome = await balance_with(recorder)
    assert (outcome.ok, outcome.amount, outcome.currency) == (True, amount, currency)
    (sent,) = recorder.requests
    assert (sent.method, str(sent.url)) == ("GET", "https://api.dingconnect.com/api/V1/GetBalance")
    assert sent.headers["api_key"] == API_KEY
    assert sent.content == b""


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (200, b'{"Balance": 1.234, "CurrencyIso": "CNY"}', "malformed_reply"),
        (200, b'{"Balance": 1, "CurrencyIso": null}', "malformed_reply"),
        (200, b'{"Balance": true, "CurrencyIso": "CNY"}', "malformed_reply"),
        (200, b'{"CurrencyIso": "CNY"}', "malformed_reply"),
        (200, b'{"Balance": 1, "CurrencyIso": "CNY", "ResultCode": 3}', "result_code_3"),
        (200, b"<html>", "malformed_reply"),
        (401, b'{"Message": "denied"}', "http_401"),
        (503, b"", "http_503"),
    ],
)
async def test_balance_failures(status: int, body: bytes, code: str) -> None:
    outcome = await balance_with(answer(status, content=body))
    assert (outcome.ok, outcome.code) == (False, code)


async def test_balance_without_reply_fails() -> None:
    outcome = await balance_with(raising(httpx.ConnectError("refused")))
    assert (outcome.ok, outcome.code) == (False, "connect_error")


# ---- callbacks -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        orjson.dumps({"DistributorRef": REF, "ProcessingState": "Complete"}),
        b"garbage",
        b"",
    ],
)
def test_every_callback_is_refused(body: bytes) -> None:
    adapter = DingConnect(httpx.AsyncClient(), lambda: NOW)
    request = port.CallbackRequest("POST", "/callbacks/dingconnect/dc1", {"api_key": API_KEY}, body)
    with pytest.raises(port.CallbackRefused) as refused:
        adapter.parse_callback(channel(), request, NOW)
    assert refused.value.kind == "malformed"
    assert "no callbacks" in refused.value.message


def test_ack_and_attributes() -> None:
    adapter = dingconnect.create(httpx.AsyncClient(), lambda: NOW)
    assert dingconnect.NAME == adapter.name == "dingconnect"
    assert adapter.has_callbacks is False and adapter.has_balance is True
    assert adapter.secret_fields == ("api_key",)
    assert adapter.ack(port.CallbackData(REF, "success")).status_code == 200


# ---- configuration -------------------------------------------------------------------------------


def adapter() -> DingConnect:
    return DingConnect(httpx.AsyncClient(), lambda: NOW)


def test_validate_normalises() -> None:
    credentials, products, options = adapter().validate(
        {"api_key": f" {API_KEY} "},
        {
            "a": {"SkuCode": " CN_CM ", "SendValue": 50, "SendCurrencyIso": "cny", "price": 4950},
            "b": {"SkuCode": "CN_CU", "SendValue": "7.50", "SendCurrencyIso": "CNY"},
            "c": {"SkuCode": "CN_CT", "SendValue": 49.9, "SendCurrencyIso": "CNY"},
        },
        {"note": "kept"},
    )
    assert credentials == {"api_key": API_KEY}
    assert products == {
        "a": {"SkuCode": "CN_CM", "SendValue": "50", "SendCurrencyIso": "CNY", "price": 4950},
        "b": {"SkuCode": "CN_CU", "SendValue": "7.5", "SendCurrencyIso": "CNY"},
        "c": {"SkuCode": "CN_CT", "SendValue": "49.9", "SendCurrencyIso": "CNY"},
    }
    assert options == {"note": "kept"}


GOOD = {"SkuCode": "CN_CM", "SendValue": 50, "SendCurrencyIso": "CNY"}


@pytest.mark.parametrize(
    ("credentials", "products", "field"),
    [
        ({}, {}, "credentials.api_key"),
        ({"api_key": ""}, {}, "credentials.api_key"),
        ({"api_key": 12345}, {}, "credentials.api_key"),
        ({"api_key": "k", "secret": "s"}, {}, "credentials"),
        ({"api_key": "k"}, {"a": "CN_CM"}, "products.a"),
        ({"api_key": "k"}, {"a": {**GOOD, "SkuCode": None}}, "products.a.SkuCode"),
        ({"api_key": "k"}, {"a": {**GOOD, "SkuCode": ""}}, "products.a.SkuCode"),
        ({"api_key": "k"}, {"a": {"SkuCode": "X", "SendCurrencyIso": "CNY"}}, "products.a.SendValue"),
        ({"api_key": "k"}, {"a": {**GOOD, "SendValue": 0}}, "products.a.SendValue"),
        ({"api_key": "k"}, {"a": {**GOOD, "SendValue": -5}}, "products.a.SendValue"),
        ({"api_key": "k"}, {"a": {**GOOD, "SendValue": True}}, "products.a.SendValue"),
        ({"api_key": "k"}, {"a": {**GOOD, "SendValue": "abc"}}, "products.a.SendValue"),
        ({"api_key": "k"}, {"a": {**GOOD, "SendValue": "NaN"}}, "products.a.SendValue"),
        ({"api_key": "k"}, {"a": {**GOOD, "SendCurrencyIso": None}}, "products.a.SendCurrencyIso"),
        ({"api_key": "k"}, {"a": {**GOOD, "SendCurrencyIso": "RMB1"}}, "products.a.SendCurrencyIso"),
        ({"api_key": "k"}, {"a": {**GOOD, "SendCurrencyIso": "人民币"}}, "products.a.SendCurrencyIso"),
    ],
)
def test_validate_names_the_field(credentials: dict[str, Any], products: dict[str, Any], field: str) -> None:
    with pytest.raises(port.InvalidChannelConfig) as invalid:
        adapter().validate(credentials, products, {})
    assert invalid.value.field == field


def test_serves_only_products_with_an_entry() -> None:
    dc = adapter()
    assert dc.serves(channel(), "airtime.50", "mobile_airtime")
    assert not dc.serves(channel(), "data.1g", "mobile_data")
    assert not dc.serves(channel({"airtime.50": {"SkuCode": "X"}}), "airtime.50", "mobile_airtime")


def test_supplier_ref_is_compact_deterministic_and_unique() -> None:
    dc = adapter()
    assert dc.supplier_ref("ord_18c2f0a1b2c3d4e5f6a7b8c", 2) == "ord18c2f0a1b2c3d4e5f6a7b8cA2"
    assert dc.supplier_ref("ord_18c2f0a1b2c3d4e5f6a7b8c", 2) == dc.supplier_ref(
        "ord_18c2f0a1b2c3d4e5f6a7b8c", 2
    )
    assert dc.supplier_ref("ord_18c2f0a1b2c3d4e5f6a7b8c", 1) != dc.supplier_ref(
        "ord_18c2f0a1b2c3d4e5f6a7b8c", 2
    )
    long_ref = dc.supplier_ref("ord_" + "f" * 60, 12)
    assert re.fullmatch(r"[A-Za-z0-9]{1,32}", long_ref)
