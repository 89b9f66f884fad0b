"""The `reloadly` protocol against vectors written by hand from SPEC section 6, over `httpx.MockTransport`."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import httpx
import orjson
import pytest

from topup.adapters.suppliers.protocols import reloadly
from topup.adapters.suppliers.registry import protocol_names
from topup.clock import FakeClock
from topup.domain.suppliers import (
    CallbackRefused,
    CallbackRequest,
    ChannelAccess,
    DispatchRequest,
    InvalidChannelConfig,
    QueryRequest,
)

BASE_URL = "https://topups.example.test"
AUTH_URL = "https://auth.example.test"
WEBHOOK_SECRET = "whsec-test"
ACCEPT = "application/com.reloadly.topups-v1+json"
T0 = 1_700_000_000.0

Reply = httpx.Response | Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]


def make_channel(**changes: Any) -> ChannelAccess:
    channel = ChannelAccess(
        code="rl1",
        protocol="reloadly",
        base_url=BASE_URL + "/",
        credentials={
            "client_id": "cid",
            "client_secret": "csecret",
            "webhook_secret": WEBHOOK_SECRET,
            "auth_url": AUTH_URL,
        },
        products={"airtime.50": {"operatorId": 1234, "amount": 10.5}},
        options={},
        timeout_s=1.0,
        callback_url="https://platform.example.test/callbacks/reloadly/rl1",
    )
    return replace(channel, **changes)


def order(ref: str = "ord1A1", product_code: str = "airtime.50") -> DispatchRequest:
    return DispatchRequest(
        supplier_ref=ref,
        ref="ord_1-1",
        product_code=product_code,
        business_type="mobile_airtime",
        account="13800138000",
        face_value=5000,
        carrier="cmcc",
    )


def query(ref: str = "ord1A1") -> QueryRequest:
    return QueryRequest(
        supplier_ref=ref, ref="ord_1-1", product_code="airtime.50", business_type="mobile_airtime"
    )


def json_reply(status: int, data: Any) -> httpx.Response:
    return httpx.Response(status, content=orjson.dumps(data), headers={"Content-Type": "application/json"})


class FakeReloadly:
    """Reloadly's two hosts: the token endpoint issues `t1`, `t2`, ...; the API answers `api`."""

    def __init__(self) -> None:
        self.token_requests: list[httpx.Request] = []
        self.api_requests: list[httpx.Request] = []
        self.token_reply: Reply | None = None
        self.token_delay_s = 0.0
        self.expires_in: Any = 3600
        self.api: Reply = json_reply(200, {"transactionId": 1, "status": "SUCCESSFUL"})
        self.refused_tokens: set[str] = set()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.example.test" or request.url.path.endswith("/oauth/token"):
            self.token_requests.append(request)
            if self.token_delay_s:
                await asyncio.sleep(self.token_delay_s)
            if self.token_reply is not None:
                return await self._answer(self.token_reply, request)
            token = f"t{len(self.token_requests)}"
            return json_reply(
                200, {"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"}
            )
        self.api_requests.append(request)
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token in self.refused_tokens:
            return json_reply(401, {"errorCode": "TOKEN_EXPIRED", "message": "expired"})
        return await self._answer(self.api, request)

    @staticmethod
    async def _answer(reply: Reply, request: httpx.Request) -> httpx.Response:
        if isinstance(reply, httpx.Response):
            return reply
        result = reply(request)
        return await result if isinstance(result, Awaitable) else result


@pytest.fixture
def fake() -> FakeReloadly:
    return FakeReloadly()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def adapter(fake: FakeReloadly, clock: FakeClock) -> AsyncIterator[reloadly.Reloadly]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as client:
        yield reloadly.create(client, clock.now)


# ---- discovery, supplier_ref, serves -----------------------------------------------------------------


def test_the_registry_finds_the_protocol() -> None:
    assert "reloadly" in protocol_names()
    assert reloadly.NAME == "reloadly"


def test_supplier_ref_is_compact_deterministic_and_per_attempt(adapter: reloadly.Reloadly) -> None:
    ref = adapter.supplier_ref("ord_18c2f0a1b2c3d4e5f6a7b8c", 2)
    assert ref == "ord18c2f0a1b2c3d4e5f6a7b8cA2"
    assert adapter.supplier_ref("ord_18c2f0a1b2c3d4e5f6a7b8c", 2) == ref
    assert adapter.supplier_ref("ord_18c2f0a1b2c3d4e5f6a7b8c", 3) != ref
    long_ref = adapter.supplier_ref("ord_" + "f" * 60, 1)
    assert re.fullmatch(r"[A-Za-z0-9]{1,32}", long_ref)


