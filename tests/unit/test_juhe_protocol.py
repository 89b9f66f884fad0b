"""The `juhe` protocol against httpx.MockTransport: wire format, MD5 signs, every reply row of SPEC section 6.

Expected signatures are MD5 over literal strings written out here from the spec, never produced by the
code under test.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import orjson
import pytest

from topup.adapters.suppliers.protocols import juhe
from topup.domain import suppliers as port

NOW = 1_700_000_000.0
OPENID = "JHopenid42"
KEY = "k3y"
BASE = "http://op.juhe.test/api"
REF = "ord18c2f0a1b2A1"
Handler = Callable[[httpx.Request], httpx.Response]


def md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def channel(
    products: Mapping[str, Mapping[str, Any]] | None = None, options: Mapping[str, Any] | None = None
) -> port.ChannelAccess:
    return port.ChannelAccess(
        code="jh1",
        protocol="juhe",
        base_url=BASE,
        credentials={"openid": OPENID, "key": KEY},
        products=products or {},
        options=options or {},
        timeout_s=1.0,
        callback_url="http://platform.test/callbacks/juhe/jh1",
    )


def airtime(face_value: int = 5000, product: str = "airtime.50") -> port.DispatchRequest:
    return port.DispatchRequest(
        supplier_ref=REF,
        ref="ord_18c2f0a1b2-1",
        product_code=product,
        business_type="mobile_airtime",
        account="13800138000",
        face_value=face_value,
        carrier="cmcc",
    )


def fuel(carrier: str | None = "sinopec", product: str = "fuel.sinopec.100") -> port.DispatchRequest:
    return port.DispatchRequest(
        supplier_ref=REF,
        ref="ord_18c2f0a1b2-1",
        product_code=product,
        business_type="fuel_card",
        account="1000111100000123456",
        face_value=10000,
        carrier=carrier,
    )


FUEL_PRODUCTS = {"fuel.sinopec.100": {"proid": "10001", "cardnum": "1"}}


class Recorder:
    """A MockTransport handler that records requests and answers one canned reply."""

    def __init__(self, reply: httpx.Response | Exception) -> None:
        self.reply = reply
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if isinstance(self.reply, Exception):
            raise self.reply
        return self.reply

    @property
    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.requests[-1].content.decode()))

    @property
    def params(self) -> dict[str, str]:
        return dict(self.requests[-1].url.params)


def offline() -> juhe.Juhe:
    """An adapter for the pure parts (config, callbacks): its client would refuse to send anything."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"unexpected request {request.url}")

    return juhe.create(httpx.AsyncClient(transport=httpx.MockTransport(refuse)), lambda: NOW)


def answer(data: Any = None, status: int = 200, content: bytes | None = None) -> httpx.Response:
    return httpx.Response(status, content=content if content is not None else orjson.dumps(data))


def accepted(state: str = "0", **extra: Any) -> dict[str, Any]:
    result = {"sporder_id": "J2024001", "game_state": state, "ordercash": "49.25", **extra}
    return {"reason": "订单提交成功，等待充值", "error_code": 0, "result": result}


async def run(reply: httpx.Response | Exception, call: Callable[[juhe.Juhe], Any]) -> tuple[Any, Recorder]:
    recorder = Recorder(reply)
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorder)) as http:
        outcome = await call(juhe.create(http, lambda: NOW))
    return outcome, recorder


# ---- dispatch: what is sent ----------------------------------------------------------------------


async def test_airtime_order_is_a_signed_form_with_the_face_value_in_yuan() -> None:
    outcome, sent = await run(answer(accepted()), lambda a: a.dispatch(channel(), airtime()))
    request = sent.requests[0]
    assert request.method == "POST"
    assert request.url.path == "/api/ofpay/mobile/onlineorder"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    # md5(openid + key + phoneno + cardnum + orderid)
    sign = md5("JHopenid42" + "k3y" + "13800138000" + "50" + "ord18c2f0a1b2A1")
    assert sent.form == {
        "phoneno": "13800138000",
        "cardnum": "50",
        "orderid": REF,
        "key": KEY,
        "sign": sign,
    }
    assert outcome.kind == "accepted"


