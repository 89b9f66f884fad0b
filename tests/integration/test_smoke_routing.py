"""Order intake through routing to a final state over real HTTP."""

from __future__ import annotations

from tests.support.platform import Platform, setup_airtime


def test_order_succeeds_on_first_channel(platform: Platform, sim) -> None:
    setup_airtime(platform, sim, {"supA": {}})
    m = platform.merchant()
    r = m.order("A-1")
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["status"] == "processing"
    assert order["carrier"] == "cmcc"
    assert m.get("/v1/balance").json() == {"available": 1_000_000 - 4980, "held": 4980, "currency": "CNY"}
    final = platform.wait_order(order["order_id"])
    assert final["status"] == "succeeded", (final["timeline"], final["failure_reason"])
    assert final["attempts"][0]["channel"] == "supA"
    assert m.get("/v1/balance").json() == {"available": 1_000_000 - 4980, "held": 0, "currency": "CNY"}
    assert platform.ledger_check()["balanced"] is True
