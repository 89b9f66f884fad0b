"""The merchant WebSocket (`GET /v1/stream`) over real loopback connections, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import importlib.util
import json
import secrets
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import start_platform
from tests.support.platform import Platform, SignedClient, setup_airtime, wait_until
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parents[2]
SECRET = "merchant-secret-0001"
FINAL = ("order.succeeded", "order.failed", "order.cancelled")


# ---- fixtures ---------------------------------------------------------------------------------------


def launch(database_url: str, ws: str) -> tuple[Any, Platform]:
    """start_platform with uvicorn serving WebSockets through the given implementation."""
    return start_platform(database_url, ws=ws)


@pytest.fixture
def ws_platform(database_url: str) -> Iterator[Platform]:
    server, p = launch(database_url, "websockets-sansio")
    try:
        yield p
    finally:
        p.admin.close()
        server.stop()


# ---- a small client ---------------------------------------------------------------------------------


def sign_stream(secret: str, ts: int) -> str:
    return hmac.new(secret.encode(), f"{ts}\nGET\n/v1/stream\n".encode(), hashlib.sha256).hexdigest()


class Stream:
    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn

    def send(self, message: Any) -> None:
        self.conn.send(message if isinstance(message, str | bytes) else json.dumps(message))

    def recv(self, timeout: float = 10.0) -> dict[str, Any]:
        return json.loads(self.conn.recv(timeout=timeout))  # type: ignore[no-any-return]

    def recv_type(self, *types: str, timeout: float = 10.0) -> dict[str, Any]:
        """The next message of one of `types`; others in between are a test failure."""
        msg = self.recv(timeout)
        assert msg["type"] in types, msg
        return msg

    def events(self, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < count:
            msg = self.recv(max(0.1, deadline - time.monotonic()))
            assert msg["type"] in FINAL, msg
            out.append(msg)
        return out

    def quiet(self) -> None:
        """Nothing else is queued: a ping's pong is the very next message."""
        self.send({"type": "ping"})
        assert self.recv() == {"type": "pong"}


@contextmanager
def stream(
    platform: Platform, merchant_id: str = "m1", secret: str = SECRET, auth: bool = True, **kw: Any
) -> Iterator[Stream]:
    url = platform.url.replace("http://", "ws://") + "/v1/stream"
    with connect(url, proxy=None, open_timeout=10, **kw) as conn:
        s = Stream(conn)
        if auth:
            ts = int(time.time())
            s.send(
                {
                    "type": "auth",
                    "merchant_id": merchant_id,
                    "timestamp": ts,
                    "signature": sign_stream(secret, ts),
                }
            )
            assert s.recv() == {"type": "auth.ok"}
        yield s


def auth_frame(merchant_id: str, secret: str, ts: int) -> dict[str, Any]:
    return {"type": "auth", "merchant_id": merchant_id, "timestamp": ts, "signature": sign_stream(secret, ts)}


def order_body(merchant_order_id: str, account: str = "13800138000", **kw: Any) -> dict[str, Any]:
    return {"merchant_order_id": merchant_order_id, "product_code": "airtime.50", "account": account, **kw}


def event_ids(m: SignedClient) -> list[str]:
    r = m.get("/v1/events?limit=500")
    assert r.status_code == 200, r.text
    return [e["event_id"] for e in r.json()["items"]]


# ---- placing and pushing ----------------------------------------------------------------------------