@pytest.mark.parametrize(("face_value", "cardnum"), [(4990, "49.9"), (1, "0.01"), (30000, "300")])
async def test_airtime_cardnum_defaults_to_exact_yuan(face_value: int, cardnum: str) -> None:
    _, sent = await run(answer(accepted()), lambda a: a.dispatch(channel(), airtime(face_value)))
    assert sent.form["cardnum"] == cardnum
    assert sent.form["sign"] == md5(f"JHopenid42k3y13800138000{cardnum}ord18c2f0a1b2A1")


async def test_airtime_cardnum_comes_from_the_products_entry() -> None:
    products = {"airtime.50": {"cardnum": "30"}}
    _, sent = await run(answer(accepted()), lambda a: a.dispatch(channel(products), airtime()))
    assert sent.form["cardnum"] == "30"
    assert sent.form["sign"] == md5("JHopenid42k3y1380013800030ord18c2f0a1b2A1")


@pytest.mark.parametrize(
    ("carrier", "entry", "charge_type"),
    [
        ("sinopec", {}, "1"),
        ("petrochina", {}, "2"),
        ("sinopec", {"chargeType": 2}, "2"),
        (None, {"chargeType": 1}, "1"),
    ],
)
async def test_fuel_order_is_signed_over_proid_cardnum_card_and_orderid(
    carrier: str | None, entry: dict[str, Any], charge_type: str
) -> None:
    products = {"fuel.sinopec.100": {"proid": "10001", "cardnum": "1", **entry}}
    _, sent = await run(answer(accepted()), lambda a: a.dispatch(channel(products), fuel(carrier)))
    assert sent.requests[0].url.path == "/api/ofpay/sinopec/onlineorder"
    # md5(openid + key + proid + cardnum + game_userid + orderid)
    sign = md5("JHopenid42" + "k3y" + "10001" + "1" + "1000111100000123456" + "ord18c2f0a1b2A1")
    assert sent.form == {
        "proid": "10001",
        "cardnum": "1",
        "orderid": REF,
        "game_userid": "1000111100000123456",
        "chargeType": charge_type,
        "key": KEY,
        "sign": sign,
    }


async def test_fuel_order_without_an_issuer_is_rejected_unsent() -> None:
    outcome, sent = await run(answer(accepted()), lambda a: a.dispatch(channel(FUEL_PRODUCTS), fuel(None)))
    assert (outcome.kind, outcome.code) == ("rejected", "unsupported_issuer")
    assert sent.requests == []


@pytest.mark.parametrize(
    "req",
    [
        fuel(product="fuel.petrochina.100"),  # no products entry
        port.DispatchRequest(REF, "o-1", "member.iqiyi.month", "membership", "13800138000", 2500, "iqiyi"),
    ],
)
async def test_unserved_products_are_rejected_unsent(req: port.DispatchRequest) -> None:
    outcome, sent = await run(answer(accepted()), lambda a: a.dispatch(channel(FUEL_PRODUCTS), req))
    assert (outcome.kind, outcome.code) == ("rejected", "not_served")
    assert sent.requests == []


# ---- dispatch: every reply row -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "kind", "code"),
    [
        (answer(accepted("0")), "accepted", None),
        (answer(accepted("1")), "succeeded", None),
        (answer(accepted("9")), "rejected", "game_state_9"),
        (answer({**accepted("0"), "error_code": "0"}), "accepted", None),
        (answer(accepted("5")), "unknown", "unexpected_reply"),
        (answer({"reason": "ok", "error_code": 0, "result": None}), "unknown", "unexpected_reply"),
        (answer(accepted("0", uorderid="somebodyelse1")), "unknown", "ref_mismatch"),
        *(
            (answer({"reason": "no", "error_code": code, "result": None}), "rejected", str(code))
            for code in (10001, 10002, 10003, 10004, 10005, 10006, 10007, 10008, 10009, 10020, 10021)
        ),
        *(
            (answer({"reason": "?", "error_code": code, "result": None}), "unknown", str(code))
            for code in (10010, 10011, 10012, 10014, 10022, 208501, 208517, -1)
        ),
        (answer({"reason": "no", "error_code": "10001"}), "rejected", "10001"),
        (answer({"reason": "where is it"}), "unknown", "malformed_reply"),
        (answer({"reason": "odd", "error_code": True}), "unknown", "malformed_reply"),
        (answer(accepted(), status=500), "unknown", "http_500"),
        (answer(accepted(), status=404), "unknown", "http_404"),
        (answer(content=b"<html>busy</html>"), "unknown", "malformed_reply"),
        (answer([1, 2]), "unknown", "malformed_reply"),
        (httpx.ConnectError("refused"), "unknown", "connect_error"),
        (httpx.ReadTimeout("slow"), "unknown", "timeout"),
    ],
)
async def test_dispatch_reply_classification(reply: Any, kind: str, code: str | None) -> None:
    outcome, _ = await run(reply, lambda a: a.dispatch(channel(), airtime()))
    assert (outcome.kind, outcome.code) == (kind, code)


