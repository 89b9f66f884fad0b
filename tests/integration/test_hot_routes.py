"""The lean handlers in front of FastAPI (`entrypoints/api/hot_routes.py`), over real HTTP on both databases.

Which path answered is told by spies on the FastAPI routes' own module functions (`merchant_routes.place`,
`callback_routes.receive_callback`): the hot handlers hold their own references, so a spy call means the
request went through FastAPI's router. The worker is off, so orders stay `processing`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from tests.conftest import start_platform
from tests.support.platform import Platform, SignedClient

from topup.entrypoints.api import callback_routes, merchant_routes
from topup.signing import signed_headers

PRICE = 4980
DEAD_URL = "http://127.0.0.1:9/topup"  # never called: no worker runs here


@pytest.fixture
def api(database_url: str) -> Iterator[Platform]:
    server, p = start_platform(database_url, run_worker=False)
    try:
        p.product("airtime.50", price=PRICE)
        p.channel("supA", DEAD_URL)
        p.group("air", "mobile_airtime", [{"channel": "supA", "priority": 1, "weight": 1}])
        yield p
    finally:
        p.admin.close()
        server.stop()


@pytest.fixture
def routed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths FastAPI's own order and callback routes handled."""
    seen: list[str] = []
    place, receive = merchant_routes.place, callback_routes.receive_callback

    async def place_spy(*args: Any, **kw: Any) -> Any:
        seen.append("/v1/orders")
        return await place(*args, **kw)

    async def receive_spy(protocol: str, channel: str, *args: Any) -> Any:
        seen.append(f"/callbacks/{protocol}/{channel}")
        return await receive(protocol, channel, *args)

    monkeypatch.setattr(merchant_routes, "place", place_spy)
    monkeypatch.setattr(callback_routes, "receive_callback", receive_spy)
    return seen


def body(merchant_order_id: str) -> dict[str, Any]:
    return {"merchant_order_id": merchant_order_id, "product_code": "airtime.50", "account": "13800138000"}


def held(m: SignedClient) -> int:
    return int(m.get("/v1/balance").json()["held"])


def shape(r: httpx.Response) -> tuple[int, dict[str, Any]]:
    """Status and the answer without the fields that differ from order to order."""
    out = dict(r.json())
    for k in ("order_id", "merchant_order_id", "created_at", "updated_at"):
        out.pop(k, None)
    return r.status_code, out


def test_an_order_is_answered_by_the_hot_route_as_the_fastapi_route_answers_it(
    api: Platform, routed: list[str]
) -> None:
    m = api.merchant()
    hot = m.request("POST", "/v1/orders", json=body("H-1"))
    assert hot.status_code == 201, hot.text
    assert routed == []  # FastAPI's route never ran
    # `+json` is JSON to FastAPI but not plainly `application/json` to the hot route: handed on.
    handed = m.request("POST", "/v1/orders", json=body("H-2"), **{"Content-Type": "application/vnd.x+json"})
    assert handed.status_code == 201, handed.text
    assert routed == ["/v1/orders"]
    assert shape(hot) == shape(handed)
    assert hot.headers["content-type"] == handed.headers["content-type"] == "application/json"
    assert held(m) == 2 * PRICE

    replay = m.request("POST", "/v1/orders", json=body("H-1"))
    assert replay.status_code == 200
    assert replay.json()["order_id"] == hot.json()["order_id"]
    assert held(m) == 2 * PRICE
    assert routed == ["/v1/orders"]


@pytest.mark.parametrize(
    "raw, field",
    [
        (b'{"merchant_order_id": "B-1", "product_code": "airtime.50"', "body"),  # not JSON
        (b"[1, 2]", "body"),  # JSON, not an object
        (orjson.dumps({**body("B-2"), "account": 13800138000}), "account"),  # wrong type
        (orjson.dumps({"product_code": "airtime.50", "account": "13800138000"}), "merchant_order_id"),
        # an integer beyond 64 bits: JSON allows it, `extra` must survive orjson, which cannot hold it
        (orjson.dumps(body("B-3"))[:-1] + b', "extra": {"n": 1' + b"0" * 30 + b"}}", "extra"),
    ],
)
def test_a_body_the_hot_route_cannot_validate_gets_fastapis_error_and_changes_nothing(
    api: Platform, routed: list[str], raw: bytes, field: str
) -> None:
    m = api.merchant()
    r = m.request("POST", "/v1/orders", raw=raw)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["message"].startswith(f"{field}:"), error
    assert error["details"][0]["field"] == field
    assert held(m) == 0
    assert m.get("/v1/orders").json()["items"] == []


def test_the_signature_is_checked_before_the_body_on_the_hot_route(api: Platform, routed: list[str]) -> None:
    m = api.merchant()
    wrong = SignedClient(api.url, "m1", "not-the-secret-0001")
    r = wrong.request("POST", "/v1/orders", raw=b"{not json")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"
    r = wrong.request("POST", "/v1/orders", json=body("S-1"))
    assert r.status_code == 401
    assert routed == []  # a bad signature is answered by the hot route itself
    assert held(m) == 0


def test_a_business_error_on_the_hot_route_has_the_spec_error_body(api: Platform, routed: list[str]) -> None:
    m = api.merchant(balance=PRICE - 1)
    r = m.request("POST", "/v1/orders", json=body("P-1"))
    assert r.status_code == 402, r.text
    assert set(r.json()) == {"error"}
    assert r.json()["error"]["code"] == "insufficient_balance"
    unknown = m.request("POST", "/v1/orders", json={**body("P-2"), "product_code": "nope"})
    assert unknown.status_code == 400
    assert set(unknown.json()["error"]) == {"code", "message", "details"}
    assert unknown.json()["error"]["code"] == "unknown_product"
    assert routed == []
    assert held(m) == 0


def test_callbacks_are_answered_by_the_hot_route(api: Platform, routed: list[str]) -> None:
    path = "/callbacks/topup-json/nosuch"
    data = orjson.dumps({"ref": "x", "status": "succeeded"})
    headers = {
        "Content-Type": "application/json",
        **signed_headers("sim-secret", "POST", path, data, time.time()),
    }
    r = httpx.post(api.url + path, content=data, headers=headers, trust_env=False)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    path = "/callbacks/topup-json/supA"
    r = httpx.post(
        api.url + path, content=data, headers={"Content-Type": "application/json"}, trust_env=False
    )
    assert r.status_code == 401  # unsigned
    assert r.json()["error"]["code"] == "unauthorized"
    assert routed == []


def test_the_body_limit_still_bounds_the_hot_routes(api: Platform, routed: list[str]) -> None:
    m = api.merchant()
    huge = orjson.dumps({**body("L-1"), "extra": {"x": "a" * (5 * 1024 * 1024)}})
    r = m.request("POST", "/v1/orders", raw=huge)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "invalid_request"
    assert held(m) == 0
