"""The `fulu` protocol against vectors written by hand from SPEC section 6 and httpx.MockTransport.

Fulu's signature: the compact JSON text without `sign`, its characters sorted by code point, `app_secret`
appended, lower-case hex MD5. Every expected signature below is computed here with `sorted` + hashlib over a
literal text, never with the code under test.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any, cast

import httpx
import pytest

from topup.adapters.suppliers.protocols import fulu
from topup.adapters.suppliers.registry import protocol_names
from topup.domain import suppliers as port

NOW = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC = 2023-11-15 06:13:20 in China
APP_KEY = "key-1"
SECRET = "s3cret"
BASE = "https://openapi.fulu.test/api/getway"
REF = "ordabcA1"


def md5_sorted(text: str, secret: str = SECRET) -> str:
    """The hand rule: sort the characters, append the secret, MD5 the UTF-8 bytes."""
    return hashlib.md5(("".join(sorted(text)) + secret).encode("utf-8")).hexdigest()


def channel(
    products: Mapping[str, Mapping[str, Any]] | None = None, options: Mapping[str, Any] | None = None
) -> port.ChannelAccess:
    return port.ChannelAccess(
        code="fl1",
        protocol="fulu",
        base_url=BASE,
        credentials={"app_key": APP_KEY, "app_secret": SECRET},
        products=products if products is not None else {"cmcc.50": {}, "vip.month": {"product_id": 10000497}},
        options=options if options is not None else {"reject_codes": ["3001"], "not_found_codes": ["2001"]},
        timeout_s=1.0,
        callback_url="https://platform.test/callbacks/fulu/fl1",
    )


def airtime(face_value: int = 5000, product_code: str = "cmcc.50") -> port.DispatchRequest:
    return port.DispatchRequest(
        REF, "ord_abc-1", product_code, "mobile_airtime", "13800138000", face_value, "cmcc"
    )


def membership() -> port.DispatchRequest:
    return port.DispatchRequest(REF, "ord_abc-1", "vip.month", "membership", "user@qq.com", 1500)


def query_req() -> port.QueryRequest:
    return port.QueryRequest(REF, "ord_abc-1", "cmcc.50", "mobile_airtime")


def signed_reply(code: Any, result: str, message: str = "接口调用成功", sign: str | None = None) -> bytes:
    body = {
        "code": code,
        "message": message,
        "result": result,
        "sign": md5_sorted(result) if sign is None else sign,
    }
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


class Recorder:
    """A MockTransport handler answering a fixed reply and keeping the requests."""

    def __init__(self, content: bytes = b"", status: int = 200, error: Exception | None = None) -> None:
        self.content, self.status, self.error = content, status, error
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        return httpx.Response(self.status, content=self.content)

    @property
    def body(self) -> dict[str, Any]:
        return json.loads(self.requests[-1].content)  # type: ignore[no-any-return]


async def run(handler: Recorder, call: Callable[[fulu.Fulu], Any]) -> Any:
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        return await call(fulu.create(http, lambda: NOW))


# ---- the signature, by hand ----------------------------------------------------------------------


def test_sign_rule_on_a_tiny_vector_with_sorted_characters_written_out() -> None:
    text = '{"a":"中/b"}'
    assert "".join(sorted(text)) == '""""/:ab{}中'  # '"' < '/' < ':' < 'a' < 'b' < '{' < '}' < U+4E2D
    expected = hashlib.md5('""""/:ab{}中s3cret'.encode()).hexdigest()
    assert expected == "85a801f9d26b864c9ecdaea222d2d99c"
    assert fulu.fulu_sign(text, SECRET) == expected
    assert fulu.sign_object({"a": "中/b", "sign": "ignored"}, SECRET) == expected


def test_json_text_is_compact_with_unicode_and_slash_unescaped_and_decimals_as_written() -> None:
    from decimal import Decimal

    value = {"d": "充值/成功", "p": Decimal("46.3000"), "n": 1, "e": "", "l": [True, None]}
    assert fulu.json_text(value) == '{"d":"充值/成功","p":46.3000,"n":1,"e":"","l":[true,null]}'


def test_china_time() -> None:
    assert fulu.china_time(NOW) == "2023-11-15 06:13:20"
    assert fulu.china_time(1_704_038_400) == "2024-01-01 00:00:00"  # 2023-12-31 16:00 UTC


# ---- dispatch: what is sent ----------------------------------------------------------------------