async def test_accepted_reply_carries_sporder_id_and_cost_in_fen() -> None:
    outcome, _ = await run(answer(accepted("0")), lambda a: a.dispatch(channel(), airtime()))
    assert outcome.supplier_order_id == "J2024001"
    assert outcome.cost == 4925
    assert outcome.http_status == 200 and "J2024001" in (outcome.raw or "")


async def test_rejected_error_code_keeps_the_reason() -> None:
    reply = answer({"reason": "错误的请求KEY", "error_code": 10001, "result": None})
    outcome, _ = await run(reply, lambda a: a.dispatch(channel(), airtime()))
    assert outcome.message == "错误的请求KEY"


# ---- query ---------------------------------------------------------------------------------------


def query_req(business_type: str = "mobile_airtime") -> port.QueryRequest:
    return port.QueryRequest(REF, "ord_18c2f0a1b2-1", "airtime.50", business_type)


def status_reply(state: str) -> httpx.Response:
    return answer(
        {"reason": "查询成功", "error_code": 0, "result": {"sporder_id": "J1", "game_state": state}}
    )


@pytest.mark.parametrize(
    ("business_type", "path"),
    [("mobile_airtime", "/api/ofpay/mobile/ordersta"), ("fuel_card", "/api/ofpay/sinopec/ordersta")],
)
async def test_query_endpoint_follows_the_business_type(business_type: str, path: str) -> None:
    _, sent = await run(status_reply("0"), lambda a: a.query(channel(), query_req(business_type)))
    assert sent.requests[0].method == "GET"
    assert sent.requests[0].url.path == path
    assert sent.params == {"key": KEY, "orderid": REF}


@pytest.mark.parametrize(
    ("reply", "status", "code"),
    [
        (status_reply("0"), "processing", None),
        (status_reply("1"), "success", None),
        (status_reply("9"), "failed", None),
        (status_reply("7"), "error", "unexpected_reply"),
        (answer({"error_code": 0, "result": None}), "error", "unexpected_reply"),
        (answer({"reason": "订单不存在", "error_code": 208516}), "not_found", "208516"),
        (answer({"reason": "x", "error_code": "208599"}), "not_found", "208599"),
        (answer({"reason": "x", "error_code": 208515}), "error", "208515"),
        (answer({"reason": "x", "error_code": 10001}), "error", "10001"),
        (answer({"reason": "x"}), "error", "malformed_reply"),
        (answer(content=b"not json"), "error", "malformed_reply"),
        (answer({}, status=502), "error", "http_502"),
        (httpx.ReadTimeout("slow"), "error", "timeout"),
    ],
)
async def test_query_mapping(reply: Any, status: str, code: str | None) -> None:
    options = {"not_found_codes": [208516, "208599"]}
    outcome, _ = await run(reply, lambda a: a.query(channel(options=options), query_req()))
    assert (outcome.status, outcome.code) == (status, code)


async def test_query_without_not_found_codes_treats_every_error_code_as_an_error() -> None:
    reply = answer({"reason": "订单不存在", "error_code": 208516})
    outcome, _ = await run(reply, lambda a: a.query(channel(), query_req()))
    assert outcome.status == "error"


async def test_query_success_carries_the_sporder_id() -> None:
    outcome, _ = await run(status_reply("1"), lambda a: a.query(channel(), query_req()))
    assert outcome.supplier_order_id == "J1"


# ---- balance -------------------------------------------------------------------------------------


