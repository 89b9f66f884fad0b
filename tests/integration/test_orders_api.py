"""Order intake, reads and the operator API over real HTTP, on SQLite and PostgreSQL (SPEC sections 0, 1, 4).

The worker is off: orders stay `processing` with their price held, so balances are exact.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.conftest import start_platform
from tests.support.platform import ADMIN_TOKEN, Platform, SignedClient

from topup.signing import signed_headers

PRICE = 4980
CMCC = "13800138000"
CUCC = "13012345678"
DEAD_URL = "http://127.0.0.1:9/topup"  # never called: no worker runs here


@pytest.fixture
def api(database_url: str) -> Iterator[Platform]:
    server, p = start_platform(database_url, run_worker=False)
    try:
        yield p
    finally:
        p.admin.close()
        server.stop()


def setup_route(p: Platform, *, costs: dict[str, int] | None = None) -> None:
    """airtime.50 (brand auto) served by group `air` (no brand) with one channel."""
    p.product("airtime.50", price=PRICE)
    p.channel("supA", DEAD_URL)
    p.group("air", "mobile_airtime", [{"channel": "supA", "priority": 1, "weight": 1, "costs": costs or {}}])


def balance(m: SignedClient) -> dict[str, Any]:
    r = m.get("/v1/balance")
    assert r.status_code == 200, r.text
    return r.json()


def order_ids(m: SignedClient) -> list[str]:
    r = m.get("/v1/orders")
    assert r.status_code == 200, r.text
    return [o["order_id"] for o in r.json()["items"]]


def error_code(r: httpx.Response) -> str:
    body = r.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) >= {"code", "message", "details"}, body
    return str(body["error"]["code"])


class Snapshot:
    """Balance, orders and ledger transfers before a request that must change nothing."""

    def __init__(self, p: Platform, m: SignedClient) -> None:
        self.p, self.m = p, m
        self.balance = balance(m)
        self.orders = order_ids(m)
        self.transfers = p.ledger_check()["transfers"]

    def unchanged(self) -> None:
        assert balance(self.m) == self.balance
        assert order_ids(self.m) == self.orders
        check = self.p.ledger_check()
        assert check["transfers"] == self.transfers
        assert check["balanced"] is True, check


def db_execute(p: Platform, sql: str, **params: Any) -> None:
    """Change a row directly (e.g. a group's sticky state) through a separate engine."""
    from sqlalchemy import text

    from topup.adapters.db.engine import Database
    from topup.clock import Clock

    async def run() -> None:
        db = Database(p.database_url, Clock())
        try:
            async with db.engine.begin() as conn:
                await conn.execute(text(sql), params)
        finally:
            await db.engine.dispose()

    asyncio.run(run())


# --- placing orders ---------------------------------------------------------------------------------


def test_signed_order_is_created_with_price_held(api: Platform) -> None:
    setup_route(api)
    m = api.merchant(balance=10_000)
    r = m.order("A-1001", notify_url="https://m.example/cb", extra={"region": "bj"})
    assert r.status_code == 201, r.text
    o = r.json()
    assert o["order_id"].startswith("ord_")
    assert o["merchant_order_id"] == "A-1001"
    assert o["batch_id"] is None
    assert o["business_type"] == "mobile_airtime"
    assert o["product_code"] == "airtime.50"
    assert o["account"] == CMCC
    assert o["carrier"] == "cmcc"
    assert (o["face_value"], o["price"]) == (5000, PRICE)
    assert o["status"] == "processing"
    assert o["failure_reason"] is None and o["completed_at"] is None
    assert o["attempts"] == []  # routed by a worker (the inline first dispatch is off by default)
    assert o["created_at"].endswith("Z") and o["updated_at"].endswith("Z")
    assert balance(m) == {"available": 10_000 - PRICE, "held": PRICE, "currency": "CNY"}
    check = api.ledger_check()
    assert check["balanced"] is True and check["postings_sum"] == 0, check
    story = api.admin_order(o["order_id"])
    assert story["group"] == "air"
    assert [t["kind"] for t in story["ledger"]] == ["hold"]


def test_replay_returns_the_same_order_and_charges_once(api: Platform) -> None:
    setup_route(api)
    m = api.merchant(balance=10_000)
    first = m.order("A-1")
    assert first.status_code == 201, first.text
    snap = Snapshot(api, m)
    again = m.order("A-1")
    assert again.status_code == 200, again.text
    assert again.json()["order_id"] == first.json()["order_id"]
    assert again.json() == first.json()
    # Same fields after defaults: explicit nulls / empty extra and another key order are the same body.
    body = b'{"account":"13800138000","extra":{},"notify_url":null,"product_code":"airtime.50",'
    body += b'"merchant_order_id":"A-1"}'
    r = m.request("POST", "/v1/orders", raw=body)
    assert r.status_code == 200, r.text
    assert r.json()["order_id"] == first.json()["order_id"]
    snap.unchanged()


@pytest.mark.parametrize(
    "change",
    [
        {"account": "13800138001"},
        {"product_code": "airtime.100"},
        {"notify_url": "https://m.example/other"},
        {"extra": {"region": "sh"}},
    ],
)
def test_same_merchant_order_id_with_another_body_conflicts(api: Platform, change: dict[str, Any]) -> None:
    setup_route(api)
    api.product("airtime.100", face_value=10_000, price=9960)
    m = api.merchant(balance=100_000)
    first = m.order("A-1")
    assert first.status_code == 201, first.text
    snap = Snapshot(api, m)
    r = m.post(
        "/v1/orders", {"merchant_order_id": "A-1", "product_code": "airtime.50", "account": CMCC, **change}
    )
    assert r.status_code == 409, r.text
    assert error_code(r) == "idempotency_conflict"
    assert r.json()["error"]["details"]["order_id"] == first.json()["order_id"]
    snap.unchanged()


def test_merchant_order_ids_are_per_merchant(api: Platform) -> None:
    setup_route(api)
    m1 = api.merchant("m1", balance=10_000)
    m2 = api.merchant("m2", secret="merchant-secret-0002", balance=10_000)
    a, b = m1.order("A-1"), m2.order("A-1")
    assert (a.status_code, b.status_code) == (201, 201)
    assert a.json()["order_id"] != b.json()["order_id"]


def test_unknown_product(api: Platform) -> None:
    setup_route(api)
    m = api.merchant(balance=10_000)
    snap = Snapshot(api, m)
    r = m.order("A-1", product_code="airtime.999")
    assert r.status_code == 400, r.text
    assert error_code(r) == "unknown_product"
    # A disabled product is not in the catalog either.
    api.admin.put(
        "/admin/v1/products/airtime.50",
        json={
            "business_type": "mobile_airtime",
            "brand": "auto",
            "name": "x",
            "face_value": 5000,
            "price": PRICE,
            "enabled": False,
        },
    ).raise_for_status()
    r = m.order("A-2")
    assert r.status_code == 400 and error_code(r) == "unknown_product", r.text
    snap.unchanged()


@pytest.mark.parametrize("account", ["12345", "1380013800", "23800138000", "abc", "1349 0000 000"])
def test_invalid_account(api: Platform, account: str) -> None:
    setup_route(api)
    m = api.merchant(balance=10_000)
    snap = Snapshot(api, m)
    r = m.order("A-1", account=account)
    assert r.status_code == 400, r.text
    assert error_code(r) == "invalid_account"
    err = r.json()["error"]
    assert err["details"]["field"] == "account"
    assert err["details"]["reason"] and err["message"]
    snap.unchanged()


def test_invalid_account_for_a_carrier_product(api: Platform) -> None:
    setup_route(api)
    api.product("cmcc.50", brand="cmcc")
    m = api.merchant(balance=10_000)
    snap = Snapshot(api, m)
    r = m.order("A-1", product_code="cmcc.50", account=CUCC)
    assert r.status_code == 400 and error_code(r) == "invalid_account", r.text
    assert "cucc" in r.json()["error"]["details"]["reason"]
    snap.unchanged()


def test_no_route_without_a_group(api: Platform) -> None:
    api.product("airtime.50", price=PRICE)
    m = api.merchant(balance=10_000)
    snap = Snapshot(api, m)
    r = m.order("A-1")
    assert r.status_code == 400 and error_code(r) == "no_route", r.text
    snap.unchanged()


def test_no_route_when_the_only_channel_costs_more_than_the_price(api: Platform) -> None:
    setup_route(api, costs={"airtime.50": PRICE + 1})
    m = api.merchant(balance=10_000)
    snap = Snapshot(api, m)
    r = m.order("A-1")
    assert r.status_code == 400 and error_code(r) == "no_route", r.text
    snap.unchanged()
    # At cost == price the channel may be used.
    setup_route(api, costs={"airtime.50": PRICE})
    assert m.order("A-1").status_code == 201


def test_no_route_when_the_only_channel_is_disabled(api: Platform) -> None:
    setup_route(api)
    api.channel("supA", DEAD_URL, enabled=False)
    m = api.merchant(balance=10_000)
    snap = Snapshot(api, m)
    r = m.order("A-1")
    assert r.status_code == 400 and error_code(r) == "no_route", r.text
    snap.unchanged()


def test_brand_null_product_routes_only_to_the_no_brand_group(api: Platform) -> None:
    api.product("any.50", brand=None)
    api.channel("supA", DEAD_URL)
    api.channel("supB", DEAD_URL)
    api.group("cmcc", "mobile_airtime", [{"channel": "supA"}], brand="cmcc")
    m = api.merchant(balance=10_000)
    snap = Snapshot(api, m)
    r = m.order("A-1", product_code="any.50", account=CMCC)
    assert r.status_code == 400 and error_code(r) == "no_route", r.text
    snap.unchanged()
    api.group("generic", "mobile_airtime", [{"channel": "supB"}])
    r = m.order("A-1", product_code="any.50", account=CMCC)
    assert r.status_code == 201, r.text
    assert api.admin_order(r.json()["order_id"])["group"] == "generic"


def test_auto_brand_prefers_the_carrier_group_then_the_no_brand_group(api: Platform) -> None:
    api.product("airtime.50", price=PRICE)
    api.channel("supA", DEAD_URL)
    api.channel("supB", DEAD_URL)
    api.group("cmcc", "mobile_airtime", [{"channel": "supA"}], brand="cmcc")
    m = api.merchant(balance=100_000)
    r = m.order("A-1", account=CMCC)
    assert r.status_code == 201, r.text
    assert api.admin_order(r.json()["order_id"])["group"] == "cmcc"
    r = m.order("A-2", account=CUCC)  # no cucc group and no fallback
    assert r.status_code == 400 and error_code(r) == "no_route", r.text
    api.group("generic", "mobile_airtime", [{"channel": "supB"}])
    r = m.order("A-2", account=CUCC)
    assert r.status_code == 201, r.text
    assert api.admin_order(r.json()["order_id"])["group"] == "generic"
    assert r.json()["carrier"] == "cucc"


def test_insufficient_balance_creates_nothing(api: Platform) -> None:
    setup_route(api)
    m = api.merchant(balance=PRICE - 1)
    snap = Snapshot(api, m)
    r = m.order("A-1")
    assert r.status_code == 402 and error_code(r) == "insufficient_balance", r.text
    snap.unchanged()
    # The merchant_order_id was not used up: after a deposit the same id goes through.
    api.admin.post(
        "/admin/v1/merchants/m1/credits", json={"amount": 1, "reference": "top"}
    ).raise_for_status()
    r = m.order("A-1")
    assert r.status_code == 201, r.text
    assert balance(m) == {"available": 0, "held": PRICE, "currency": "CNY"}


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{not json",
        b"[]",
        b'"x"',
        b"{}",
        b'{"merchant_order_id":"A 1","product_code":"airtime.50","account":"13800138000"}',
        b'{"merchant_order_id":"A-1\\n","product_code":"airtime.50","account":"13800138000"}',
        b'{"merchant_order_id":"' + b"x" * 65 + b'","product_code":"airtime.50","account":"13800138000"}',
        b'{"merchant_order_id":"A-1","product_code":"","account":"13800138000"}',
        b'{"merchant_order_id":"A-1","product_code":"airtime.50","account":""}',
        b'{"merchant_order_id":"A-1","product_code":"airtime.50","account":13800138000}',
        b'{"merchant_order_id":"A-1","product_code":"airtime.50","account":"13800138000","notify_url":"ftp://x"}',
        b'{"merchant_order_id":"A-1","product_code":"airtime.50","account":"13800138000","extra":[1]}',
        b'{"merchant_order_id":"A-1","product_code":"airtime.50","account":"1380\xff"}',
    ],
)
def test_malformed_body_is_400_and_changes_nothing(api: Platform, body: bytes) -> None:
    setup_route(api)
    m = api.merchant(balance=10_000)
    snap = Snapshot(api, m)
    r = m.request("POST", "/v1/orders", raw=body, **{"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert error_code(r) == "invalid_request"
    snap.unchanged()


# --- the order of the checks (SPEC section 0) --------------------------------------------------------


def test_bad_signature_wins_over_a_malformed_body(api: Platform) -> None:
    setup_route(api)
    m = api.merchant(balance=10_000)
    for raw in (b"{not json", b"{}", b'{"merchant_order_id": 5}'):
        r = m.request("POST", "/v1/orders", raw=raw, **{"X-Signature": "0" * 64})
        assert r.status_code == 401, (raw, r.text)
        assert error_code(r) == "unauthorized"
        r = m.request("POST", "/v1/orders", raw=raw, **{"X-Merchant-Id": "nobody"})
        assert r.status_code == 401, (raw, r.text)


def test_malformed_body_wins_over_idempotency(api: Platform) -> None:
    setup_route(api)
    m = api.merchant(balance=10_000)
    assert m.order("A-1").status_code == 201
    r = m.post("/v1/orders", {"merchant_order_id": "A-1", "account": CMCC})  # product_code missing
    assert r.status_code == 400 and error_code(r) == "invalid_request", r.text


def test_replay_wins_over_later_catalog_routing_and_balance_changes(api: Platform) -> None:
    setup_route(api)
    m = api.merchant(balance=PRICE)
    first = m.order("A-1").json()
    # Since then: no money left, the channel is off (no route) and the product is withdrawn.
    api.channel("supA", DEAD_URL, enabled=False)
    assert m.order("A-2").json()["error"]["code"] == "no_route"
    assert m.order("A-1").status_code == 200
    api.admin.put(
        "/admin/v1/products/airtime.50",
        json={
            "business_type": "mobile_airtime",
            "brand": "auto",
            "name": "gone",
            "face_value": 5000,
            "price": PRICE,
            "enabled": False,
        },
    ).raise_for_status()
    snap = Snapshot(api, m)
    r = m.order("A-1")
    assert r.status_code == 200, r.text
    assert r.json()["order_id"] == first["order_id"]
    # ...and a conflicting body is still an idempotency conflict, not unknown_product.
    r = m.order("A-1", account="13800138001")
    assert r.status_code == 409 and error_code(r) == "idempotency_conflict", r.text
    snap.unchanged()


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        # unknown_product before invalid_account
        ({"product_code": "nope", "account": "bad"}, "unknown_product"),
        # invalid_account before no_route (the fuel product has no group)
        ({"product_code": "fuel.100", "account": "bad"}, "invalid_account"),
        # unknown_product / invalid_account / no_route all before insufficient_balance
        ({"product_code": "nope"}, "unknown_product"),
        ({"account": "bad"}, "invalid_account"),
        ({"product_code": "fuel.100", "account": "1000111234567890123"}, "no_route"),
        ({}, "insufficient_balance"),
    ],
)
def test_business_checks_run_in_spec_order(api: Platform, kw: dict[str, str], expected: str) -> None:
    setup_route(api)
    api.product("fuel.100", business_type="fuel_card", brand="auto", face_value=10_000, price=9900)
    m = api.merchant(balance=0)
    snap = Snapshot(api, m)
    r = m.order("A-1", **kw)
    assert error_code(r) == expected, r.text
    assert r.status_code == (402 if expected == "insufficient_balance" else 400)
    snap.unchanged()