def test_orders_over_the_stream_with_http_errors_and_idempotency(ws_platform: Platform, sim: Any) -> None:
    setup_airtime(ws_platform, sim, {"supA": {}})
    m = ws_platform.merchant()
    with stream(ws_platform) as s:
        s.send({"type": "ping"})
        assert s.recv() == {"type": "pong"}

        s.send({"type": "order", "request_id": "r1", "order": order_body("WS-1")})
        accepted = s.recv_type("order.accepted")
        assert accepted["request_id"] == "r1" and accepted["created"] is True
        order = accepted["order"]
        assert order["status"] == "processing" and order["carrier"] == "cmcc"
        pushed = s.recv_type("order.succeeded")
        assert pushed["order"]["order_id"] == order["order_id"]
        assert pushed["order"]["status"] == "succeeded"
        assert pushed["event_id"].startswith("evt_")

        # Same body again: the same order, nothing charged twice.
        s.send({"type": "order", "request_id": "r2", "order": order_body("WS-1")})
        replay = s.recv_type("order.accepted")
        assert replay["request_id"] == "r2" and replay["created"] is False
        assert replay["order"]["order_id"] == order["order_id"]

        cases = {
            "r3": (order_body("WS-1", account="13900139000"), "idempotency_conflict"),
            "r4": ({**order_body("WS-2"), "product_code": "nope.1"}, "unknown_product"),
            "r5": (order_body("WS-3", account="12345"), "invalid_account"),
            "r6": ({"merchant_order_id": "WS-4"}, "invalid_request"),
            "r7": (order_body("bad id with spaces"), "invalid_request"),
        }
        for rid, (body, _) in cases.items():
            s.send({"type": "order", "request_id": rid, "order": body})
        replies = {}
        for _ in cases:
            msg = s.recv_type("error")
            replies[msg["request_id"]] = msg["error"]
        for rid, (_, code) in cases.items():
            assert replies[rid]["code"] == code, (rid, replies[rid])
            assert replies[rid]["message"]
        assert any(d["field"] == "product_code" for d in replies["r6"]["details"])

        # Placing over HTTP gives the same answers.
        r = m.order("WS-1", account="13900139000")
        assert r.status_code == 409 and r.json()["error"]["code"] == "idempotency_conflict"
        s.quiet()

    assert m.get("/v1/balance").json() == {"available": 1_000_000 - 4980, "held": 0, "currency": "CNY"}
    assert ws_platform.ledger_check()["balanced"] is True


def test_orders_placed_over_http_are_pushed_only_to_their_merchant(ws_platform: Platform, sim: Any) -> None:
    setup_airtime(ws_platform, sim, {"supA": {"reject_accounts": ["13900139000"]}})
    m1 = ws_platform.merchant("m1")
    ws_platform.merchant("m2", secret="other-secret-0002")
    with stream(ws_platform, "m1") as s1, stream(ws_platform, "m2", secret="other-secret-0002") as s2:
        ok = m1.order("H-1").json()
        failed = m1.order("H-2", account="13900139000").json()
        got = {e["order"]["order_id"]: e for e in s1.events(2)}
        assert got[ok["order_id"]]["type"] == "order.succeeded"
        assert got[failed["order_id"]]["type"] == "order.failed"
        assert got[failed["order_id"]]["order"]["failure_reason"]
        # The same events, in the same order, as the merchant's event feed.
        assert [e["event_id"] for e in got.values()] == event_ids(m1)
        s1.quiet()
        s2.quiet()  # m2 saw nothing of m1's orders


def test_events_made_by_another_process_reach_the_stream(ws_platform: Platform, sim: Any) -> None:
    setup_airtime(ws_platform, sim, {"supA": {}})
    m = ws_platform.merchant()
    with stream(ws_platform) as s:
        order = m.order("P-1").json()
        first = s.recv_type("order.succeeded")

        # Another process (its own engine, no in-process hook here) writes an event for the order.
        event_id = asyncio.run(emit_elsewhere(ws_platform.database_url, order["order_id"]))
        started = time.monotonic()
        other = s.recv_type("order.succeeded", timeout=5)
        assert other["event_id"] == event_id != first["event_id"]
        assert time.monotonic() - started < 2.0
        s.quiet()


async def emit_elsewhere(database_url: str, order_id: str) -> str:
    from topup.adapters.db.engine import Database
    from topup.clock import Clock
    from topup.services import outbox

    db = Database(database_url, Clock())
    try:
        async with db.transaction() as tx:
            return await outbox.emit_final(tx, order_id)
    finally:
        await db.dispose()


# ---- resume -----------------------------------------------------------------------------------------


def test_resume_after_a_disconnect_misses_nothing_and_repeats_nothing(
    ws_platform: Platform, sim: Any
) -> None:
    setup_airtime(ws_platform, sim, {"supA": {}})
    m = ws_platform.merchant()
    with stream(ws_platform) as s:
        orders = [m.order(f"R-{i}").json()["order_id"] for i in range(3)]
        seen = s.events(3)
        assert sorted(e["order"]["order_id"] for e in seen) == sorted(orders)
    last_seen = seen[0]["event_id"]  # pretend the client only processed the first one

    # While disconnected, more orders finish.
    more = [m.order(f"R-{i}").json()["order_id"] for i in range(3, 6)]
    for oid in more:
        ws_platform.wait_order(oid)
    expected = event_ids(m)
    assert len(expected) == 6

    with stream(ws_platform) as s:
        s.send({"type": "resume", "after_event_id": last_seen})
        replayed = s.events(5)
        assert [e["event_id"] for e in replayed] == expected[1:]
        # ... then live, with nothing repeated.
        live_order = m.order("R-live").json()["order_id"]
        live = s.recv_type("order.succeeded")
        assert live["order"]["order_id"] == live_order
        s.quiet()

    # The auth message may carry after_event_id itself (no window between auth.ok and resume).
    ts = int(time.time())
    url = ws_platform.url.replace("http://", "ws://") + "/v1/stream"
    with connect(url, proxy=None) as conn:
        s = Stream(conn)
        s.send(
            {
                "type": "auth",
                "merchant_id": "m1",
                "timestamp": ts,
                "signature": sign_stream(SECRET, ts),
                "after_event_id": expected[-1],
            }
        )
        assert s.recv() == {"type": "auth.ok"}
        assert s.events(1)[0]["event_id"] == live["event_id"]
        s.quiet()