async def test_balance_request_is_signed_over_openid_key_and_timestamp() -> None:
    reply = answer({"reason": "查询成功", "error_code": 0, "result": {"money": "1234.50"}})
    outcome, sent = await run(reply, lambda a: a.balance(channel()))
    assert sent.requests[0].method == "GET"
    assert sent.requests[0].url.path == "/api/ofpay/mobile/yue"
    assert sent.params == {"key": KEY, "timestamp": "1700000000", "sign": md5("JHopenid42k3y1700000000")}
    assert (outcome.ok, outcome.amount, outcome.currency) == (True, 123450, "CNY")


@pytest.mark.parametrize(
    ("reply", "ok", "amount", "code"),
    [
        (answer({"error_code": 0, "result": {"money": 12.5}}), True, 1250, None),
        (answer({"error_code": 0, "result": {"money": "0"}}), True, 0, None),
        (answer({"error_code": 0, "result": {"money": "1.234"}}), False, None, "malformed_reply"),
        (answer({"error_code": 0, "result": {"money": "lots"}}), False, None, "malformed_reply"),
        (answer({"error_code": 0, "result": None}), False, None, "malformed_reply"),
        (answer({"reason": "错误的请求KEY", "error_code": 10001}), False, None, "10001"),
        (answer({"reason": "?"}), False, None, "malformed_reply"),
        (answer(content=b"<html>"), False, None, "malformed_reply"),
        (answer({}, status=503), False, None, "http_503"),
        (httpx.ConnectError("refused"), False, None, "connect_error"),
    ],
)
async def test_balance_mapping(reply: Any, ok: bool, amount: int | None, code: str | None) -> None:
    outcome, _ = await run(reply, lambda a: a.balance(channel()))
    assert (outcome.ok, outcome.amount, outcome.code) == (ok, amount, code)


# ---- callbacks -----------------------------------------------------------------------------------


def callback_request(fields: Mapping[str, str] | bytes) -> port.CallbackRequest:
    body = fields if isinstance(fields, bytes) else urlencode(fields).encode()
    headers = {"content-type": "application/x-www-form-urlencoded"}
    return port.CallbackRequest("POST", "/callbacks/juhe/jh1", headers, body)


# md5("k3y" + "J2024001" + "ord18c2f0a1b2A1"), written out once as a literal.
CALLBACK_SIGN = "7cd19ec8a053cb560a0bf39196423a71"


def test_callback_sign_vector_is_md5_of_key_sporder_id_orderid() -> None:
    assert md5("k3yJ2024001ord18c2f0a1b2A1") == CALLBACK_SIGN


def parse(fields: Mapping[str, str] | bytes) -> port.CallbackData:
    adapter = offline()
    return adapter.parse_callback(channel(), callback_request(fields), NOW)


def test_success_callback_is_verified_and_mapped() -> None:
    data = parse({"sporder_id": "J2024001", "orderid": REF, "sta": "1", "sign": CALLBACK_SIGN})
    assert data == port.CallbackData(supplier_ref=REF, status="success", supplier_order_id="J2024001")


def test_failure_callback_carries_err_msg() -> None:
    fields = {
        "sporder_id": "J2024001",
        "orderid": REF,
        "sta": "9",
        "err_msg": "充值失败",
        "sign": CALLBACK_SIGN,
    }
    data = parse(fields)
    assert (data.status, data.code, data.message) == ("failed", "sta_9", "充值失败")


def test_upper_case_sign_is_accepted() -> None:
    data = parse({"sporder_id": "J2024001", "orderid": REF, "sta": "1", "sign": CALLBACK_SIGN.upper()})
    assert data.status == "success"


@pytest.mark.parametrize(
    "fields",
    [
        {"sporder_id": "J2024001", "orderid": REF, "sta": "1", "sign": md5("wrongJ2024001" + REF)},
        {"sporder_id": "J2024001", "orderid": "ord18c2f0a1b2A2", "sta": "1", "sign": CALLBACK_SIGN},
        {"sporder_id": "J2024001", "orderid": REF, "sta": "1"},
        {"sporder_id": "J2024001", "orderid": REF, "sta": "1", "sign": "签名"},
    ],
)
def test_forged_callbacks_are_unauthorized(fields: dict[str, str]) -> None:
    with pytest.raises(port.CallbackRefused) as refused:
        parse(fields)
    assert refused.value.kind == "unauthorized"