AIRTIME_TEXT = (
    r'{"app_key":"key-1","method":"fulu.order.mobile.add","timestamp":"2023-11-15 06:13:20",'
    r'"version":"2.0","format":"json","charset":"utf-8","sign_type":"md5","app_auth_token":"",'
    r'"biz_content":"{\"charge_phone\":\"13800138000\",\"charge_value\":50,\"customer_order_no\":\"ordabcA1\"}"}'
)


async def test_airtime_order_envelope_matches_the_hand_vector() -> None:
    handler = Recorder(signed_reply(0, '{"order_id":"19072426795315681646"}'))
    await run(handler, lambda a: a.dispatch(channel(), airtime()))
    (request,) = handler.requests
    assert request.method == "POST" and str(request.url) == BASE
    assert request.headers["content-type"].startswith("application/json")
    body = handler.body
    assert body["sign"] == md5_sorted(AIRTIME_TEXT) == "53206d7eab1a90c22f2a3394bdf0b8c2"
    unsigned = {k: v for k, v in body.items() if k != "sign"}
    assert json.dumps(unsigned, ensure_ascii=False, separators=(",", ":")) == AIRTIME_TEXT


async def test_membership_order_uses_direct_add_with_product_id() -> None:
    handler = Recorder(signed_reply(0, '{"order_id":"1"}'))
    await run(handler, lambda a: a.dispatch(channel(), membership()))
    body = handler.body
    assert body["method"] == "fulu.order.direct.add"
    biz = '{"product_id":10000497,"customer_order_no":"ordabcA1","charge_account":"user@qq.com","buy_num":1}'
    assert body["biz_content"] == biz
    text = json.dumps(
        {k: v for k, v in body.items() if k != "sign"}, ensure_ascii=False, separators=(",", ":")
    )
    assert body["sign"] == md5_sorted(text)


@pytest.mark.parametrize(
    ("face_value", "entry", "sent"),
    [(4990, {}, "49.9"), (1, {}, "0.01"), (10000, {}, "100"), (5000, {"charge_value": "49.5"}, "49.5")],
)
async def test_charge_value_is_plain_yuan(face_value: int, entry: dict[str, Any], sent: str) -> None:
    handler = Recorder(signed_reply(0, '{"order_id":"1"}'))
    await run(handler, lambda a: a.dispatch(channel({"cmcc.50": entry}), airtime(face_value)))
    assert f'"charge_value":{sent},' in handler.body["biz_content"]


async def test_balance_and_query_envelopes() -> None:
    handler = Recorder(signed_reply(0, '{"balance":1}'))
    await run(handler, lambda a: a.balance(channel()))
    assert handler.body["method"] == "fulu.user.info.get" and handler.body["biz_content"] == "{}"
    await run(handler, lambda a: a.query(channel(), query_req()))
    assert handler.body["method"] == "fulu.order.info.get"
    assert handler.body["biz_content"] == '{"customer_order_no":"ordabcA1"}'


# ---- dispatch: every reply row --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "status", "kind", "code"),
    [
        (signed_reply(0, '{"order_id":"19072426795315681646"}'), 200, "accepted", None),
        (signed_reply("0", '{"order_id":"7"}'), 200, "accepted", None),
        (signed_reply(3001, "", "商品不可用"), 200, "rejected", "3001"),
        (signed_reply(4001, "", "余额不足"), 200, "rejected", "insufficient_balance"),
        (signed_reply(1002, "", "签名验证失败"), 200, "unknown", "1002"),
        (signed_reply(9999, ""), 200, "unknown", "9999"),
        (signed_reply(0, '{"order_id":"1"}', sign="0" * 32), 200, "unknown", "bad_signature"),
        (signed_reply(3001, "", sign="0" * 32), 200, "unknown", "bad_signature"),
        (b"<html>502 bad gateway</html>", 200, "unknown", "malformed_reply"),
        (b'{"message":"no code"}', 200, "unknown", "malformed_reply"),
        (signed_reply(0, '{"order_id":"1"}'), 502, "unknown", "http_502"),
    ],
)
async def test_dispatch_reply_rows(content: bytes, status: int, kind: str, code: str | None) -> None:
    options = {"reject_codes": [3001], "insufficient_codes": ["4001"]}
    outcome = await run(Recorder(content, status), lambda a: a.dispatch(channel(options=options), airtime()))
    assert (outcome.kind, outcome.code) == (kind, code)
    assert outcome.http_status == status and outcome.raw