@pytest.mark.parametrize(
    ("product_code", "business_type", "served"),
    [
        ("airtime.50", "mobile_airtime", True),
        ("airtime.50", "mobile_data", True),
        ("airtime.100", "mobile_airtime", False),  # no products entry: not a candidate
        ("airtime.50", "fuel_card", False),  # Reloadly tops up phone numbers only
        ("broken", "mobile_airtime", False),
    ],
)
def test_serves_needs_a_valid_products_entry(
    adapter: reloadly.Reloadly, product_code: str, business_type: str, served: bool
) -> None:
    channel = make_channel(
        products={"airtime.50": {"operatorId": 1234, "amount": 10}, "broken": {"amount": 10}}
    )
    assert adapter.serves(channel, product_code, business_type) is served


# ---- validate --------------------------------------------------------------------------------------

GOOD_CREDENTIALS = {"client_id": "cid", "client_secret": "csecret", "webhook_secret": "whsec"}


def test_validate_normalises_and_defaults(adapter: reloadly.Reloadly) -> None:
    products = {
        "airtime.50": {"operatorId": "173", "amount": "10.50", "countryCode": "cn", "price": 4900},
        "airtime.100": {"operatorId": 173, "amount": 20, "useLocalAmount": True},
    }
    creds, normalised, options = adapter.validate(GOOD_CREDENTIALS, products, {})
    assert creds == {**GOOD_CREDENTIALS, "auth_url": "https://auth.reloadly.com"}
    assert normalised["airtime.50"] == {
        "operatorId": 173,
        "amount": 10.5,
        "useLocalAmount": False,
        "countryCode": "CN",
        "price": 4900,  # other fields (SPEC section 8 costs) are kept
    }
    assert normalised["airtime.100"] == {
        "operatorId": 173,
        "amount": 20,
        "useLocalAmount": True,
        "countryCode": "CN",
    }
    assert isinstance(normalised["airtime.100"]["amount"], int)
    assert options == {}
    creds, _, _ = adapter.validate({**GOOD_CREDENTIALS, "auth_url": "http://127.0.0.1:9/sim/x/"}, {}, {})
    assert creds["auth_url"] == "http://127.0.0.1:9/sim/x"


@pytest.mark.parametrize(
    ("credentials", "field"),
    [
        ({"client_secret": "s", "webhook_secret": "w"}, "credentials.client_id"),
        ({"client_id": "c", "webhook_secret": "w"}, "credentials.client_secret"),
        ({"client_id": "c", "client_secret": "s"}, "credentials.webhook_secret"),
        ({**GOOD_CREDENTIALS, "client_id": ""}, "credentials.client_id"),
        ({**GOOD_CREDENTIALS, "client_secret": 12}, "credentials.client_secret"),
        ({**GOOD_CREDENTIALS, "auth_url": "ftp://auth"}, "credentials.auth_url"),
        ({**GOOD_CREDENTIALS, "auth_url": "not a url"}, "credentials.auth_url"),
        ({**GOOD_CREDENTIALS, "secret": "x"}, "credentials"),
    ],
)
def test_validate_refuses_bad_credentials(
    adapter: reloadly.Reloadly, credentials: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidChannelConfig) as caught:
        adapter.validate(credentials, {}, {})
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ("not an object", "products.p"),
        ({"amount": 10}, "products.p.operatorId"),
        ({"operatorId": True, "amount": 10}, "products.p.operatorId"),
        ({"operatorId": -3, "amount": 10}, "products.p.operatorId"),
        ({"operatorId": 1}, "products.p.amount"),
        ({"operatorId": 1, "amount": "ten"}, "products.p.amount"),
        ({"operatorId": 1, "amount": 0}, "products.p.amount"),
        ({"operatorId": 1, "amount": -5}, "products.p.amount"),
        ({"operatorId": 1, "amount": 1.234}, "products.p.amount"),
        ({"operatorId": 1, "amount": True}, "products.p.amount"),
        ({"operatorId": 1, "amount": 10, "useLocalAmount": "yes"}, "products.p.useLocalAmount"),
        ({"operatorId": 1, "amount": 10, "countryCode": "CHN"}, "products.p.countryCode"),
        ({"operatorId": 1, "amount": 10, "countryCode": 86}, "products.p.countryCode"),
        ({"operator_id": 1, "amount": 10}, "products.p.operator_id"),
        ({"operatorId": 1, "amount": 10, "countrycode": "CN"}, "products.p.countrycode"),
        ({"operatorId": 1, "Amount": 10}, "products.p.Amount"),
    ],
)
def test_validate_refuses_bad_products(adapter: reloadly.Reloadly, entry: Any, field: str) -> None:
    with pytest.raises(InvalidChannelConfig) as caught:
        adapter.validate(GOOD_CREDENTIALS, {"p": entry}, {})
    assert caught.value.field == field


