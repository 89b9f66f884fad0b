"""The routing engine over real HTTP: failover paths, sticky switch and recovery, callback handling."""

from __future__ import annotations

import time

import httpx
import orjson
import pytest
from tests.support.platform import Platform, setup_airtime, sim_channel, sim_stats, wait_until

from topup.signing import signed_headers

BALANCE = 1_000_000
PRICE = 4980


def channels_tried(order: dict) -> list[tuple[str, str]]:
    return [(a["channel"], a["status"]) for a in order["attempts"]]


def post_callback(platform: Platform, channel: str, body: dict, secret: str = "sim-secret") -> httpx.Response:
    raw = orjson.dumps(body)
    path = f"/callbacks/topup-json/{channel}"
    headers = signed_headers(secret, "POST", path, raw, time.time())
    headers["Content-Type"] = "application/json"
    return httpx.post(platform.url + path, content=raw, headers=headers, trust_env=False)


def test_rejection_fails_over_and_moves_the_active_channel(platform: Platform, sim) -> None:
    setup_airtime(platform, sim, {"supA": {"reject_ratio": 1.0}, "supB": {}, "supC": {}})
    m = platform.merchant(balance=BALANCE)
    assert platform.get_group("air")["active_channel"] == "supA"
    first = platform.wait_order(m.order("R-1").json()["order_id"])
    assert first["status"] == "succeeded"
    assert channels_tried(first) == [("supA", "failed"), ("supB", "succeeded")]
    assert first["attempts"][0]["reason"].startswith("rejected")
    group = platform.get_group("air")
    assert group["active_channel"] == "supB"
    assert group["ranking"] == ["supB", "supC", "supA"]
    # Later orders go straight to the healthy supplier.
    second = platform.wait_order(m.order("R-2").json()["order_id"])
    assert channels_tried(second) == [("supB", "succeeded")]
    assert m.get("/v1/balance").json() == {"available": BALANCE - 2 * PRICE, "held": 0, "currency": "CNY"}
    assert platform.ledger_check()["balanced"]
    switches = platform.admin.get("/admin/v1/groups/air/switches").json()["items"]
    assert [(s["from_channel"], s["to_channel"], s["reason"]) for s in switches] == [
        ("supA", "supB", "failover")
    ]


def test_failure_callback_fails_over(platform: Platform, sim) -> None:
    setup_airtime(platform, sim, {"supA": {"success_ratio": 0.0}, "supB": {}})
    m = platform.merchant(balance=BALANCE)
    order = platform.wait_order(m.order("F-1").json()["order_id"])
    assert order["status"] == "succeeded"
    assert channels_tried(order) == [("supA", "failed"), ("supB", "succeeded")]
    assert order["attempts"][0]["reason"] == "supplier_failed: E42"
    story = platform.admin_order(order["order_id"])
    kinds = [e["kind"] for e in story["timeline"]]
    assert "callback" in kinds and "dispatch_reply" in kinds
    assert [c["status"] for c in story["callbacks"]] == ["failed", "success"]


def test_silence_then_query_not_found_fails_over(platform: Platform, sim) -> None:
    setup_airtime(
        platform, sim, {"supA": {"silent_ratio": 1.0, "silent_query": "not_found"}, "supB": {}}, timeout_s=0.3
    )
    m = platform.merchant(balance=BALANCE)
    order = platform.wait_order(m.order("S-1").json()["order_id"])
    assert channels_tried(order) == [("supA", "failed"), ("supB", "succeeded")]
    assert order["attempts"][0]["reason"] == "query_not_found"
    assert sim_stats(sim)["channels"]["supA"]["queries"]


def test_query_success_completes_without_a_callback(platform: Platform, sim) -> None:
    setup_airtime(
        platform, sim, {"supA": {"silent_ratio": 1.0, "silent_query": "success"}, "supB": {}}, timeout_s=0.3
    )
    m = platform.merchant(balance=BALANCE)
    order = platform.wait_order(m.order("Q-1").json()["order_id"])
    assert channels_tried(order) == [("supA", "succeeded")]
    assert platform.get_group("air")["active_channel"] == "supA"