async def test_accepted_reply_carries_order_id_and_unsigned_reply_is_read() -> None:
    body = b'{"code":0,"message":"ok","result":"{\\"order_id\\":\\"42\\"}","sign":""}'
    outcome = await run(Recorder(body), lambda a: a.dispatch(channel(), airtime()))
    assert outcome.kind == "accepted" and outcome.supplier_order_id == "42"


async def test_rejection_keeps_fulu_message_and_insufficiency_keeps_fulu_code() -> None:
    options = {"reject_codes": ["3001"], "insufficient_codes": [4001]}
    rejected = await run(
        Recorder(signed_reply(3001, "", "商品不可用")),
        lambda a: a.dispatch(channel(options=options), airtime()),
    )
    assert rejected.message == "商品不可用"
    short = await run(
        Recorder(signed_reply(4001, "", "余额不足")),
        lambda a: a.dispatch(channel(options=options), airtime()),
    )
    assert short.code == "insufficient_balance" and short.message == "4001: 余额不足"


@pytest.mark.parametrize(
    ("error", "code"),
    [(httpx.ConnectError("refused"), "connect_error"), (httpx.ReadTimeout("slow"), "timeout")],
)
async def test_no_reply_is_unknown(error: Exception, code: str) -> None:
    outcome = await run(Recorder(error=error), lambda a: a.dispatch(channel(), airtime()))
    assert (outcome.kind, outcome.code) == ("unknown", code)


async def test_unserved_product_is_rejected_without_sending() -> None:
    handler = Recorder()
    outcome = await run(handler, lambda a: a.dispatch(channel({"vip.month": {}}), membership()))
    assert (outcome.kind, outcome.code) == ("rejected", "not_served") and handler.requests == []


# ---- query and balance -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "status"),
    [
        ('{"order_id":"9","customer_order_no":"ordabcA1","order_status":"success"}', "success"),
        ('{"order_id":"9","customer_order_no":"ordabcA1","order_status":"failed"}', "failed"),
        ('{"order_id":"9","customer_order_no":"ordabcA1","order_status":"processing"}', "processing"),
        ('{"order_id":"9","customer_order_no":"ordabcA1","order_status":"untreated"}', "processing"),
        ('{"order_id":"9","customer_order_no":"ordabcA1","order_state":"success"}', "success"),
        ('{"order_id":"9","customer_order_no":"ordabcA1","order_state":"untreated"}', "processing"),
    ],
)
async def test_query_maps_order_status(result: str, status: str) -> None:
    outcome = await run(Recorder(signed_reply(0, result)), lambda a: a.query(channel(), query_req()))
    assert outcome.status == status and outcome.supplier_order_id == "9"


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (signed_reply(2001, "", "订单不存在"), "not_found", "2001"),
        (signed_reply(1000, "", "参数错误"), "error", "1000"),
        (signed_reply(0, '{"customer_order_no":"other","order_status":"success"}'), "error", "ref_mismatch"),
        (signed_reply(0, '{"order_status":"refunding"}'), "error", "unexpected_reply"),
        (signed_reply(0, "not json"), "error", "malformed_reply"),
        (signed_reply(0, '{"order_status":"success"}', sign="f" * 32), "error", "bad_signature"),
        (b"garbage", "error", "malformed_reply"),
    ],
)
async def test_query_error_rows(content: bytes, status: str, code: str) -> None:
    outcome = await run(Recorder(content), lambda a: a.query(channel(), query_req()))
    assert (outcome.status, outcome.code) == (status, code)


async def test_query_http_error_and_timeout() -> None:
    outcome = await run(Recorder(b"", 503), lambda a: a.query(channel(), query_req()))
    assert (outcome.status, outcome.code) == ("error", "http_503")
    outcome = await run(Recorder(error=httpx.ReadTimeout("slow")), lambda a: a.query(channel(), query_req()))
    assert (outcome.status, outcome.code) == ("error", "timeout")


@pytest.mark.parametrize(
    ("result", "amount"),
    [
        ('{"name":"x","balance":1234.56,"is_open":1}', 123456),
        ('{"balance":"0.5"}', 50),
        ('{"balance":7}', 700),
    ],
)
async def test_balance_in_yuan_becomes_fen(result: str, amount: int) -> None:
    outcome = await run(Recorder(signed_reply(0, result)), lambda a: a.balance(channel()))
    assert (outcome.ok, outcome.amount, outcome.currency) == (True, amount, "CNY")


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (signed_reply(1001, "", "app_key不存在"), "1001"),
        (signed_reply(0, '{"balance":1.234}'), "malformed_reply"),
        (signed_reply(0, '{"name":"x"}'), "malformed_reply"),
        (signed_reply(0, '{"balance":1}', sign="a" * 32), "bad_signature"),
    ],
)
async def test_balance_failures(content: bytes, code: str) -> None:
    outcome = await run(Recorder(content), lambda a: a.balance(channel()))
    assert (outcome.ok, outcome.code) == (False, code)