# --- authentication ---------------------------------------------------------------------------------


def test_signature_failures_are_401_and_change_nothing(api: Platform) -> None:
    setup_route(api)
    m = api.merchant(balance=10_000)
    api.merchant("m2", secret="merchant-secret-0002", balance=10_000)
    snap = Snapshot(api, m)
    body = {"merchant_order_id": "A-1", "product_code": "airtime.50", "account": CMCC}
    cases: list[tuple[str, httpx.Response]] = []
    for missing in ("X-Merchant-Id", "X-Timestamp", "X-Signature"):
        h = {missing: ""}
        cases.append((f"missing {missing}", m.request("POST", "/v1/orders", json=body, **h)))
    for skew in (-400, 400):
        c = SignedClient(api.url, "m1", m.secret, clock=lambda s=skew: time.time() + s)
        cases.append((f"skew {skew}", c.request("POST", "/v1/orders", json=body)))
        c.close()
    cases.append(
        ("wrong signature", m.request("POST", "/v1/orders", json=body, **{"X-Signature": "ab" * 32}))
    )
    cases.append(("non-integer ts", m.request("POST", "/v1/orders", json=body, **{"X-Timestamp": "soon"})))
    # m1's secret under m2's id, and an unknown merchant.
    cases.append(("other merchant", m.request("POST", "/v1/orders", json=body, **{"X-Merchant-Id": "m2"})))
    cases.append(("unknown merchant", m.request("POST", "/v1/orders", json=body, **{"X-Merchant-Id": "zz"})))
    # Signed for another target than the one sent.
    sig = signed_headers(m.secret, "POST", "/v1/orders?x=1", b"{}", time.time())
    cases.append(
        (
            "signed another target",
            m.http.post("/v1/orders", content=b"{}", headers={**sig, "X-Merchant-Id": "m1"}),
        )
    )
    for what, r in cases:
        assert r.status_code == 401, (what, r.text)
        assert error_code(r) == "unauthorized", what
    snap.unchanged()