def test_secret_fields_are_masked_ones(adapter: reloadly.Reloadly) -> None:
    assert set(adapter.secret_fields) == {"client_secret", "webhook_secret"}
    assert set(adapter.credential_fields) == {"client_id", "client_secret", "webhook_secret", "auth_url"}
    assert adapter.product_fields == ("operatorId", "amount", "useLocalAmount", "countryCode")
    assert (adapter.has_callbacks, adapter.has_balance) == (True, True)


# ---- the order on the wire ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "wire"),
    [(10.5, b"10.5"), (10, b"10"), ("10.00", b"10"), ("0.3", b"0.3"), ("49.90", b"49.9"), (1e3, b"1000")],
)
async def test_order_request_is_exactly_the_spec_body(
    adapter: reloadly.Reloadly, fake: FakeReloadly, amount: Any, wire: bytes
) -> None:
    channel = make_channel(products={"airtime.50": {"operatorId": 1234, "amount": amount}})
    await adapter.dispatch(channel, order())
    (sent,) = fake.api_requests
    assert sent.method == "POST"
    assert str(sent.url) == "https://topups.example.test/topups"
    assert sent.headers["authorization"] == "Bearer t1"
    assert sent.headers["accept"] == ACCEPT
    assert sent.headers["content-type"] == "application/json"
    assert sent.content == (
        b'{"operatorId":1234,"amount":' + wire + b',"useLocalAmount":false,"customIdentifier":"ord1A1",'
        b'"recipientPhone":{"countryCode":"CN","number":"13800138000"}}'
    )


async def test_order_carries_local_amount_and_country(adapter: reloadly.Reloadly, fake: FakeReloadly) -> None:
    products = {
        "airtime.50": {"operatorId": 7, "amount": 3168.4, "useLocalAmount": True, "countryCode": "hk"}
    }
    await adapter.dispatch(make_channel(products=products), order())
    assert orjson.loads(fake.api_requests[0].content) == {
        "operatorId": 7,
        "amount": 3168.4,
        "useLocalAmount": True,
        "customIdentifier": "ord1A1",
        "recipientPhone": {"countryCode": "HK", "number": "13800138000"},
    }


async def test_token_request_is_client_credentials_for_the_audience(
    adapter: reloadly.Reloadly, fake: FakeReloadly
) -> None:
    await adapter.dispatch(make_channel(), order())
    (sent,) = fake.token_requests
    assert sent.method == "POST"
    assert str(sent.url) == "https://auth.example.test/oauth/token"
    assert orjson.loads(sent.content) == {
        "client_id": "cid",
        "client_secret": "csecret",
        "grant_type": "client_credentials",
        "audience": "https://topups.example.test",
    }


async def test_auth_url_defaults_to_reloadly(adapter: reloadly.Reloadly, fake: FakeReloadly) -> None:
    channel = make_channel(credentials={"client_id": "c", "client_secret": "s", "webhook_secret": "w"})
    await adapter.dispatch(channel, order())
    assert str(fake.token_requests[0].url) == "https://auth.reloadly.com/oauth/token"


async def test_a_missing_product_entry_is_refused_without_a_request(
    adapter: reloadly.Reloadly, fake: FakeReloadly
) -> None:
    out = await adapter.dispatch(make_channel(), order(product_code="airtime.999"))
    assert out.kind == "rejected"
    assert out.code == "invalid_product"
    assert fake.token_requests == [] and fake.api_requests == []


