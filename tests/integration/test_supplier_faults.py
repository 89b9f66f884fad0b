"""Supplier faults over real HTTP: each ends in the right final state, charged at most once, ledger balanced.

Every test runs on SQLite and PostgreSQL (`platform`) against the simulator (`sim`). The faulty channel
is `supA`; `supB` is healthy unless a test says otherwise.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson
import pytest
from tests.support.platform import Platform, free_port, setup_airtime, sim_stats, wait_until

from topup.signing import signed_headers

BALANCE = 1_000_000
PRICE = 4980
OTHER = "13800138001"  # an account a test gives its own behaviour (the simulator's *_accounts lists)


def tried(order: dict[str, Any]) -> list[tuple[str, str]]:
    return [(a["channel"], a["status"]) for a in order["attempts"]]


def settle(
    platform: Platform, m: Any, order_id: str, charged_before: int = 0, timeout_s: float = 15.0
) -> dict[str, Any]:
    """Wait for the final state, then check the money: charged once on success, refunded on failure."""
    order = platform.wait_order(order_id, timeout_s=timeout_s)
    check = platform.ledger_check()
    assert check["balanced"], check
    expected = BALANCE - charged_before - (PRICE if order["status"] == "succeeded" else 0)
    assert m.get("/v1/balance").json() == {"available": expected, "held": 0, "currency": "CNY"}
    kinds = [p["kind"] for p in order["ledger"]]
    assert kinds == ["hold", "capture" if order["status"] == "succeeded" else "release"], kinds
    return order


def dispatches(sim: Any, channel: str) -> dict[str, int]:
    return dict(sim_stats(sim)["channels"].get(channel, {}).get("dispatches", {}))


def assert_each_ref_dispatched_once(sim: Any, order: dict[str, Any]) -> None:
    for a in order["attempts"]:
        assert dispatches(sim, a["channel"]).get(a["ref"]) == 1, (a, sim_stats(sim))


def post_callback(
    platform: Platform, channel: str, body: Any, secret: str | None = "sim-secret", raw: bytes | None = None
) -> httpx.Response:
    data = raw if raw is not None else orjson.dumps(body)
    path = f"/callbacks/topup-json/{channel}"
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers.update(signed_headers(secret, "POST", path, data, time.time()))
    return httpx.post(platform.url + path, content=data, headers=headers, trust_env=False)


def reply_events(platform: Platform, order_id: str, attempt: int = 1) -> list[dict[str, Any]]:
    """The recorded dispatch replies of one attempt."""
    story = platform.admin_order(order_id)
    return [
        e["detail"] for e in story["timeline"] if e["kind"] == "dispatch_reply" and e["attempt"] == attempt
    ]


# ---- the dispatch request itself fails -------------------------------------------------------------


def test_connection_refused_is_unknown_then_abandoned_and_fails_over(platform: Platform, sim) -> None:
    setup_airtime(platform, sim, {"supA": {}, "supB": {}}, timeout_s=0.2, max_wait_s=0.5)
    closed = free_port()  # nothing listens here
    platform.channel("supA", f"http://127.0.0.1:{closed}/sim/supA", timeout_s=0.2, max_wait_s=0.5)
    m = platform.merchant(balance=BALANCE)
    order = settle(platform, m, m.order("CR-1").json()["order_id"])
    assert order["status"] == "succeeded"
    # Outcome unknown (the supplier may have it): never a definite failure, so wait, then abandon.
    assert tried(order) == [("supA", "abandoned"), ("supB", "succeeded")]
    (reply,) = reply_events(platform, order["order_id"])
    assert reply["result"] == "unknown" and reply["code"] == "connect_error"


def test_hang_past_the_timeout_never_blocks(platform: Platform, sim) -> None:
    # supA takes every order but never answers the dispatch in time (it hangs for 2 s).
    setup_airtime(
        platform,
        sim,
        {"supA": {"hang_s": 2.0, "silent_accounts": [OTHER], "silent_query": "not_found"}, "supB": {}},
        timeout_s=0.4,
        max_wait_s=0.8,
    )
    m = platform.merchant(balance=BALANCE)
    # 1. The top-up was done and a callback arrives during the hang: success, charged once.
    first = settle(platform, m, m.order("H-1").json()["order_id"])
    assert tried(first) == [("supA", "succeeded")]
    # 2. Silent as well as hanging: the deadline's query settles it, well before the hang would end.
    started = time.monotonic()
    second = settle(platform, m, m.order("H-2", account=OTHER).json()["order_id"], charged_before=PRICE)
    assert time.monotonic() - started < 2.0, "bounded by timeout_s, not by the hang"
    assert tried(second) == [("supA", "failed"), ("supB", "succeeded")]
    assert second["attempts"][0]["reason"] == "query_not_found"
    wait_until(lambda: reply_events(platform, second["order_id"]), what="the timed-out reply")
    assert reply_events(platform, second["order_id"])[0]["code"] == "timeout"
    assert_each_ref_dispatched_once(sim, second)


def test_slow_reply_within_the_timeout_is_accepted(platform: Platform, sim) -> None:
    setup_airtime(
        platform,
        sim,
        {"supA": {"reply_latency_s": 0.3, "callback_delay_s": 0.5}, "supB": {}},
        timeout_s=1.0,
        max_wait_s=2.0,
    )
    m = platform.merchant(balance=BALANCE)
    order = settle(platform, m, m.order("SL-1").json()["order_id"])
    assert tried(order) == [("supA", "succeeded")]
    reply = reply_events(platform, order["order_id"])[0]
    assert reply["result"] == "accepted" and reply["latency_ms"] >= 250
    assert_each_ref_dispatched_once(sim, order)


# ---- the reply is wrong ----------------------------------------------------------------------------------


def test_malformed_reply_is_unknown_until_a_callback_or_the_query_settles_it(platform: Platform, sim) -> None:
    setup_airtime(
        platform,
        sim,
        {"supA": {"malformed_reply": True, "silent_accounts": [OTHER], "silent_query": "failed"}, "supB": {}},
        timeout_s=0.3,
    )
    m = platform.merchant(balance=BALANCE)
    first = settle(platform, m, m.order("MR-1").json()["order_id"])
    assert tried(first) == [("supA", "succeeded")], "the callback completes it"
    reply = reply_events(platform, first["order_id"])[0]
    assert reply["result"] == "unknown" and reply["code"] == "malformed_reply"
    second = settle(platform, m, m.order("MR-2", account=OTHER).json()["order_id"], charged_before=PRICE)
    assert tried(second) == [("supA", "failed"), ("supB", "succeeded")]
    assert second["attempts"][0]["reason"] == "query_failed"


def test_5xx_reply_fails_over_after_the_query_says_not_found(platform: Platform, sim) -> None:
    status = 503
    setup_airtime(platform, sim, {"supA": {"http_status": status}, "supB": {}}, timeout_s=0.3)
    m = platform.merchant(balance=BALANCE)
    order = settle(platform, m, m.order(f"5X-{status}").json()["order_id"])
    assert tried(order) == [("supA", "failed"), ("supB", "succeeded")]
    assert order["attempts"][0]["reason"] == "query_not_found"
    assert reply_events(platform, order["order_id"])[0]["code"] == f"http_{status}"


def test_every_channel_refused_or_5xx_fails_the_order_and_refunds(platform: Platform, sim) -> None:
    setup_airtime(
        platform,
        sim,
        {"supA": {}, "supB": {"http_status": 502}},
        timeout_s=0.2,
        max_wait_s=0.3,
        supports_query=False,
    )
    platform.channel(
        "supA", f"http://127.0.0.1:{free_port()}/x", timeout_s=0.2, max_wait_s=0.3, supports_query=False
    )
    m = platform.merchant(balance=BALANCE)
    order = settle(platform, m, m.order("ALL-DOWN").json()["order_id"])
    assert order["status"] == "failed"
    assert tried(order) == [("supA", "abandoned"), ("supB", "abandoned")]
    assert order["failure_reason"].startswith("all_channels_failed")


# ---- callbacks: early, forged, repeated, contradictory -------------------------------------------------


def test_callbacks_that_overtake_the_dispatch_reply(platform: Platform, sim) -> None:
    setup_airtime(
        platform,
        sim,
        {
            "supA": {"callback_before_reply": True, "reply_latency_s": 0.2, "fail_accounts": [OTHER]},
            "supB": {},
        },
        # The dispatch must wait for the real (late) reply, even on a slow machine.
        timeout_s=5.0,
        max_wait_s=10.0,
    )
    m = platform.merchant(balance=BALANCE)
    # A success callback before the reply completes the order; the late reply changes nothing.
    first = settle(platform, m, m.order("EARLY-1").json()["order_id"])
    assert tried(first) == [("supA", "succeeded")]
    wait_until(lambda: reply_events(platform, first["order_id"]), what="the late dispatch reply")
    story = platform.admin_order(first["order_id"])
    kinds = [e["kind"] for e in story["timeline"]]
    assert kinds.index("callback") < kinds.index("dispatch_reply"), kinds
    assert story["status"] == "succeeded" and [c["outcome"] for c in story["callbacks"]] == ["completed"]
    # A failure callback before an "accepted" reply: the attempt stays failed and the order moves on.
    second = settle(platform, m, m.order("EARLY-2", account=OTHER).json()["order_id"], charged_before=PRICE)
    assert tried(second) == [("supA", "failed"), ("supB", "succeeded")]
    assert second["attempts"][0]["reason"] == "supplier_failed: E42"
    assert_each_ref_dispatched_once(sim, second)


def test_duplicated_callbacks_have_one_effect(platform: Platform, sim) -> None:
    setup_airtime(
        platform,
        sim,
        {"supA": {"duplicate_callbacks": 4, "fail_accounts": [OTHER]}, "supB": {"duplicate_callbacks": 3}},
    )
    m = platform.merchant(balance=BALANCE)
    first = settle(platform, m, m.order("DUP-1").json()["order_id"])
    ref = first["attempts"][0]["ref"]
    wait_until(
        lambda: sim_stats(sim)["channels"]["supA"]["callbacks"].get(ref) == 4, what="4 callbacks acknowledged"
    )
    story = platform.admin_order(first["order_id"])
    assert len(story["callbacks"]) == 1, "stored once by (channel, ref, status)"
    assert [p["kind"] for p in story["ledger"]] == ["hold", "capture"]
    # Four failure callbacks fail the attempt over once; three successes on supB complete it once.
    second = settle(platform, m, m.order("DUP-2", account=OTHER).json()["order_id"], charged_before=PRICE)
    assert tried(second) == [("supA", "failed"), ("supB", "succeeded")]
    assert_each_ref_dispatched_once(sim, second)
    assert platform.ledger_check()["balanced"]


@pytest.fixture
def silent_pending(platform: Platform, sim) -> tuple[Any, dict[str, Any]]:
    """An order whose supA attempt waits for callbacks the test sends itself."""
    setup_airtime(platform, sim, {"supA": {"silent_ratio": 1.0}, "supB": {}}, timeout_s=30, max_wait_s=60)
    m = platform.merchant(balance=BALANCE)
    order = m.order("CB-1").json()
    wait_until(lambda: platform.admin_order(order["order_id"])["attempts"], what="dispatch")
    return m, order


def test_unsigned_and_malformed_callbacks_change_nothing(platform: Platform, silent_pending) -> None:
    m, order = silent_pending
    ref = f"{order['order_id']}-1"
    good = {"ref": ref, "status": "success", "supplier_order_id": "S1"}
    assert post_callback(platform, "supA", good, secret=None).status_code == 401
    assert post_callback(platform, "supA", good, secret="not-the-channel-secret").status_code == 401
    for raw in [b"{not json", b"[]", b'{"ref": 1}', orjson.dumps({"ref": ref, "status": "done"})]:
        r = post_callback(platform, "supA", None, raw=raw)
        assert r.status_code == 400, (raw, r.text)
        assert r.json()["error"]["code"] == "invalid_request"
    story = platform.admin_order(order["order_id"])
    assert story["status"] == "processing" and story["callbacks"] == []
    assert m.get("/v1/balance").json()["held"] == PRICE
    # The real callback still lands afterwards.
    assert post_callback(platform, "supA", good).status_code == 200
    assert settle(platform, m, order["order_id"])["status"] == "succeeded"


def test_failed_then_success_for_the_same_ref_is_an_exception_not_a_second_charge(
    platform: Platform, silent_pending
) -> None:
    m, order = silent_pending
    ref = f"{order['order_id']}-1"
    assert post_callback(platform, "supA", {"ref": ref, "status": "failed", "code": "E1"}).status_code == 200
    done = settle(platform, m, order["order_id"])
    assert tried(done) == [("supA", "failed"), ("supB", "succeeded")]
    r = post_callback(platform, "supA", {"ref": ref, "status": "success"})
    assert r.status_code == 200 and r.json()["outcome"] == "success_after_failure"
    after = settle(platform, m, order["order_id"])
    assert tried(after) == [("supA", "failed"), ("supB", "succeeded")]
    assert [(e["kind"], e["ref"]) for e in after["exceptions"]] == [("success_after_failure", ref)]
    # A repeat of the contradiction is stored once and flagged once.
    assert post_callback(platform, "supA", {"ref": ref, "status": "success"}).json()["outcome"] == "repeat"
    assert len(platform.admin_order(order["order_id"])["exceptions"]) == 1


def test_success_then_failed_for_the_same_ref_keeps_the_success(platform: Platform, silent_pending) -> None:
    m, order = silent_pending
    ref = f"{order['order_id']}-1"
    assert post_callback(platform, "supA", {"ref": ref, "status": "success"}).status_code == 200
    r = post_callback(platform, "supA", {"ref": ref, "status": "failed", "code": "E9"})
    assert r.status_code == 200 and r.json()["outcome"] == "failure_after_success"
    done = settle(platform, m, order["order_id"])
    assert tried(done) == [("supA", "succeeded")]
    assert [e["kind"] for e in done["exceptions"]] == ["failure_after_success"]
