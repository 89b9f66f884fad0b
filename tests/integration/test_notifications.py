"""Webhook delivery over real HTTP: a merchant receiver written from the SPEC, retries, give-up, operators."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tests.conftest import start_platform
from tests.support.platform import Platform, setup_airtime, wait_until

SECRETS = {"m1": "merchant-secret-0001", "m2": "merchant-secret-0002"}
HANG = "hang"


class Receiver:
    """A merchant's webhook endpoint, written from SPEC sections 0 and 1 (not with topup.signing).

    Answers each path from a script (status codes or "hang"), then with 200, and records everything.
    """

    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets = secrets
        self.lock = threading.Lock()
        self.scripts: dict[str, deque[int | str]] = defaultdict(deque)
        self.defaults: dict[str, int | str] = {}
        self.received: list[dict[str, Any]] = []
        self.in_flight: dict[str, int] = defaultdict(int)
        self.max_in_flight: dict[str, int] = defaultdict(int)
        self.app = Starlette(routes=[Route("/{path:path}", self.endpoint, methods=["POST"])])
        self.server: Any = None

    def verify(self, request: Request, body: bytes) -> str | None:
        """None if the request is signed per SPEC section 0 by the merchant it names, else why not."""
        merchant = request.headers.get("x-merchant-id", "")
        ts = request.headers.get("x-timestamp", "")
        sig = request.headers.get("x-signature", "")
        secret = self.secrets.get(merchant)
        if secret is None or not ts.isdigit() or not sig:
            return "missing or unknown headers"
        if abs(time.time() - int(ts)) > 300:
            return "stale timestamp"
        target = request.scope["raw_path"].decode()
        if request.scope.get("query_string"):
            target += "?" + request.scope["query_string"].decode()
        message = f"{ts}\nPOST\n{target}\n".encode() + body
        expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
        return None if hmac.compare_digest(expected, sig) else "signature mismatch"

    async def endpoint(self, request: Request) -> JSONResponse:
        path = request.url.path
        body = await request.body()
        problem = self.verify(request, body)
        with self.lock:
            answer = self.scripts[path].popleft() if self.scripts[path] else self.defaults.get(path, 200)
            self.in_flight[path] += 1
            self.max_in_flight[path] = max(self.max_in_flight[path], self.in_flight[path])
            self.received.append(
                {
                    "path": path,
                    "query": request.url.query,
                    "headers": dict(request.headers),
                    "raw": body,
                    "body": orjson.loads(body),
                    "problem": problem,
                    "answer": answer,
                    "at": time.monotonic(),
                }
            )
        try:
            if problem:
                return JSONResponse({"error": problem}, status_code=401)
            if answer == HANG:
                await asyncio.sleep(30)
                answer = 200
            return JSONResponse({"ok": True}, status_code=int(answer))
        finally:
            with self.lock:
                self.in_flight[path] -= 1

    def got(self, path: str, status: int | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [
                r for r in self.received if r["path"] == path and (status is None or r["answer"] == status)
            ]

    def url(self, path: str) -> str:
        return f"{self.server.url}{path}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    from topup.adapters.suppliers.simulator import BackgroundServer

    r = Receiver(SECRETS)
    r.server = BackgroundServer(r.app, "127.0.0.1", 0).start()
    try:
        yield r
    finally:
        r.server.stop()


@pytest.fixture
def launch(database_url: str) -> Iterator[Callable[..., Platform]]:
    started: list[tuple[Any, Platform]] = []

    def go(**overrides: Any) -> Platform:
        server, p = start_platform(database_url, **overrides)
        started.append((server, p))
        return p

    yield go
    for server, p in started:
        p.admin.close()
        server.stop()


def delivery(platform: Platform, order_id: str) -> dict[str, Any]:
    notes = platform.admin_order(order_id)["notifications"]
    assert len(notes) == 1, notes
    return notes[0]  # type: ignore[no-any-return]


def wait_delivery(platform: Platform, order_id: str, status: str, timeout_s: float = 10.0) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        notes = platform.admin_order(order_id)["notifications"]
        return notes[0] if notes and notes[0]["status"] == status else None

    return wait_until(check, timeout_s, f"delivery of {order_id} to be {status}")  # type: ignore[no-any-return]


# ---- the happy path and retries ---------------------------------------------------------------------


def test_signed_webhook_retried_after_errors_until_acknowledged(
    launch: Callable[..., Platform], sim: Any, receiver: Receiver
) -> None:
    p = launch(notify_retry_scale=0.01)
    setup_airtime(p, sim, {"supA": {}})
    m = p.merchant("m1", secret=SECRETS["m1"], notify_url=receiver.url("/hooks/m1?tenant=a%20b"))
    receiver.scripts["/hooks/m1"].extend([500, 503])
    order = m.order("N-1").json()
    p.wait_order(order["order_id"])
    d = wait_delivery(p, order["order_id"], "delivered")

    calls = receiver.got("/hooks/m1")
    assert [c["answer"] for c in calls] == [500, 503, 200]
    assert all(c["problem"] is None for c in calls), [c["problem"] for c in calls]
    assert all(c["query"] == "tenant=a%20b" for c in calls)
    # One event, the same bytes every time: a merchant dedupes by event_id.
    assert len({c["raw"] for c in calls}) == 1
    body = calls[0]["body"]
    assert set(body) == {"event_id", "type", "order"}
    assert body["type"] == "order.succeeded"
    assert body["order"]["order_id"] == order["order_id"] and body["order"]["status"] == "succeeded"
    for c in calls:
        assert c["headers"]["x-event-id"] == body["event_id"]
        assert c["headers"]["x-merchant-id"] == "m1"
        assert c["headers"]["content-type"] == "application/json"
    # The first retry came quickly (2 s * 0.01 here; 2 s unscaled, SPEC: within 5 s).
    assert calls[1]["at"] - calls[0]["at"] < 2.0

    # Operators see every attempt.
    assert d["event_id"] == body["event_id"] and d["tries"] == 3
    assert [a["status_code"] for a in d["attempts"]] == [500, 503, 200]
    assert d["attempts"][0]["error"] == "HTTP 500" and d["attempts"][2]["error"] is None
    assert all(a["latency_ms"] is not None and a["at"] for a in d["attempts"])
    assert d["delivered_at"] and d["next_at"] is None

    # The merchant's event feed lists the same event, for reconciliation.
    feed = m.get("/v1/events").json()
    assert [e["event_id"] for e in feed["items"]] == [body["event_id"]]
    assert feed["items"][0]["order"] == body["order"] and feed["next_cursor"] is None
    assert m.get(f"/v1/events?after={body['event_id']}").json() == {"items": [], "next_cursor": None}


def test_failed_orders_notify_the_per_order_url(
    launch: Callable[..., Platform], sim: Any, receiver: Receiver
) -> None:
    p = launch(notify_retry_scale=0.01)
    setup_airtime(p, sim, {"supA": {"reject_accounts": ["13900139000"]}})
    m = p.merchant("m1", secret=SECRETS["m1"], notify_url=receiver.url("/default"))
    order = m.order("F-1", account="13900139000", notify_url=receiver.url("/per-order")).json()
    assert p.wait_order(order["order_id"])["status"] == "failed"
    wait_delivery(p, order["order_id"], "delivered")
    (call,) = receiver.got("/per-order")
    assert call["problem"] is None
    assert call["body"]["type"] == "order.failed" and call["body"]["order"]["failure_reason"]
    assert receiver.got("/default") == []


def test_gives_up_after_the_window_and_operators_can_retry(
    launch: Callable[..., Platform], sim: Any, receiver: Receiver
) -> None:
    # 25 h * 2e-5 = 1.8 s of retries.
    p = launch(notify_retry_scale=2e-5)
    setup_airtime(p, sim, {"supA": {}})
    m = p.merchant("m1", secret=SECRETS["m1"], notify_url=receiver.url("/down"))
    receiver.defaults["/down"] = 500
    order = m.order("G-1").json()
    d = wait_delivery(p, order["order_id"], "gave_up", timeout_s=15)
    tries = len(receiver.got("/down"))
    assert d["tries"] == tries == len(d["attempts"]) > 10
    assert {a["status_code"] for a in d["attempts"]} == {500}

    r = p.admin.get("/admin/v1/deliveries", params={"status": "gave_up"})
    assert r.status_code == 200, r.text
    assert [i["event_id"] for i in r.json()["items"]] == [d["event_id"]]
    assert r.json()["items"][0]["last_attempt"]["status_code"] == 500
    assert p.admin.get("/admin/v1/deliveries", params={"status": "pending"}).json()["items"] == []

    receiver.defaults["/down"] = 204
    r = p.admin.post(f"/admin/v1/deliveries/{d['event_id']}/retry")
    assert r.status_code == 200, r.text
    assert r.json()["status"] in ("pending", "delivered")
    done = wait_delivery(p, order["order_id"], "delivered")
    assert done["tries"] == tries + 1 and done["attempts"][-1]["status_code"] == 204
    assert {c["body"]["event_id"] for c in receiver.got("/down")} == {d["event_id"]}

    assert p.admin.post("/admin/v1/deliveries/evt_nope/retry").status_code == 404
    assert p.admin.get("/admin/v1/deliveries", params={"status": "bogus"}).status_code == 400
    anonymous = p.admin.get("/admin/v1/deliveries", headers={"Authorization": "Bearer wrong"})
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "unauthorized"


def test_a_dead_merchant_endpoint_does_not_delay_another_merchant(
    launch: Callable[..., Platform], sim: Any, receiver: Receiver
) -> None:
    # Few worker slots, so a dead endpoint holding them all would starve everyone else.
    p = launch(notify_retry_scale=0.01, worker_concurrency=6)
    p.container.notifier.sender.timeout_s = 3.0
    setup_airtime(p, sim, {"supA": {}})
    dead = p.merchant("m1", secret=SECRETS["m1"], notify_url=receiver.url("/dead"))
    live = p.merchant("m2", secret=SECRETS["m2"], notify_url=receiver.url("/live"))
    receiver.defaults["/dead"] = HANG
    for i in range(10):
        assert dead.order(f"D-{i}").status_code == 201
    wait_until(lambda: receiver.max_in_flight["/dead"] >= 4, 10, "the dead endpoint to hold 4 requests")

    started = time.monotonic()
    order = live.order("L-1").json()
    wait_until(lambda: receiver.got("/live"), 5, "the live merchant's webhook")
    assert time.monotonic() - started < 2.0, "the live merchant waited for the dead one"
    assert p.wait_order(order["order_id"])["status"] == "succeeded"
    assert receiver.max_in_flight["/dead"] == 4  # at most 4 in flight per merchant


def test_per_order_urls_on_private_addresses_are_refused_unless_allowed(
    launch: Callable[..., Platform], sim: Any, receiver: Receiver
) -> None:
    p = launch(notify_retry_scale=0.01)
    p.container.notifier.sender.allow_private = False
    setup_airtime(p, sim, {"supA": {}})
    # The merchant's default URL is set by an operator and trusted; a per-order URL comes from a request.
    m = p.merchant("m1", secret=SECRETS["m1"], notify_url=receiver.url("/operator-set"))
    refused = m.order("S-1", notify_url=receiver.url("/from-request")).json()
    trusted = m.order("S-2").json()
    d = wait_delivery(p, refused["order_id"], "gave_up")
    assert "non-public address" in d["attempts"][0]["error"]
    wait_delivery(p, trusted["order_id"], "delivered")
    assert receiver.got("/from-request") == []


def test_event_feed_needs_a_signature_and_a_known_cursor(platform: Platform) -> None:
    m = platform.merchant("m1", secret=SECRETS["m1"])
    assert m.get("/v1/events").json() == {"items": [], "next_cursor": None}
    r = m.get("/v1/events?after=evt_unknown")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = m.request("GET", "/v1/events", **{"X-Signature": "0" * 64})
    assert r.status_code == 401