# ---- dispatch reply classification (every row of the spec) ------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "kind", "code"),
    [
        (
            200,
            {"transactionId": 10670, "status": "SUCCESSFUL", "customIdentifier": "ord1A1"},
            "succeeded",
            None,
        ),
        (200, {"transactionId": 10671, "status": "PROCESSING"}, "accepted", None),
        (200, {"transactionId": 10672, "status": "FAILED"}, "failed", "FAILED"),
        (200, {"transactionId": 10673, "status": "REFUNDED"}, "failed", "REFUNDED"),
        (200, {"transactionId": 10674, "status": "PENDING"}, "unknown", "unexpected_reply"),
        (200, {"transactionId": 10675}, "unknown", "unexpected_reply"),
        (
            200,
            {"transactionId": 1, "status": "SUCCESSFUL", "customIdentifier": "other"},
            "unknown",
            "ref_mismatch",
        ),
        (200, [1, 2], "unknown", "malformed_reply"),
        (400, {"errorCode": "INVALID_PHONE_NUMBER", "message": "bad"}, "rejected", "INVALID_PHONE_NUMBER"),
        (400, {"errorCode": "INSUFFICIENT_BALANCE", "message": "low"}, "rejected", "INSUFFICIENT_BALANCE"),
        (403, {"errorCode": "FORBIDDEN_OPERATOR"}, "rejected", "FORBIDDEN_OPERATOR"),
        (404, {"errorCode": "OPERATOR_NOT_FOUND"}, "rejected", "OPERATOR_NOT_FOUND"),
        (422, {"errorCode": "INVALID_AMOUNT_FOR_OPERATOR"}, "rejected", "INVALID_AMOUNT_FOR_OPERATOR"),
        (400, {"errorCode": "CUSTOM_IDENTIFIER_ALREADY_USED"}, "unknown", "CUSTOM_IDENTIFIER_ALREADY_USED"),
        (422, {"errorCode": "CUSTOM_IDENTIFIER_ALREADY_USED"}, "unknown", "CUSTOM_IDENTIFIER_ALREADY_USED"),
        (400, {"message": "no code"}, "unknown", "http_400"),
        (404, {"timestamp": "x", "status": 404, "error": "Not Found"}, "unknown", "http_404"),
        (409, {"errorCode": "CONFLICT"}, "unknown", "http_409"),
        (429, {"errorCode": "TOO_MANY_REQUESTS"}, "unknown", "http_429"),
        (500, {"errorCode": "INTERNAL_ERROR"}, "unknown", "http_500"),
        (502, None, "unknown", "http_502"),
        (503, {"errorCode": "SERVICE_UNAVAILABLE"}, "unknown", "http_503"),
    ],
)
async def test_dispatch_reply_classification(
    adapter: reloadly.Reloadly, fake: FakeReloadly, status: int, body: Any, kind: str, code: str | None
) -> None:
    fake.api = json_reply(status, body) if body is not None else httpx.Response(status, text="<html>bad")
    out = await adapter.dispatch(make_channel(), order())
    assert (out.kind, out.code, out.http_status) == (kind, code, status)
    assert out.raw is not None


async def test_success_reply_names_the_transaction(adapter: reloadly.Reloadly, fake: FakeReloadly) -> None:
    fake.api = json_reply(200, {"transactionId": 10670, "status": "SUCCESSFUL"})
    out = await adapter.dispatch(make_channel(), order())
    assert (out.kind, out.supplier_order_id, out.cost) == ("succeeded", "10670", None)
    fake.api = json_reply(200, {"transactionId": 10671, "status": "PROCESSING"})
    assert (await adapter.dispatch(make_channel(), order("ord1A2"))).supplier_order_id == "10671"


@pytest.mark.parametrize(
    ("extra", "cost"),
    [
        ({"balanceInfo": {"cost": 49.5, "currencyCode": "CNY"}}, 4950),
        ({"balanceInfo": {"cost": 49.5, "currencyCode": "USD"}}, None),
        ({"requestedAmount": 50, "requestedAmountCurrencyCode": "CNY"}, 5000),
        (
            {
                "requestedAmount": 50,
                "requestedAmountCurrencyCode": "CNY",
                "discount": 0.35,
                "discountCurrencyCode": "CNY",
            },
            4965,
        ),
        ({"requestedAmount": 15, "requestedAmountCurrencyCode": "USD"}, None),
        ({"balanceInfo": {"cost": "abc", "currencyCode": "CNY"}}, None),
    ],
)
async def test_cost_is_taken_only_in_cny(
    adapter: reloadly.Reloadly, fake: FakeReloadly, extra: dict[str, Any], cost: int | None
) -> None:
    fake.api = json_reply(200, {"transactionId": 1, "status": "SUCCESSFUL", **extra})
    out = await adapter.dispatch(make_channel(), order())
    assert out.kind == "succeeded"
    assert out.cost == cost