def test_processing_extends_until_max_wait_then_abandons_and_late_success_is_an_exception(
    platform: Platform, sim
) -> None:
    setup_airtime(
        platform,
        sim,
        {
            "supA": {"silent_ratio": 1.0, "silent_query": "processing", "late_success_after_s": 2.5},
            "supB": {},
        },
        timeout_s=0.5,  # also bounds the dispatch request: too short turns it into not_found
        max_wait_s=1.5,
    )
    m = platform.merchant(balance=BALANCE)
    order = platform.wait_order(m.order("P-1").json()["order_id"])
    # supA's late success may already have landed by the time we look (a loaded machine), so the
    # abandonment is read from the timeline; the attempt's current status is abandoned or, later, succeeded.
    assert channels_tried(order) in (
        [("supA", "abandoned"), ("supB", "succeeded")],
        [("supA", "succeeded"), ("supB", "succeeded")],
    )
    story = platform.admin_order(order["order_id"])
    first = [e["kind"] for e in story["timeline"] if e["attempt"] == 1]
    assert "attempt_abandoned" in first
    kinds = [(e["kind"], e["attempt"]) for e in story["timeline"]]
    assert kinds.index(("attempt_abandoned", 1)) < kinds.index(("dispatch", 2))
    queries = [e for e in story["timeline"] if e["kind"] == "query" and e["attempt"] == 1]
    assert len(queries) >= 2, "a processing answer extends the wait by another timeout_s"
    assert all(q["detail"]["status"] == "processing" for q in queries)
    # The abandoned attempt's late success arrives after the order already succeeded elsewhere.
    exc = wait_until(
        lambda: platform.admin.get("/admin/v1/exceptions").json()["items"], timeout_s=5, what="exception"
    )
    assert [(e["kind"], e["order_id"], e["channel"]) for e in exc] == [
        ("duplicate_fulfilment", order["order_id"], "supA")
    ]
    after = platform.admin_order(order["order_id"])
    assert channels_tried(after) == [("supA", "succeeded"), ("supB", "succeeded")]
    # Charged once.
    assert m.get("/v1/balance").json()["available"] == BALANCE - PRICE
    assert platform.ledger_check()["balanced"]


def test_no_query_support_abandons_at_timeout(platform: Platform, sim) -> None:
    setup_airtime(
        platform, sim, {"supA": {"silent_ratio": 1.0}, "supB": {}}, timeout_s=0.3, supports_query=False
    )
    # supB answers; give it a generous timeout so a loaded machine cannot make it look silent.
    platform.channel("supB", sim.base_url("supB"), timeout_s=10, max_wait_s=20, supports_query=False)
    m = platform.merchant(balance=BALANCE)
    order = platform.wait_order(m.order("N-1").json()["order_id"])
    assert channels_tried(order) == [("supA", "abandoned"), ("supB", "succeeded")]
    assert "supA" not in sim_stats(sim)["channels"] or not sim_stats(sim)["channels"]["supA"].get("queries")


def test_every_channel_failing_fails_the_order_and_refunds(platform: Platform, sim) -> None:
    setup_airtime(platform, sim, {"supA": {"reject_ratio": 1.0}, "supB": {"success_ratio": 0.0}})
    m = platform.merchant(balance=BALANCE)
    order = platform.wait_order(m.order("X-1").json()["order_id"])
    assert order["status"] == "failed"
    assert channels_tried(order) == [("supA", "failed"), ("supB", "failed")]
    assert order["failure_reason"].startswith("all_channels_failed")
    assert m.get("/v1/balance").json() == {"available": BALANCE, "held": 0, "currency": "CNY"}
    kinds = [p["kind"] for p in platform.admin_order(order["order_id"])["ledger"]]
    assert kinds == ["hold", "release"]
    assert platform.ledger_check()["balanced"]


def test_sticky_switch_recovers_after_a_successful_probe(platform: Platform, sim) -> None:
    # Long enough that K-2 is routed inside the window even on a loaded machine (0.6 s was not).
    setup_airtime(platform, sim, {"supA": {"reject_ratio": 1.0}, "supB": {}}, recovery_s=2.0)
    m = platform.merchant(balance=BALANCE)
    platform.wait_order(m.order("K-1").json()["order_id"])
    assert platform.get_group("air")["active_channel"] == "supB"
    # Within the recovery window orders stay on supB.
    o2 = platform.wait_order(m.order("K-2").json()["order_id"])
    assert channels_tried(o2) == [("supB", "succeeded")]
    # supA recovers; after recovery_s the next order probes it and the group switches back.
    sim_channel(sim, "supA", reject_ratio=0.0)
    time.sleep(2.1)
    assert platform.get_group("air")["ranking"][0] == "supA", "the next order would probe the home channel"
    o3 = platform.wait_order(m.order("K-3").json()["order_id"])
    assert channels_tried(o3) == [("supA", "succeeded")]
    group = platform.get_group("air")
    assert group["active_channel"] == "supA"
    reasons = [s["reason"] for s in platform.admin.get("/admin/v1/groups/air/switches").json()["items"]]
    assert reasons == ["recovered", "failover"]


def test_failed_probe_restarts_the_recovery_timer(platform: Platform, sim) -> None:
    # Long enough that T-3 below is routed well inside the restarted window, even on a slow machine.
    setup_airtime(platform, sim, {"supA": {"reject_ratio": 1.0}, "supB": {}}, recovery_s=2.0)
    m = platform.merchant(balance=BALANCE)
    platform.wait_order(m.order("T-1").json()["order_id"])
    time.sleep(2.1)
    probe = platform.wait_order(m.order("T-2").json()["order_id"])
    assert channels_tried(probe) == [("supA", "failed"), ("supB", "succeeded")]
    assert platform.get_group("air")["active_channel"] == "supB"
    # The timer restarted: an order right after the failed probe does not probe again.
    o3 = platform.wait_order(m.order("T-3").json()["order_id"])
    assert channels_tried(o3) == [("supB", "succeeded")]