@pytest.mark.parametrize(
    "fields",
    [
        {"sporder_id": "J2024001", "orderid": REF, "sta": "0", "sign": CALLBACK_SIGN},
        {"sporder_id": "J2024001", "orderid": REF, "sta": "success", "sign": CALLBACK_SIGN},
        {"sporder_id": "J2024001", "orderid": REF, "sign": CALLBACK_SIGN},
        {"orderid": REF, "sta": "1", "sign": CALLBACK_SIGN},
        {"sporder_id": "J2024001", "sta": "1", "sign": CALLBACK_SIGN},
        b"",
        b"\xff\xfe not utf-8",
        b'{"sporder_id": "J2024001"}',
        b"sta=1&sta=9&sporder_id=J2024001&orderid=" + REF.encode() + b"&sign=" + CALLBACK_SIGN.encode(),
    ],
)
def test_malformed_callbacks_are_refused(fields: dict[str, str] | bytes) -> None:
    with pytest.raises(port.CallbackRefused) as refused:
        parse(fields)
    assert refused.value.kind == "malformed"


def test_ack_is_the_text_success() -> None:
    adapter = offline()
    ack = adapter.ack(port.CallbackData(REF, "success"))
    assert (ack.status_code, ack.body, ack.media_type) == (200, b"success", "text/plain")


# ---- configuration -------------------------------------------------------------------------------


def validate(
    credentials: Mapping[str, Any] | None = None,
    products: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, Any]]:
    adapter = offline()
    creds = {"openid": OPENID, "key": KEY} if credentials is None else credentials
    return adapter.validate(creds, products or {}, options or {})


def test_validate_normalises() -> None:
    creds, products, options = validate(
        {"openid": f" {OPENID} ", "key": KEY},
        {
            "airtime.50": {"cardnum": "50.00", "price": 4950, "note": "kept"},
            "airtime.10": {},
            "fuel.petrochina.100": {"proid": 10008, "cardnum": 100, "chargeType": "2"},
        },
        {"not_found_codes": [208516, "208599"], "min_balance": 10000},
    )
    assert creds == {"openid": OPENID, "key": KEY}
    assert products == {
        "airtime.50": {"cardnum": "50", "price": 4950, "note": "kept"},
        "airtime.10": {},
        "fuel.petrochina.100": {"proid": "10008", "cardnum": "100", "chargeType": 2},
    }
    assert options == {"not_found_codes": ["208516", "208599"], "min_balance": 10000}


@pytest.mark.parametrize(
    ("credentials", "products", "options", "field"),
    [
        ({"key": KEY}, {}, {}, "credentials.openid"),
        ({"openid": OPENID}, {}, {}, "credentials.key"),
        ({"openid": OPENID, "key": "  "}, {}, {}, "credentials.key"),
        ({"openid": OPENID, "key": 123}, {}, {}, "credentials.key"),
        ({"openid": OPENID, "key": KEY, "secret": "x"}, {}, {}, "credentials"),
        (None, {"airtime.50": "50"}, {}, "products.airtime.50"),
        (None, {"airtime.50": {"cardNum": "50"}}, {}, "products.airtime.50.cardNum"),
        (None, {"fuel.sinopec.100": {"pro_id": "1", "cardnum": 1}}, {}, "products.fuel.sinopec.100.pro_id"),
        (
            None,
            {"fuel.sinopec.100": {"proid": "1", "cardnum": 1, "charge_type": 1}},
            {},
            "products.fuel.sinopec.100.charge_type",
        ),
        (None, {"airtime.50": {"cardnum": "fifty"}}, {}, "products.airtime.50.cardnum"),
        (None, {"airtime.50": {"cardnum": 0}}, {}, "products.airtime.50.cardnum"),
        (None, {"airtime.50": {"cardnum": "1.005"}}, {}, "products.airtime.50.cardnum"),
        (None, {"fuel.sinopec.100": {"proid": "10001"}}, {}, "products.fuel.sinopec.100.cardnum"),
        (None, {"fuel.sinopec.100": {"proid": "", "cardnum": 1}}, {}, "products.fuel.sinopec.100.proid"),
        (None, {"fuel.sinopec.100": {"proid": True, "cardnum": 1}}, {}, "products.fuel.sinopec.100.proid"),
        (None, {"airtime.50": {"chargeType": 1}}, {}, "products.airtime.50.chargeType"),
        (
            None,
            {"fuel.sinopec.100": {"proid": "1", "cardnum": 1, "chargeType": 3}},
            {},
            "products.fuel.sinopec.100.chargeType",
        ),
        (None, {"airtime.50": {"price": -1}}, {}, "products.airtime.50.price"),
        (None, {}, {"not_found_code": 1}, "options.not_found_code"),
        (None, {}, {"notFoundCodes": [1]}, "options.notFoundCodes"),
        (None, {}, {"not_found_codes": [True]}, "options.not_found_codes"),
        (None, {}, {"not_found_codes": [{"a": 1}]}, "options.not_found_codes"),
    ],
)
def test_validate_names_the_bad_field(
    credentials: Mapping[str, Any] | None, products: dict[str, Any], options: dict[str, Any], field: str
) -> None:
    with pytest.raises(port.InvalidChannelConfig) as error:
        validate(credentials, products, options)
    assert error.value.field == field