async def test_a_reply_that_never_comes_is_unknown(adapter: reloadly.Reloadly, fake: FakeReloadly) -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return json_reply(200, {})

    fake.api = hang
    out = await adapter.dispatch(make_channel(timeout_s=0.05), order())
    assert (out.kind, out.code) == ("unknown", "timeout")

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    fake.api = refuse
    out = await adapter.dispatch(make_channel(), order("ord1A2"))
    assert (out.kind, out.code) == ("unknown", "connect_error")


async def test_the_whole_dispatch_is_bounded_by_timeout_s(
    adapter: reloadly.Reloadly, fake: FakeReloadly
) -> None:
    fake.token_delay_s = 0.04

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.04)
        return json_reply(200, {"transactionId": 1, "status": "SUCCESSFUL"})

    fake.api = slow
    out = await adapter.dispatch(make_channel(timeout_s=0.06), order())
    assert (out.kind, out.code) == ("unknown", "timeout")  # each step fits; both together do not


# ---- the token: cache, expiry, concurrency, 401 ------------------------------------------------------


async def test_one_token_serves_many_calls(adapter: reloadly.Reloadly, fake: FakeReloadly) -> None:
    channel = make_channel()
    await adapter.dispatch(channel, order("a1"))
    await adapter.query(channel, query("a1"))
    fake.api = json_reply(200, {"balance": 1, "currencyCode": "USD"})
    await adapter.balance(channel)
    assert len(fake.token_requests) == 1
    assert [r.headers["authorization"] for r in fake.api_requests] == ["Bearer t1"] * 3
    assert all(r.headers["accept"] == ACCEPT for r in fake.api_requests)


async def test_tokens_are_kept_per_client_and_audience(
    adapter: reloadly.Reloadly, fake: FakeReloadly
) -> None:
    await adapter.dispatch(make_channel(), order("a1"))
    await adapter.dispatch(make_channel(base_url="https://topups-sandbox.example.test"), order("a2"))
    other_client = {**make_channel().credentials, "client_id": "cid2"}
    await adapter.dispatch(make_channel(credentials=other_client), order("a3"))
    await adapter.dispatch(make_channel(code="rl2"), order("a4"))  # same account, same audience
    assert len(fake.token_requests) == 3


@pytest.mark.parametrize(("expires_in", "refresh_after"), [(3600, 3540.0), (100, 90.0), (20, 18.0)])
async def test_a_token_is_renewed_shortly_before_it_expires(
    adapter: reloadly.Reloadly, fake: FakeReloadly, clock: FakeClock, expires_in: int, refresh_after: float
) -> None:
    # The margin is 60 s or 10 % of the lifetime, whichever is smaller.
    fake.expires_in = expires_in
    channel = make_channel()
    await adapter.dispatch(channel, order("a1"))
    clock.advance(refresh_after - 0.5)
    await adapter.dispatch(channel, order("a2"))
    assert len(fake.token_requests) == 1
    clock.advance(0.5)
    await adapter.dispatch(channel, order("a3"))
    assert len(fake.token_requests) == 2
    assert fake.api_requests[-1].headers["authorization"] == "Bearer t2"


async def test_concurrent_dispatches_share_one_token_request(
    adapter: reloadly.Reloadly, fake: FakeReloadly
) -> None:
    fake.token_delay_s = 0.02
    channel = make_channel()
    outs = await asyncio.gather(*(adapter.dispatch(channel, order(f"c{i}")) for i in range(25)))
    assert [o.kind for o in outs] == ["succeeded"] * 25
    assert len(fake.token_requests) == 1
    assert adapter.tokens.requests == 1


async def test_a_401_refreshes_the_token_once_and_repeats_the_call(
    adapter: reloadly.Reloadly, fake: FakeReloadly
) -> None:
    channel = make_channel()
    await adapter.dispatch(channel, order("a1"))
    fake.refused_tokens.add("t1")  # the supplier revoked it before it was due to expire
    out = await adapter.dispatch(channel, order("a2"))
    assert out.kind == "succeeded"
    assert len(fake.token_requests) == 2
    assert [r.headers["authorization"] for r in fake.api_requests] == ["Bearer t1", "Bearer t1", "Bearer t2"]
    assert fake.api_requests[1].content == fake.api_requests[2].content