def test_a_slow_reader_falls_behind_without_growing_server_memory(ws_platform: Platform) -> None:
    from topup.entrypoints import stream as stream_module

    ws_platform.merchant()
    total = 1500
    asyncio.run(insert_events(ws_platform.database_url, "m1", 1))
    url = ws_platform.url.replace("http://", "ws://") + "/v1/stream"
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((ws_platform.url.split("//")[1].split(":")[0], int(ws_platform.url.rsplit(":", 1)[1])))
    with connect(url, sock=sock, proxy=None, compression=None, max_queue=1) as conn:
        s = Stream(conn)
        ts = int(time.time())
        s.send(auth_frame("m1", SECRET, ts))
        assert s.recv() == {"type": "auth.ok"}
        # Events appear while the client reads nothing.
        asyncio.run(insert_events(ws_platform.database_url, "m1", total))
        hub = ws_platform.site.event_hub

        def connection() -> Any:
            subs = hub.subscribers.get("m1")
            return next(iter(subs)) if subs else None

        conn_state = wait_until(connection, what="the server-side connection")
        wait_until(lambda: conn_state.outbox.full(), what="the send queue to fill")
        time.sleep(0.3)
        assert conn_state.outbox.qsize() <= stream_module.SEND_QUEUE
        pulled = conn_state.cursor.high
        assert pulled < total * 0.6, "the server read ahead of a reader that reads nothing"
        # Now read everything: in order, nothing missing, nothing twice.
        got = [s.recv(timeout=15)["event_id"] for _ in range(total)]
        s.quiet()
    assert got == asyncio.run(all_event_ids(ws_platform.database_url, "m1"))[1:]


async def insert_events(database_url: str, merchant_id: str, count: int) -> None:
    from topup.adapters.db import tables as t
    from topup.adapters.db.engine import Database
    from topup.adapters.db.helpers import new_id
    from topup.clock import Clock

    db = Database(database_url, Clock())
    try:
        async with db.transaction() as tx:
            for _ in range(count):
                eid = new_id("evt", tx.now)
                # Incompressible padding, so a few events fill the socket buffers.
                order = {"order_id": f"ord_{eid}", "status": "succeeded", "pad": secrets.token_hex(4000)}
                await tx.conn.execute(
                    t.events.insert().values(
                        id=eid,
                        merchant_id=merchant_id,
                        order_id=order["order_id"],
                        type="order.succeeded",
                        payload={"event_id": eid, "type": "order.succeeded", "order": order},
                        created_at=tx.now,
                    )
                )
    finally:
        await db.dispose()


async def all_event_ids(database_url: str, merchant_id: str) -> list[str]:
    from sqlalchemy import select

    from topup.adapters.db import tables as t
    from topup.adapters.db.engine import Database
    from topup.clock import Clock

    db = Database(database_url, Clock())
    try:
        async with db.transaction() as tx:
            rows = await tx.conn.execute(
                select(t.events.c.id).where(t.events.c.merchant_id == merchant_id).order_by(t.events.c.seq)
            )
            return [r.id for r in rows]
    finally:
        await db.dispose()


# ---- bad input --------------------------------------------------------------------------------------


def test_malformed_frames_get_an_error_and_keep_the_connection(ws_platform: Platform) -> None:
    ws_platform.merchant()
    bad: list[tuple[Any, str, Any]] = [
        ("not json", "invalid_request", None),
        ("[1, 2]", "invalid_request", None),
        ({"no": "type"}, "invalid_request", None),
        ({"type": "dance"}, "invalid_request", None),
        ({"type": "order", "order": order_body("X-1")}, "invalid_request", None),
        ({"type": "order", "request_id": "q1", "order": "nope"}, "invalid_request", "q1"),
        ({"type": "order", "request_id": "q2", "order": {}}, "invalid_request", "q2"),
        ({"type": "resume"}, "invalid_request", None),
        ({"type": "resume", "after_event_id": "evt_unknown"}, "not_found", None),
        ({"type": "auth", "merchant_id": "m1"}, "invalid_request", None),
        (b"\x00\x01binary", "invalid_request", None),
        ("x" * 70_000, "invalid_request", None),
    ]
    with stream(ws_platform) as s:
        for frame, code, rid in bad:
            s.send(frame)
            msg = s.recv_type("error")
            assert msg["error"]["code"] == code, (frame, msg)
            assert msg["error"]["message"]
            assert msg.get("request_id") == rid, (frame, msg)
        s.quiet()