@pytest.mark.parametrize("path", ["/v1/balance", "/v1/products", "/v1/orders", "/v1/orders/ord_x"])
def test_every_merchant_read_needs_a_signature(api: Platform, path: str) -> None:
    api.merchant(balance=0)
    r = httpx.get(api.url + path, headers={"X-Merchant-Id": "m1"}, trust_env=False)
    assert r.status_code == 401 and error_code(r) == "unauthorized", r.text


# --- reads ------------------------------------------------------------------------------------------


def test_get_order_by_id_and_merchant_order_id(api: Platform) -> None:
    setup_route(api)
    m1 = api.merchant("m1", balance=100_000)
    m2 = api.merchant("m2", secret="merchant-secret-0002", balance=100_000)
    o = m1.order("A-1").json()
    other = m2.order("B-1").json()
    r = m1.get(f"/v1/orders/{o['order_id']}")
    assert r.status_code == 200 and r.json() == o, r.text
    r = m1.get("/v1/orders?merchant_order_id=A-1")
    assert r.status_code == 200
    assert r.json() == {"items": [o], "next_cursor": None}
    assert m1.get("/v1/orders?merchant_order_id=B-1").json()["items"] == []
    r = m1.get(f"/v1/orders/{other['order_id']}")
    assert r.status_code == 404 and error_code(r) == "not_found", r.text
    r = m1.get("/v1/orders/ord_does_not_exist")
    assert r.status_code == 404 and error_code(r) == "not_found", r.text