async def test_a_second_401_is_not_retried_again(adapter: reloadly.Reloadly, fake: FakeReloadly) -> None:
    fake.api = json_reply(401, {"errorCode": "INVALID_TOKEN"})
    out = await adapter.dispatch(make_channel(), order())
    assert (out.kind, out.code) == ("unknown", "http_401")
    assert len(fake.api_requests) == 2
    assert len(fake.token_requests) == 2
    out = await adapter.query(make_channel(), query())
    assert (out.status, out.code) == ("error", "http_401")
    fails = await adapter.balance(make_channel())
    assert (fails.ok, fails.code) == (False, "http_401")


async def test_concurrent_401s_share_one_refresh(adapter: reloadly.Reloadly, fake: FakeReloadly) -> None:
    channel = make_channel()
    await adapter.dispatch(channel, order("warm"))
    fake.refused_tokens.add("t1")
    fake.token_delay_s = 0.02
    outs = await asyncio.gather(*(adapter.dispatch(channel, order(f"c{i}")) for i in range(10)))
    assert [o.kind for o in outs] == ["succeeded"] * 10
    assert len(fake.token_requests) == 2


@pytest.mark.parametrize(
    "token_reply",
    [
        json_reply(401, {"errorCode": "INVALID_CREDENTIALS", "message": "Access Denied"}),
        json_reply(500, {"message": "boom"}),
        json_reply(200, {"token_type": "Bearer"}),
        httpx.Response(200, text="<html>"),
    ],
)
async def test_a_failed_token_request_leaves_every_call_undecided(
    adapter: reloadly.Reloadly, fake: FakeReloadly, token_reply: httpx.Response
) -> None:
    fake.token_reply = token_reply
    channel = make_channel()
    out = await adapter.dispatch(channel, order())
    assert (out.kind, out.code) == ("unknown", "token_error")
    assert fake.api_requests == []
    q = await adapter.query(channel, query())
    assert (q.status, q.code) == ("error", "token_error")
    b = await adapter.balance(channel)
    assert (b.ok, b.code) == (False, "token_error")
    assert len(fake.token_requests) == 3  # a failure is not remembered for later calls


async def test_a_token_request_that_times_out_is_a_token_error(
    adapter: reloadly.Reloadly, fake: FakeReloadly
) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    fake.token_reply = down
    out = await adapter.dispatch(make_channel(), order())
    assert (out.kind, out.code) == ("unknown", "token_error")
    assert out.message is not None and "timeout" in out.message


async def test_concurrent_callers_share_a_token_failure(
    adapter: reloadly.Reloadly, fake: FakeReloadly
) -> None:
    fake.token_reply = json_reply(503, {"message": "down"})
    fake.token_delay_s = 0.02
    outs = await asyncio.gather(*(adapter.dispatch(make_channel(), order(f"c{i}")) for i in range(8)))
    assert {(o.kind, o.code) for o in outs} == {("unknown", "token_error")}
    assert len(fake.token_requests) == 1


async def test_a_caller_whose_token_request_timed_out_leaves_the_next_one_to_ask(
    adapter: reloadly.Reloadly, fake: FakeReloadly
) -> None:
    async def first_hangs(request: httpx.Request) -> httpx.Response:
        if len(fake.token_requests) == 1:
            await asyncio.sleep(5)
        return json_reply(200, {"access_token": "late", "expires_in": 3600})

    fake.token_reply = first_hangs
    impatient, patient = await asyncio.gather(
        adapter.dispatch(make_channel(timeout_s=0.05), order("a1")),
        adapter.dispatch(make_channel(timeout_s=2.0), order("a2")),
    )
    assert (impatient.kind, impatient.code) == ("unknown", "timeout")
    assert patient.kind == "succeeded"
    assert len(fake.token_requests) == 2


async def test_a_token_reply_without_expires_in_is_still_used(
    adapter: reloadly.Reloadly, fake: FakeReloadly, clock: FakeClock
) -> None:
    fake.expires_in = None
    await adapter.dispatch(make_channel(), order("a1"))
    await adapter.dispatch(make_channel(), order("a2"))
    assert len(fake.token_requests) == 1
    clock.advance(reloadly.tokens.DEFAULT_TOKEN_LIFETIME_S)
    await adapter.dispatch(make_channel(), order("a3"))
    assert len(fake.token_requests) == 2