# ---- callbacks -------------------------------------------------------------------------------------

CALLBACK_TEXT = (
    '{"order_id":"22113024595794711936","charge_finish_time":"2022-11-30 20:14:15",'
    '"customer_order_no":"ordabcA1","order_status":"success","recharge_description":"充值成功",'
    '"product_id":"18221081","price":"46.3000","buy_num":"1","operator_serial_number":"asix1101"}'
)


def callback_request(body: str | bytes) -> port.CallbackRequest:
    raw = body.encode("utf-8") if isinstance(body, str) else body
    return port.CallbackRequest("POST", "/callbacks/fulu/fl1", {"content-type": "application/json"}, raw)


def with_sign(text: str, sign: str) -> str:
    return text[:-1] + f',"sign":"{sign}"}}'


def adapter() -> fulu.Fulu:
    """An adapter for the pure parts (no HTTP client is ever touched)."""
    return fulu.create(cast(httpx.AsyncClient, None), lambda: NOW)


def parse(body: str | bytes) -> port.CallbackData:
    return adapter().parse_callback(channel(), callback_request(body), NOW)


def test_callback_signed_by_hand_is_accepted() -> None:
    data = parse(with_sign(CALLBACK_TEXT, md5_sorted(CALLBACK_TEXT)))
    assert data == port.CallbackData(REF, "success", "22113024595794711936", None, "充值成功")


def test_callback_verifies_whatever_its_escaping_and_spacing() -> None:
    # Fulu signs the compact, unescaped text; a body sent pretty-printed with \\u escapes still verifies.
    sign = md5_sorted(CALLBACK_TEXT)
    pretty = json.dumps({**json.loads(CALLBACK_TEXT), "sign": sign}, indent=2, ensure_ascii=True)
    assert "\\u5145" in pretty
    assert parse(pretty).status == "success"


def test_callback_with_a_numeric_price_signs_the_number_as_written() -> None:
    text = CALLBACK_TEXT.replace('"price":"46.3000"', '"price":46.3000').replace('"success"', '"failed"')
    data = parse(with_sign(text, md5_sorted(text)))
    assert data.status == "failed"


@pytest.mark.parametrize(
    "body",
    [
        with_sign(CALLBACK_TEXT, md5_sorted(CALLBACK_TEXT, "another-secret")),
        with_sign(CALLBACK_TEXT.replace("success", "failed"), md5_sorted(CALLBACK_TEXT)),
        CALLBACK_TEXT,
        with_sign(CALLBACK_TEXT, ""),
    ],
    ids=["wrong-secret", "tampered", "unsigned", "empty-sign"],
)
def test_forged_callback_is_unauthorized(body: str) -> None:
    with pytest.raises(port.CallbackRefused) as refused:
        parse(body)
    assert refused.value.kind == "unauthorized"


@pytest.mark.parametrize(
    "text",
    [
        CALLBACK_TEXT.replace('"order_status":"success"', '"order_status":"processing"'),
        CALLBACK_TEXT.replace('"customer_order_no":"ordabcA1",', ""),
        CALLBACK_TEXT.replace('"order_id":"22113024595794711936"', '"order_id":["x"]'),
    ],
)
def test_signed_but_malformed_callback(text: str) -> None:
    with pytest.raises(port.CallbackRefused) as refused:
        parse(with_sign(text, md5_sorted(text)))
    assert refused.value.kind == "malformed"


@pytest.mark.parametrize("body", [b"order_id=1&sign=x", b"[1,2]", b"\xff\xfe", b"[" * 100_000])
def test_unparseable_callback_is_malformed(body: bytes) -> None:
    with pytest.raises(port.CallbackRefused) as refused:
        parse(body)
    assert refused.value.kind == "malformed"


def test_ack_is_the_text_success() -> None:
    ack = adapter().ack(port.CallbackData(REF, "success"))
    assert (ack.status_code, ack.body, ack.media_type) == (200, b"success", "text/plain")
    assert adapter().ack(port.CallbackData(REF, "failed"), "repeat").body == b"success"