def test_wrong_auth_is_refused_and_closed(ws_platform: Platform) -> None:
    ws_platform.merchant()
    ts = int(time.time())
    attempts: list[Any] = [
        {"type": "auth", "merchant_id": "m1", "timestamp": ts, "signature": sign_stream("wrong-secret", ts)},
        {
            "type": "auth",
            "merchant_id": "m1",
            "timestamp": ts - 1000,
            "signature": sign_stream(SECRET, ts - 1000),
        },
        {"type": "auth", "merchant_id": "nobody", "timestamp": ts, "signature": sign_stream(SECRET, ts)},
        {"type": "auth", "timestamp": ts, "signature": sign_stream(SECRET, ts)},
        {"type": "auth", "merchant_id": "m1", "timestamp": ts},
        {"type": "ping"},
        {"type": "order", "request_id": "r1", "order": order_body("A-1")},
        "not json",
    ]
    for first in attempts:
        with stream(ws_platform, auth=False) as s:
            s.send(first)
            msg = s.recv_type("error")
            assert msg["error"]["code"] == "unauthorized", (first, msg)
            with pytest.raises(ConnectionClosed) as closed:
                s.recv(timeout=5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


# ---- uvicorn's WebSocket implementations ------------------------------------------------------------


@pytest.mark.parametrize(
    "ws",
    [
        "auto",
        # uvicorn's legacy implementation (deprecated, warns); `topup serve` uses websockets-sansio.
        pytest.param("websockets", marks=pytest.mark.filterwarnings("ignore::Warning")),
    ],
)
def test_stream_under_other_uvicorn_ws_implementations(tmp_path: Path, sim: Any, ws: str) -> None:
    server, p = launch(f"sqlite:///{tmp_path}/topup.db", ws)
    try:
        setup_airtime(p, sim, {"supA": {}})
        p.merchant()
        with stream(p) as s:
            s.send({"type": "order", "request_id": "r1", "order": order_body("U-1")})
            assert s.recv_type("order.accepted")["request_id"] == "r1"
            assert s.recv_type("order.succeeded")["order"]["merchant_order_id"] == "U-1"
            s.quiet()
    finally:
        p.admin.close()
        server.stop()


# ---- the reference client ---------------------------------------------------------------------------


def load_example() -> Any:
    spec = importlib.util.spec_from_file_location("stream_client", ROOT / "examples" / "stream_client.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reference_client_places_orders_and_prints_results(ws_platform: Platform, sim: Any) -> None:
    # One channel: generous supplier clocks, so a loaded machine cannot turn a slow reply into a failure.
    setup_airtime(
        ws_platform, sim, {"supA": {"reject_accounts": ["13900139000"]}}, timeout_s=5.0, max_wait_s=10.0
    )
    m = ws_platform.merchant()
    earlier = m.order("C-0").json()  # placed earlier over HTTP: the client's replay reports it
    ws_platform.wait_order(earlier["order_id"])
    client = load_example()
    lines: list[str] = []
    orders = [
        order_body("C-0"),
        order_body("C-1"),
        order_body("C-2", account="13900139000"),
        order_body("C-3", account="12345"),
    ]
    results = asyncio.run(
        client.place_orders(ws_platform.url, "m1", SECRET, orders, timeout_s=20, out=lines.append)
    )
    assert results["C-1"]["type"] == "order.succeeded"
    assert results["C-2"]["type"] == "order.failed"
    assert results["C-3"]["type"] == "error" and results["C-3"]["error"]["code"] == "invalid_account"
    assert results["C-0"]["type"] == "order.accepted" and results["C-0"]["order"]["status"] == "succeeded"
    assert any('"order.succeeded"' in line for line in lines)


def test_reference_client_in_the_docs_is_the_example_file() -> None:
    doc = (ROOT / "docs" / "stream-client.md").read_text(encoding="utf-8")
    code = (ROOT / "examples" / "stream_client.py").read_text(encoding="utf-8")
    assert code.strip() in doc