# ---- query -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "expected", "code"),
    [
        (200, {"content": []}, "not_found", None),
        (
            200,
            {"content": [{"transactionId": 9, "customIdentifier": "ord1A1", "status": "SUCCESSFUL"}]},
            "success",
            None,
        ),
        (
            200,
            {"content": [{"transactionId": 9, "customIdentifier": "ord1A1", "status": "FAILED"}]},
            "failed",
            "FAILED",
        ),
        (
            200,
            {"content": [{"transactionId": 9, "customIdentifier": "ord1A1", "status": "REFUNDED"}]},
            "failed",
            "REFUNDED",
        ),
        (
            200,
            {"content": [{"transactionId": 9, "customIdentifier": "ord1A1", "status": "PROCESSING"}]},
            "processing",
            None,
        ),
        (
            200,
            {"content": [{"transactionId": 9, "customIdentifier": "ord1A1", "status": "ODD"}]},
            "error",
            "unexpected_reply",
        ),
        (
            200,
            {"content": [{"transactionId": 9, "customIdentifier": "zzz", "status": "SUCCESSFUL"}]},
            "error",
            "ref_mismatch",
        ),
        (200, {"items": []}, "error", "malformed_reply"),
        (200, None, "error", "malformed_reply"),
        (401, {"errorCode": "INVALID_TOKEN"}, "error", "http_401"),
        (404, {"errorCode": "NOT_FOUND"}, "error", "http_404"),
        (500, {"message": "boom"}, "error", "http_500"),
    ],
)
async def test_query_mapping(
    adapter: reloadly.Reloadly, fake: FakeReloadly, status: int, body: Any, expected: str, code: str | None
) -> None:
    fake.api = json_reply(status, body) if body is not None else httpx.Response(status, text="<html>")
    out = await adapter.query(make_channel(), query())
    assert (out.status, out.code) == (expected, code)
    if expected in ("success", "failed", "processing"):
        assert out.supplier_order_id == "9"


async def test_query_asks_by_custom_identifier(adapter: reloadly.Reloadly, fake: FakeReloadly) -> None:
    fake.api = json_reply(200, {"content": []})
    await adapter.query(make_channel(), query("ord9A3"))
    (sent,) = fake.api_requests
    assert sent.method == "GET"
    assert str(sent.url) == "https://topups.example.test/topups/reports/transactions?customIdentifier=ord9A3"
    assert sent.headers["authorization"] == "Bearer t1"
    assert sent.headers["accept"] == ACCEPT


# ---- balance ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "amount", "currency"),
    [
        ({"balance": 123.45, "currencyCode": "USD", "currencyName": "US Dollar"}, 12345, "USD"),
        ({"balance": 1234.5, "currencyCode": "CNY"}, 123450, "CNY"),
        ({"balance": 0, "currencyCode": "EUR"}, 0, "EUR"),
        ({"balance": 1000.00, "currencyCode": "USD"}, 100000, "USD"),
    ],
)
async def test_balance_in_minor_units_of_its_currency(
    adapter: reloadly.Reloadly, fake: FakeReloadly, body: dict[str, Any], amount: int, currency: str
) -> None:
    fake.api = json_reply(200, body)
    out = await adapter.balance(make_channel())
    assert (out.ok, out.amount, out.currency) == (True, amount, currency)
    (sent,) = fake.api_requests
    assert (sent.method, str(sent.url)) == ("GET", "https://topups.example.test/accounts/balance")
    assert sent.headers["accept"] == ACCEPT


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (200, {"balance": "lots", "currencyCode": "USD"}, "malformed_reply"),
        (200, {"balance": 1.234, "currencyCode": "USD"}, "malformed_reply"),
        (200, {"balance": 12}, "malformed_reply"),
        (200, {"balance": True, "currencyCode": "USD"}, "malformed_reply"),
        (500, {"message": "boom"}, "http_500"),
    ],
)
async def test_balance_failures(
    adapter: reloadly.Reloadly, fake: FakeReloadly, status: int, body: Any, code: str
) -> None:
    fake.api = json_reply(status, body)
    out = await adapter.balance(make_channel())
    assert (out.ok, out.code) == (False, code)


# ---- webhooks --------------------------------------------------------------------------------------

WEBHOOK_BODY = (
    b'{"type":"airtime_transaction.status","data":{"transaction":'
    b'{"transactionId":10670,"customIdentifier":"ord1A1","status":"SUCCESSFUL"}}}'
)


def signed(body: bytes, ts: str = "1700000000", secret: str = WEBHOOK_SECRET) -> CallbackRequest:
    sig = hmac.new(secret.encode(), body + b":" + ts.encode(), hashlib.sha256).hexdigest()
    headers = {
        "x-reloadly-request-timestamp": ts,
        "x-reloadly-signature": sig,
        "content-type": "application/json",
    }
    return CallbackRequest("POST", "/callbacks/reloadly/rl1", headers, body)


