"""Limits: oversized HTTP bodies are refused early (413), hostile WebSocket frames change nothing.

Over real loopback connections on SQLite and PostgreSQL. The HTTP tests speak raw HTTP/1.1 on a socket,
so they control exactly what is sent (a Content-Length with no body, chunked bodies) and when.
Ordinary malformed stream messages (bad JSON, unknown types, 64 KiB app limit, bad auth) are covered in
test_stream.py; these are the protocol-level ones.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from tests.support.platform import Platform
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from topup.entrypoints.api.app import MAX_BODY_BYTES
from topup.signing import signature

MIB = 1024 * 1024
SECRET = "merchant-secret-0001"


# ---- raw HTTP -------------------------------------------------------------------------------------------


def _open(platform: Platform) -> socket.socket:
    u = urlsplit(platform.url)
    s = socket.create_connection((u.hostname, u.port), timeout=10)
    return s


def _read_response(s: socket.socket, timeout_s: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    s.settimeout(timeout_s)
    data = b""

    def more() -> bool:
        nonlocal data
        chunk = s.recv(65536)
        data += chunk
        return bool(chunk)

    while b"\r\n\r\n" not in data and more():
        pass
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while not rest.endswith(b"0\r\n\r\n") and more():
            rest = data.partition(b"\r\n\r\n")[2]
        body = b""
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            body, rest = body + rest[:size], rest[size + 2 :]
        return status, headers, body
    length = int(headers.get("content-length", "0"))
    while len(rest) < length and more():
        rest = data.partition(b"\r\n\r\n")[2]
    return status, headers, rest


def _head(method: str, path: str, extra: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    lines += [f"{k}: {v}" for k, v in extra.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _signed(path: str, body: bytes = b"") -> dict[str, str]:
    ts = str(int(time.time()))
    return {
        "X-Merchant-Id": "m1",
        "X-Timestamp": ts,
        "X-Signature": signature(SECRET, ts, "POST", path, body),
    }


def _assert_413(status: int, body: bytes) -> None:
    assert status == 413, body[:300]
    err = json.loads(body)["error"]
    assert err["code"] == "invalid_request" and str(MAX_BODY_BYTES) in err["message"]


def test_declared_oversized_body_is_refused_before_it_is_sent(platform: Platform) -> None:
    """Content-Length over 4 MiB: 413 at once, without waiting for (or reading) a single body byte."""
    platform.merchant()
    for path in ("/v1/orders", "/v1/batches", "/admin/v1/products/p1", "/callbacks/topup-json/supA"):
        with _open(platform) as s:
            s.sendall(_head("POST", path, {"Content-Length": str(MAX_BODY_BYTES + 1), **_signed(path)}))
            started = time.monotonic()
            status, _, body = _read_response(s, timeout_s=5)
            assert time.monotonic() - started < 3, "answered without waiting for the body"
        _assert_413(status, body)
    assert platform.ledger_check()["balanced"]


def test_chunked_body_over_the_limit_is_cut_off_with_413(platform: Platform) -> None:
    """No Content-Length: the body is counted as it streams in and refused once it passes 4 MiB."""
    m = platform.merchant()
    path = "/v1/orders"
    chunk = b"x" * (256 * 1024)
    sent = 0
    with _open(platform) as s:
        s.sendall(_head("POST", path, {"Transfer-Encoding": "chunked", **_signed(path)}))
        try:
            while sent <= MAX_BODY_BYTES + len(chunk):
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
            s.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may stop reading once it has answered
        status, _, body = _read_response(s)
    _assert_413(status, body)
    assert m.get("/v1/orders").json()["items"] == []
    assert m.get("/v1/balance").json()["held"] == 0


def test_bodies_up_to_the_limit_get_past_it(platform: Platform) -> None:
    """A body of exactly 4 MiB is read (and then refused for what it is, not for its size)."""
    platform.merchant()
    path = "/v1/orders"
    body = b"{" + b" " * (MAX_BODY_BYTES - 2) + b"}"
    with _open(platform) as s:
        s.sendall(_head("POST", path, {"Content-Length": str(len(body)), **_signed(path, body)}))
        s.sendall(body)
        status, _, answer = _read_response(s)
    assert status == 400, answer[:300]


def test_chunked_body_under_the_limit_is_accepted(platform: Platform, sim: Any) -> None:
    from tests.support.platform import setup_airtime

    setup_airtime(platform, sim, {"supA": {}})
    m = platform.merchant()
    path = "/v1/orders"
    body = json.dumps(
        {"merchant_order_id": "CH-1", "product_code": "airtime.50", "account": "13800138000"}
    ).encode()
    with _open(platform) as s:
        s.sendall(_head("POST", path, {"Transfer-Encoding": "chunked", **_signed(path, body)}))
        for i in range(0, len(body), 7):
            part = body[i : i + 7]
            s.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        s.sendall(b"0\r\n\r\n")
        status, _, answer = _read_response(s)
    assert status == 201, answer
    assert platform.wait_order(json.loads(answer)["order_id"])["status"] == "succeeded"
    assert m.get("/v1/balance").json()["held"] == 0


# ---- WebSocket frames --------------------------------------------------------------------------------------


def _ws_url(platform: Platform) -> str:
    return platform.url.replace("http://", "ws://") + "/v1/stream"


def _auth(ts: int | None = None) -> str:
    ts = ts or int(time.time())
    sig = signature(SECRET, ts, "GET", "/v1/stream", b"")
    return json.dumps({"type": "auth", "merchant_id": "m1", "timestamp": ts, "signature": sig})


@pytest.fixture
def authed(platform: Platform) -> Iterator[Any]:
    platform.merchant()
    with connect(_ws_url(platform), proxy=None, open_timeout=10, max_size=None) as ws:
        ws.send(_auth())
        assert json.loads(ws.recv(timeout=10)) == {"type": "auth.ok"}
        yield ws


def _closed_code(ws: Any) -> int | None:
    with pytest.raises(ConnectionClosed) as closed:
        for _ in range(5):
            ws.recv(timeout=10)
    return closed.value.rcvd.code if closed.value.rcvd is not None else None


def _still_serving(platform: Platform) -> None:
    """A fresh connection authenticates and answers a ping: one bad client did not hurt the server."""
    with connect(_ws_url(platform), proxy=None, open_timeout=10) as ws:
        ws.send(_auth())
        assert json.loads(ws.recv(timeout=10)) == {"type": "auth.ok"}
        ws.send(json.dumps({"type": "ping"}))
        assert json.loads(ws.recv(timeout=10)) == {"type": "pong"}


def _nothing_created(platform: Platform) -> None:
    from tests.support.platform import SignedClient

    m = SignedClient(platform.url, "m1", SECRET)
    try:
        assert m.get("/v1/orders").json()["items"] == []
        assert m.get("/v1/balance").json()["held"] == 0
    finally:
        m.close()


def test_invalid_utf8_in_a_text_frame_closes_that_connection_only(platform: Platform, authed: Any) -> None:
    # A text frame must be UTF-8: the protocol layer refuses it (1007), the app never sees it.
    authed.send(b'{"type": "ping", "x": "\xff\xfe"}', text=True)
    assert _closed_code(authed) == 1007
    _still_serving(platform)
    _nothing_created(platform)


def test_frame_over_the_protocol_size_limit_closes_with_1009(platform: Platform, authed: Any) -> None:
    authed.send("x" * (17 * MIB))  # uvicorn's ws_max_size is 16 MiB
    assert _closed_code(authed) == 1009
    _still_serving(platform)
    _nothing_created(platform)


HOSTILE_FRAMES = [
    "[" * 5000 + "]" * 5000,  # nesting deeper than any JSON parser should recurse
    '{"type": "order", "request_id": "r1", "order": {"merchant_order_id": 1e999}}',
    '{"type": "order", "request_id": "r2", "order": {"merchant_order_id": "\\ud800"}}',
    '{"type": "order", "request_id": "r3", "order": {"merchant_order_id": "A-1", "product_code": '
    '"airtime.50", "account": "13800138000", "extra": {"k": "' + "v" * 50_000 + '"}}}',
    '{"type": "order", "request_id": "r4", "order": {"merchant_order_id": "A-\\u0000", '
    '"product_code": "airtime.50", "account": "13800138000"}}',
    '{"type": "order", "request_id": "r5", "order": {"merchant_order_id": "A-5", '
    '"product_code": "airtime.50", "account": "13800138000", "notify_url": "http://127.0.0.1/x"}}',
    '{"type": "ping", "type": "order", "request_id": "r6"}',
    '{"type": "resume", "after_event_id": {"$gt": ""}}',
    '{"type": "order", "request_id": ' + "9" * 400 + ', "order": {}}',
    '{"type": null}',
    "\u0000",
    "",
]


def test_hostile_frames_get_an_error_and_change_nothing(platform: Platform, authed: Any) -> None:
    platform.container.settings.allow_private_notify_urls = False
    for frame in HOSTILE_FRAMES:
        authed.send(frame)
        msg = json.loads(authed.recv(timeout=10))
        assert msg["type"] == "error", (frame[:80], msg)
        assert msg["error"]["code"] in ("invalid_request", "not_found"), (frame[:80], msg)
        authed.send(json.dumps({"type": "ping"}))
        assert json.loads(authed.recv(timeout=10)) == {"type": "pong"}, "the connection stays usable"
    _nothing_created(platform)


def test_binary_or_garbage_first_frame_is_refused_and_closed(platform: Platform) -> None:
    platform.merchant()
    for first in [
        b"\x00\x01\x02",
        "\u0000",
        "{" * 10_000,
        json.dumps({"type": "auth", "merchant_id": ["m1"]}),
    ]:
        with connect(_ws_url(platform), proxy=None, open_timeout=10) as ws:
            ws.send(first)
            msg = json.loads(ws.recv(timeout=10))
            assert msg["type"] == "error" and msg["error"]["code"] == "unauthorized", (first, msg)
            assert _closed_code(ws) == 1008
    _still_serving(platform)