def test_cursor_paging_newest_first(api: Platform) -> None:
    setup_route(api)
    m = api.merchant(balance=100_000)
    created = [m.order(f"P-{i}").json()["order_id"] for i in range(7)]
    seen: list[str] = []
    pages = 0
    path = "/v1/orders?limit=3"
    while True:
        r = m.get(path)
        assert r.status_code == 200, r.text
        page = r.json()
        pages += 1
        seen += [o["order_id"] for o in page["items"]]
        assert len(page["items"]) <= 3
        if page["next_cursor"] is None:
            break
        path = f"/v1/orders?limit=3&cursor={page['next_cursor']}"
    assert pages == 3
    assert seen == list(reversed(created))
    assert len(set(seen)) == 7
    assert len(m.get("/v1/orders?status=processing").json()["items"]) == 7
    assert m.get("/v1/orders?status=succeeded").json()["items"] == []


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=201", "limit=x", "status=refunded", "cursor=not-a-cursor", "cursor=WzFd"]
)
def test_bad_list_parameters_are_400(api: Platform, query: str) -> None:
    m = api.merchant(balance=0)
    r = m.get(f"/v1/orders?{query}")
    assert r.status_code == 400 and error_code(r) == "invalid_request", r.text


def test_products_and_balance(api: Platform) -> None:
    setup_route(api)
    api.product("fuel.100", business_type="fuel_card", brand="sinopec", face_value=10_000, price=9900)
    api.admin.put(
        "/admin/v1/products/hidden.1",
        json={
            "business_type": "membership",
            "brand": "iqiyi",
            "name": "hidden",
            "face_value": 100,
            "price": 100,
            "enabled": False,
        },
    ).raise_for_status()
    m = api.merchant(balance=12_345)
    r = m.get("/v1/products")
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert items == [
        {
            "code": "airtime.50",
            "business_type": "mobile_airtime",
            "brand": "auto",
            "name": "airtime.50",
            "face_value": 5000,
            "price": PRICE,
        },
        {
            "code": "fuel.100",
            "business_type": "fuel_card",
            "brand": "sinopec",
            "name": "fuel.100",
            "face_value": 10_000,
            "price": 9900,
        },
    ]
    assert balance(m) == {"available": 12_345, "held": 0, "currency": "CNY"}