def webhook(status: str, ref: str = "ord1A1", type_: str = "airtime_transaction.status") -> bytes:
    transaction = {"transactionId": 10670, "customIdentifier": ref, "status": status}
    return orjson.dumps({"type": type_, "data": {"transaction": transaction}})


def test_webhook_signature_known_vector() -> None:
    # hex(HMAC-SHA256("whsec-test", body + ":1700000000")), computed with openssl outside this code base.
    expected = "808a07988ac06423ef563aa5a33268396913cbf614c0d5a838aa9a33e36a4ae3"
    assert signed(WEBHOOK_BODY).headers["x-reloadly-signature"] == expected
    assert reloadly.codec.webhook_signature(WEBHOOK_SECRET, WEBHOOK_BODY, "1700000000") == expected


def test_a_signed_webhook_is_accepted(adapter: reloadly.Reloadly) -> None:
    data = adapter.parse_callback(make_channel(), signed(WEBHOOK_BODY), T0)
    assert (data.supplier_ref, data.status, data.supplier_order_id) == ("ord1A1", "success", "10670")


@pytest.mark.parametrize(
    ("status", "mapped"),
    [("SUCCESSFUL", "success"), ("FAILED", "failed"), ("REFUNDED", "failed"), ("PROCESSING", "processing")],
)
def test_webhook_status_mapping(adapter: reloadly.Reloadly, status: str, mapped: str) -> None:
    data = adapter.parse_callback(make_channel(), signed(webhook(status)), T0)
    assert data.status == mapped


@pytest.mark.parametrize(
    "request_",
    [
        signed(WEBHOOK_BODY, secret="someone-else"),
        signed(WEBHOOK_BODY, ts="1699999699"),  # 301 s old
        signed(WEBHOOK_BODY, ts="1700000301"),  # 301 s ahead
        signed(WEBHOOK_BODY, ts="17e8"),
        CallbackRequest("POST", "/cb", {}, WEBHOOK_BODY),
        CallbackRequest(
            "POST", "/cb", {**signed(WEBHOOK_BODY).headers}, WEBHOOK_BODY.replace(b"SUCCESSFUL", b"FAILED")
        ),
        CallbackRequest(
            "POST", "/cb", {**signed(WEBHOOK_BODY).headers, "x-reloadly-signature": "00" * 32}, WEBHOOK_BODY
        ),
    ],
)
def test_a_forged_or_stale_webhook_is_unauthorized(
    adapter: reloadly.Reloadly, request_: CallbackRequest
) -> None:
    with pytest.raises(CallbackRefused) as caught:
        adapter.parse_callback(make_channel(), request_, T0)
    assert caught.value.kind == "unauthorized"


def test_the_window_is_300_seconds_each_way(adapter: reloadly.Reloadly) -> None:
    assert (
        adapter.parse_callback(make_channel(), signed(WEBHOOK_BODY, ts="1699999700"), T0).status == "success"
    )
    assert (
        adapter.parse_callback(make_channel(), signed(WEBHOOK_BODY, ts="1700000300"), T0).status == "success"
    )


def test_a_channel_without_webhook_secret_trusts_no_webhook(adapter: reloadly.Reloadly) -> None:
    channel = make_channel(credentials={"client_id": "c", "client_secret": "s"})
    with pytest.raises(CallbackRefused) as caught:
        adapter.parse_callback(channel, signed(WEBHOOK_BODY), T0)
    assert caught.value.kind == "unauthorized"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        webhook("SUCCESSFUL", type_="giftcard_transaction.status"),
        webhook("UNKNOWN"),
        webhook("SUCCESSFUL", ref=""),
        orjson.dumps({"type": "airtime_transaction.status", "data": {}}),
        orjson.dumps(
            {"type": "airtime_transaction.status", "data": {"transaction": {"status": "SUCCESSFUL"}}}
        ),
    ],
)
def test_a_malformed_webhook_is_refused(adapter: reloadly.Reloadly, body: bytes) -> None:
    with pytest.raises(CallbackRefused) as caught:
        adapter.parse_callback(make_channel(), signed(body), T0)
    assert caught.value.kind == "malformed"


def test_ack_is_200_json(adapter: reloadly.Reloadly) -> None:
    data = adapter.parse_callback(make_channel(), signed(WEBHOOK_BODY), T0)
    ack = adapter.ack(data)
    assert (ack.status_code, ack.body, ack.media_type) == (200, b'{"received":true}', "application/json")