@pytest.mark.parametrize(
    ("product", "business_type", "served"),
    [
        ("airtime.50", "mobile_airtime", True),  # no entry: cardnum defaults to the face value
        ("airtime.100", "mobile_airtime", True),
        ("fuel.sinopec.100", "fuel_card", True),
        ("fuel.petrochina.100", "fuel_card", False),  # fuel cards need an entry
        ("data.cmcc.1g", "mobile_data", False),
        ("member.iqiyi.month", "membership", False),
    ],
)
def test_serves(product: str, business_type: str, served: bool) -> None:
    adapter = offline()
    products = {**FUEL_PRODUCTS, "airtime.100": {"cardnum": "100"}}
    assert adapter.serves(channel(products), product, business_type) is served


@pytest.mark.parametrize(
    "order_id", ["ord_18c2f0a1b2c3d4e5f6a7b8c", "ord_1", "x", "ord_" + "f" * 60, "订单-42"]
)
def test_supplier_ref_is_8_to_32_letters_and_digits(order_id: str) -> None:
    adapter = offline()
    refs = {adapter.supplier_ref(order_id, n) for n in (1, 2, 12)}
    assert len(refs) == 3
    assert all(re.fullmatch(r"[A-Za-z0-9]{8,32}", ref) for ref in refs)
    assert adapter.supplier_ref(order_id, 1) == adapter.supplier_ref(order_id, 1)


def test_supplier_ref_of_a_platform_id_is_its_compact_form() -> None:
    adapter = offline()
    assert adapter.supplier_ref("ord_18c2f0a1b2c3d4e5f6a7b8c", 2) == "ord18c2f0a1b2c3d4e5f6a7b8cA2"


def test_adapter_describes_itself() -> None:
    adapter = offline()
    assert (juhe.NAME, adapter.name, adapter.has_callbacks, adapter.has_balance) == (
        "juhe",
        "juhe",
        True,
        True,
    )
    assert set(adapter.secret_fields) == {"openid", "key"}
    assert adapter.option_fields == ("not_found_codes",)


def test_callback_tolerates_a_trailing_separator_and_clips_long_messages() -> None:
    body = urlencode(
        {"sporder_id": "J2024001", "orderid": REF, "sta": "9", "err_msg": "x" * 900, "sign": CALLBACK_SIGN}
    )
    data = parse((body + "&").encode())
    assert data.status == "failed" and data.message == "x" * 500


async def test_an_unusable_base_url_is_an_unknown_outcome_not_an_exception() -> None:
    bad = port.ChannelAccess(
        "jh1", "juhe", "http://host:notaport", {"openid": OPENID, "key": KEY}, {}, {}, 1.0, ""
    )
    outcome, sent = await run(answer(accepted()), lambda a: a.dispatch(bad, airtime()))
    assert outcome.kind == "unknown" and sent.requests == []
    status, _ = await run(answer(accepted()), lambda a: a.query(bad, query_req()))
    assert status.status == "error"
    balance, _ = await run(answer(accepted()), lambda a: a.balance(bad))
    assert not balance.ok