# --- operator API -----------------------------------------------------------------------------------


def _admin_operations(p: Platform) -> list[tuple[str, str]]:
    schema = p.admin.get("/openapi.json").json()
    ops = []
    for path, item in schema["paths"].items():
        if not path.startswith("/admin/v1"):
            continue
        concrete = path
        for seg in [s for s in path.split("/") if s.startswith("{")]:
            concrete = concrete.replace(seg, "x1")
        for method in item:
            if method in ("get", "put", "post", "delete", "patch"):
                ops.append((method.upper(), concrete))
    return ops


def test_every_admin_endpoint_needs_the_bearer_token(api: Platform) -> None:
    ops = _admin_operations(api)
    assert len(ops) >= 12, ops
    bad_headers: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Basic {ADMIN_TOKEN}"},
        {"Authorization": ADMIN_TOKEN},
        {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
        {"Authorization": "Bearer"},
    ]
    with httpx.Client(base_url=api.url, trust_env=False) as anon:
        for method, path in ops:
            for h in bad_headers:
                r = anon.request(method, path, json={}, headers=h)
                assert r.status_code == 401, (method, path, h, r.text)
                assert error_code(r) == "unauthorized"
            if method in ("PUT", "POST"):
                # A malformed body does not get past the missing token either.
                r = anon.request(method, path, content=b"{bad", headers={"Content-Type": "application/json"})
                assert r.status_code == 401, (method, path, r.text)
    assert api.admin.get("/admin/v1/ledger/check").status_code == 200