# ---- configuration ---------------------------------------------------------------------------------


def test_validate_normalises() -> None:
    creds, products, options = adapter().validate(
        {"app_key": " key-1 ", "app_secret": SECRET},
        {
            "cmcc.50": {},
            "cmcc.30": {"charge_value": "30.00", "price": 2990},
            "vip": {"product_id": "10000497"},
        },
        {"reject_codes": [3001, "3002"], "not_found_codes": 2001},
    )
    assert creds == {"app_key": "key-1", "app_secret": SECRET}
    assert products == {
        "cmcc.50": {},
        "cmcc.30": {"charge_value": "30", "price": 2990},
        "vip": {"product_id": 10000497},
    }
    assert options == {"reject_codes": ["3001", "3002"], "not_found_codes": ["2001"]}


CREDS = {"app_key": APP_KEY, "app_secret": SECRET}


@pytest.mark.parametrize(
    ("credentials", "products", "options", "field"),
    [
        ({"app_secret": SECRET}, {}, {}, "credentials.app_key"),
        ({"app_key": APP_KEY, "app_secret": ""}, {}, {}, "credentials.app_secret"),
        ({"app_key": APP_KEY, "app_secret": SECRET, "token": "x"}, {}, {}, "credentials"),
        (CREDS, {"vip": "10000497"}, {}, "products.vip"),
        (
            {"app_key": APP_KEY, "app_secret": SECRET},
            {"vip": {"product_id": "abc"}},
            {},
            "products.vip.product_id",
        ),
        (
            {"app_key": APP_KEY, "app_secret": SECRET},
            {"vip": {"product_id": True}},
            {},
            "products.vip.product_id",
        ),
        (
            {"app_key": APP_KEY, "app_secret": SECRET},
            {"vip": {"product_id": 0}},
            {},
            "products.vip.product_id",
        ),
        (
            {"app_key": APP_KEY, "app_secret": SECRET},
            {"c": {"charge_value": "4.999"}},
            {},
            "products.c.charge_value",
        ),
        (
            {"app_key": APP_KEY, "app_secret": SECRET},
            {"c": {"charge_value": 0}},
            {},
            "products.c.charge_value",
        ),
        (CREDS, {}, {"retry_codes": [1]}, "options"),
        (CREDS, {}, {"reject_codes": [None]}, "options.reject_codes"),
        (
            {"app_key": APP_KEY, "app_secret": SECRET},
            {},
            {"not_found_codes": {"a": 1}},
            "options.not_found_codes",
        ),
    ],
)
def test_validate_errors_name_the_field(
    credentials: dict[str, Any], products: dict[str, Any], options: dict[str, Any], field: str
) -> None:
    with pytest.raises(port.InvalidChannelConfig) as error:
        adapter().validate(credentials, products, options)
    assert error.value.field == field


@pytest.mark.parametrize(
    ("products", "product_code", "business_type", "served"),
    [
        ({"cmcc.50": {}}, "cmcc.50", "mobile_airtime", True),
        ({}, "cmcc.50", "mobile_airtime", False),
        ({"vip": {"product_id": 1}}, "vip", "membership", True),
        ({"vip": {}}, "vip", "membership", False),
        ({"fuel": {"product_id": 2}}, "fuel", "fuel_card", True),
        ({"cmcc.50": {}}, "other", "mobile_airtime", False),
    ],
)
def test_serves_needs_an_entry(
    products: dict[str, Any], product_code: str, business_type: str, served: bool
) -> None:
    assert adapter().serves(channel(products), product_code, business_type) is served


def test_supplier_ref_is_letters_and_digits_deterministic_and_unique() -> None:
    a = adapter()
    ref = a.supplier_ref("ord_18c2f0a1b2c3d4e5f6a7b8c", 2)
    assert ref == "ord18c2f0a1b2c3d4e5f6a7b8cA2"
    assert ref == a.supplier_ref("ord_18c2f0a1b2c3d4e5f6a7b8c", 2)
    assert ref != a.supplier_ref("ord_18c2f0a1b2c3d4e5f6a7b8c", 3)
    long = a.supplier_ref("ord_" + "f" * 60, 1)
    assert long.isalnum() and len(long) <= 32


def test_registry_finds_the_protocol() -> None:
    assert "fulu" in protocol_names()
    a = adapter()
    assert (a.has_callbacks, a.has_balance, a.secret_fields) == (True, True, ("app_secret",))