def test_cost_strategy_never_uses_a_channel_costing_more_than_the_price(platform: Platform, sim) -> None:
    setup_airtime(
        platform,
        sim,
        {"cheap": {}, "dear": {}, "mid": {}},
        strategy="cost",
        costs={"cheap": {"airtime.50": PRICE + 1}, "dear": {"airtime.50": 4970}, "mid": {"airtime.50": 4900}},
    )
    group = platform.get_group("air")
    m = platform.merchant(balance=BALANCE)
    order = platform.wait_order(m.order("C-1").json()["order_id"])
    assert channels_tried(order) == [("mid", "succeeded")]
    assert sim_stats(sim)["channels"]["cheap"]["dispatch_total"] == 0
    assert group["strategy"] == "cost"


class TestCallbacks:
    @pytest.fixture
    def pending_order(self, platform: Platform, sim) -> dict:
        # A silent supplier with a long timeout: the test sends the callbacks itself.
        setup_airtime(platform, sim, {"supA": {"silent_ratio": 1.0}, "supB": {}}, timeout_s=30, max_wait_s=60)
        m = platform.merchant(balance=BALANCE)
        order = m.order("CB-1").json()
        wait_until(lambda: platform.admin_order(order["order_id"])["attempts"], what="dispatch")
        return order

    def test_forged_callback_is_refused_and_changes_nothing(
        self, platform: Platform, pending_order: dict
    ) -> None:
        ref = f"{pending_order['order_id']}-1"
        r = post_callback(platform, "supA", {"ref": ref, "status": "success"}, secret="wrong-secret")
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "unauthorized"
        raw = orjson.dumps({"ref": ref, "status": "success"})
        r = httpx.post(f"{platform.url}/callbacks/topup-json/supA", content=raw, trust_env=False)
        assert r.status_code == 401
        stale = signed_headers("sim-secret", "POST", "/callbacks/topup-json/supA", raw, time.time() - 301)
        r = httpx.post(
            f"{platform.url}/callbacks/topup-json/supA", content=raw, headers=stale, trust_env=False
        )
        assert r.status_code == 401
        order = platform.admin_order(pending_order["order_id"])
        assert order["status"] == "processing" and order["callbacks"] == []

    def test_replayed_callback_has_no_second_effect(self, platform: Platform, pending_order: dict) -> None:
        ref = f"{pending_order['order_id']}-1"
        body = {"ref": ref, "status": "success", "supplier_order_id": "S1"}
        first = post_callback(platform, "supA", body)
        assert first.status_code == 200 and first.json()["received"] is True
        again = post_callback(platform, "supA", body)
        assert again.status_code == 200 and again.json()["received"] is True
        order = platform.admin_order(pending_order["order_id"])
        assert order["status"] == "succeeded"
        assert len(order["callbacks"]) == 1
        assert [p["kind"] for p in order["ledger"]] == ["hold", "capture"]
        assert platform.ledger_check()["balanced"]

    def test_unknown_ref_is_404(self, platform: Platform, pending_order: dict) -> None:
        r = post_callback(platform, "supA", {"ref": "ord_nope-1", "status": "success"})
        assert r.status_code == 404
        # A real ref sent on another channel's URL is unknown there too.
        r = post_callback(platform, "supB", {"ref": f"{pending_order['order_id']}-1", "status": "success"})
        assert r.status_code == 404

    def test_failure_after_success_changes_nothing(self, platform: Platform, pending_order: dict) -> None:
        ref = f"{pending_order['order_id']}-1"
        assert post_callback(platform, "supA", {"ref": ref, "status": "success"}).status_code == 200
        r = post_callback(platform, "supA", {"ref": ref, "status": "failed", "code": "E9"})
        assert r.status_code == 200
        order = platform.admin_order(pending_order["order_id"])
        assert order["status"] == "succeeded"
        assert [a["status"] for a in order["attempts"]] == ["succeeded"]
        assert [c["outcome"] for c in order["callbacks"]] == ["completed", "failure_after_success"]

    def test_malformed_callback_is_400(self, platform: Platform, pending_order: dict) -> None:
        r = post_callback(platform, "supA", {"ref": f"{pending_order['order_id']}-1", "status": "maybe"})
        assert r.status_code == 400
        assert platform.admin_order(pending_order["order_id"])["status"] == "processing"


def test_late_success_after_final_failure_is_an_exception(platform: Platform, sim) -> None:
    setup_airtime(
        platform,
        sim,
        {"supA": {"silent_ratio": 1.0, "late_success_after_s": 1.2}},
        timeout_s=0.2,
        max_wait_s=0.2,
        supports_query=False,
    )
    m = platform.merchant(balance=BALANCE)
    order = platform.wait_order(m.order("L-1").json()["order_id"])
    assert order["status"] == "failed"
    assert m.get("/v1/balance").json()["available"] == BALANCE
    exc = wait_until(
        lambda: platform.admin.get("/admin/v1/exceptions").json()["items"], timeout_s=5, what="exc"
    )
    assert exc[0]["kind"] == "late_success"
    assert platform.admin_order(order["order_id"])["status"] == "failed"
    assert m.get("/v1/balance").json()["available"] == BALANCE
    assert platform.ledger_check()["balanced"]