def test_put_answers_201_then_200(api: Platform) -> None:
    product = {
        "business_type": "mobile_airtime",
        "brand": "auto",
        "name": "A",
        "face_value": 5000,
        "price": 4980,
    }
    channel = {
        "name": "A",
        "protocol": "topup-json",
        "base_url": DEAD_URL,
        "secret": "channel-secret-1",
        "timeout_s": 0.5,
        "max_wait_s": 1.5,
        "supports_query": True,
        "enabled": True,
    }
    group = {
        "business_type": "mobile_airtime",
        "brand": None,
        "strategy": "priority",
        "sticky": True,
        "recovery_s": 0.25,
        "members": [{"channel": "supA", "priority": 1, "weight": 1, "costs": {}}],
    }
    merchant = {"name": "M", "secret": "merchant-secret-xyz1", "password": "pass-word-1", "notify_url": None}
    for path, body in [
        ("/admin/v1/products/airtime.50", product),
        ("/admin/v1/channels/supA", channel),
        ("/admin/v1/groups/air", group),
        ("/admin/v1/merchants/m9", merchant),
    ]:
        first = api.admin.put(path, json=body)
        assert first.status_code == 201, (path, first.text)
        second = api.admin.put(path, json={**body, "name": "B"} if "name" in body else body)
        assert second.status_code == 200, (path, second.text)
        assert "secret" not in first.json() and "secret" not in second.json()
        assert "password" not in second.json()
    assert api.get_group("air")["recovery_s"] == 0.25
    channels = api.admin.get("/admin/v1/channels").json()["items"]
    assert channels[0]["timeout_s"] == 0.5 and "secret" not in channels[0]


def test_credits_are_idempotent_by_reference(api: Platform) -> None:
    m = api.merchant(balance=0)
    r = api.admin.post("/admin/v1/merchants/m1/credits", json={"amount": 500, "reference": "dep-1"})
    assert r.status_code == 201, r.text
    assert r.json()["balance"] == {"available": 500, "held": 0, "currency": "CNY"}
    r = api.admin.post("/admin/v1/merchants/m1/credits", json={"amount": 500, "reference": "dep-1"})
    assert r.status_code == 200, r.text
    assert r.json()["amount"] == 500
    assert balance(m)["available"] == 500
    r = api.admin.post("/admin/v1/merchants/m1/credits", json={"amount": 700, "reference": "dep-1"})
    assert r.status_code == 409 and error_code(r) == "idempotency_conflict", r.text
    assert balance(m)["available"] == 500
    # The reference is per merchant.
    api.merchant("m2", secret="merchant-secret-0002", balance=0)
    r = api.admin.post("/admin/v1/merchants/m2/credits", json={"amount": 700, "reference": "dep-1"})
    assert r.status_code == 201, r.text
    r = api.admin.post("/admin/v1/merchants/nobody/credits", json={"amount": 1, "reference": "x"})
    assert r.status_code == 404 and error_code(r) == "not_found", r.text
    for bad in (
        {"amount": 0, "reference": "z"},
        {"amount": -5, "reference": "z"},
        {"amount": 1.5, "reference": "z"},
    ):
        r = api.admin.post("/admin/v1/merchants/m1/credits", json=bad)
        assert r.status_code == 400 and error_code(r) == "invalid_request", (bad, r.text)
    assert balance(m)["available"] == 500
    check = api.ledger_check()
    assert check["balanced"] is True and check["transfers"] == 2, check


def test_group_shows_active_channel_and_ranking(api: Platform) -> None:
    for code in ("supA", "supB", "supC"):
        api.channel(code, DEAD_URL)
    g = api.group(
        "air",
        "mobile_airtime",
        [
            {"channel": "supB", "priority": 2},
            {"channel": "supA", "priority": 1},
            {"channel": "supC", "priority": 3},
        ],
    )
    assert g["active_channel"] == "supA"
    assert g["ranking"] == ["supA", "supB", "supC"]
    got = api.get_group("air")
    assert got["active_channel"] == "supA" and got["ranking"] == ["supA", "supB", "supC"]
    assert {m["channel"] for m in got["members"]} == {"supA", "supB", "supC"}
    # A disabled channel drops out of the ranking.
    api.channel("supB", DEAD_URL, enabled=False)
    assert api.get_group("air")["ranking"] == ["supA", "supC"]
    api.channel("supB", DEAD_URL, enabled=True)
    # After a switch to supC the next order starts there and wraps round.
    db_execute(
        api,
        "UPDATE groups SET active_channel = :ch, switched_at = :at WHERE code = 'air'",
        ch="supC",
        at=time.time(),
    )
    got = api.get_group("air")
    assert got["active_channel"] == "supC"
    assert got["ranking"] == ["supC", "supA", "supB"]
    # Once recovery_s has passed, the next order probes home first.
    db_execute(api, "UPDATE groups SET switched_at = :at WHERE code = 'air'", at=time.time() - 301)
    got = api.get_group("air")
    assert got["active_channel"] == "supC"
    assert got["ranking"] == ["supA", "supB", "supC"]
    r = api.admin.get("/admin/v1/groups/nope")
    assert r.status_code == 404 and error_code(r) == "not_found"


def test_group_with_unknown_member_is_rejected(api: Platform) -> None:
    r = api.admin.put(
        "/admin/v1/groups/air",
        json={"business_type": "mobile_airtime", "members": [{"channel": "ghost", "priority": 1}]},
    )
    assert r.status_code == 400 and error_code(r) == "invalid_request", r.text
    assert api.admin.get("/admin/v1/groups/air").status_code == 404


# --- hostile input never gets a 500 -----------------------------------------------------------------

HOSTILE_ORDERS = [
    # lone surrogates, NUL characters, numbers JSON allows but orjson / PostgreSQL do not
    b'{"merchant_order_id":"H-1","product_code":"\\ud800","account":"13800138000"}',
    b'{"merchant_order_id":"H-2","product_code":"airtime.50","account":"\\ud800"}',
    b'{"merchant_order_id":"H-3","product_code":"airtime.50","account":"13800138000","extra":{"k":"\\ud800"}}',
    b'{"merchant_order_id":"H-4","product_code":"airtime.50","account":"13800138000","extra":{"\\ud800":1}}',
    b'{"merchant_order_id":"H-5","product_code":"airtime.50","account":"13800138000","extra":{"n":1e999}}',
    b'{"merchant_order_id":"H-6","product_code":"airtime.50","account":"13800138000","extra":{"n":NaN}}',
    b'{"merchant_order_id":"H-7","product_code":"airtime.50","account":"13800138000","extra":{"n":1'
    + b"0" * 30
    + b"}}",
    b'{"merchant_order_id":"H-8","product_code":"air\\u0000","account":"13800138000"}',
    b'{"merchant_order_id":"H-9","product_code":"airtime.50","account":"1380013800\\u0000"}',
    b'{"merchant_order_id":"H-10","product_code":"airtime.50","account":"13800138000","notify_url":"https://x/\\u0000"}',
]


def test_hostile_order_bodies_are_refused_with_400(api: Platform) -> None:
    setup_route(api)
    m = api.merchant(balance=10_000)
    snap = Snapshot(api, m)
    for body in HOSTILE_ORDERS:
        r = m.request("POST", "/v1/orders", raw=body)
        assert r.status_code == 400, (body, r.text)
        assert error_code(r) in ("invalid_request", "unknown_product", "invalid_account"), r.text
    snap.unchanged()


def test_hostile_paths_queries_and_cursors_never_500(api: Platform) -> None:
    import base64

    setup_route(api)
    m = api.merchant(balance=10_000)
    assert m.order("A-1").status_code == 201
    cursors = [b'[1, "\\u0000"]', b'[1, "\\ud800"]', b'["\\ud800", "x"]', b'{"a": 1, "b": 2}', b"[1e999, 1]"]
    paths = [f"/v1/orders?cursor={base64.urlsafe_b64encode(c).decode().rstrip('=')}" for c in cursors]
    paths += ["/v1/orders/%00", "/v1/orders/%ED%A0%80", "/v1/orders?merchant_order_id=%00"]
    for path in paths:
        r = m.get(path)
        assert r.status_code in (200, 400, 404), (path, r.text)
        assert "error" in r.json() or "items" in r.json()
    admin = [
        ("GET", "/admin/v1/orders/%00", None),
        ("GET", "/admin/v1/groups/%00", None),
        ("GET", "/admin/v1/orders?account=%00&merchant_id=%00", None),
        ("POST", "/admin/v1/merchants/m1/credits", {"amount": 1, "reference": "a\u0000"}),
        ("PUT", "/admin/v1/merchants/m5", {"name": "a\u0000", "secret": "x" * 20}),
        ("PUT", "/admin/v1/channels/c1", {"name": "a\u0000", "base_url": "http://x/", "secret": "s" * 10}),
    ]
    for method, path, body in admin:
        r = api.admin.request(method, path, json=body)
        assert r.status_code < 500, (method, path, r.text)
    # A validation error that echoes a lone surrogate (a dict key) still renders.
    raw = b'{"business_type":"mobile_airtime","members":[{"channel":"supA","costs":{"\\ud800":1}}]}'
    r = api.admin.put("/admin/v1/groups/g2", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert m.get("/v1/balance").json()["held"] == PRICE
    assert api.ledger_check()["balanced"] is True
