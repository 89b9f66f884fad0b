"""The simulator speaking `topup-json` (SPEC section 2): signed both ways with the channel's `secret`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
import orjson
from fastapi import FastAPI, Request, Response

from topup.signing import SignatureError, signed_headers, verify

from . import failing_front_end, gibberish, json_object_or_reason, reply_delay

if TYPE_CHECKING:
    from topup.adapters.suppliers.simulator.engine import Channel, SimOrder, Simulator

NAME = "topup-json"


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _error(status: int, code: str, message: str, details: Any = None) -> Response:
    return _json({"error": {"code": code, "message": message, "details": details}}, status)


def target_of(request: Request) -> str:
    """The request target as the client sent it (and signed it)."""
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string") or b""
    return (raw_path + (b"?" + query if query else b"")).decode("latin-1")


def _parse_dispatch(body: bytes) -> dict[str, Any] | str:
    """The dispatch payload, or a message saying what is wrong with it."""
    payload = json_object_or_reason(body)
    if isinstance(payload, str):
        return payload
    ref, callback_url = payload.get("ref"), payload.get("callback_url")
    if not isinstance(ref, str) or not ref:
        return "ref is required"
    if not isinstance(callback_url, str):
        return "callback_url is required"
    try:
        scheme = httpx.URL(callback_url).scheme
    except httpx.InvalidURL:
        scheme = ""
    if scheme not in ("http", "https"):
        return "callback_url must be an http(s) URL"
    face_value = payload.get("face_value")
    payload["amount"] = face_value if isinstance(face_value, int) else 0
    return payload


def register(app: FastAPI, sim: Simulator, now: Callable[[], float]) -> None:
    async def authenticated(request: Request, code: str) -> tuple[Channel, bytes] | Response:
        channel = sim.channels.get(code)
        if channel is None or channel.behaviour.protocol != NAME:
            return _error(404, "not_found", f"no simulated {NAME} channel {code!r}")
        body = await request.body()
        try:
            verify(channel.behaviour.secret, request.headers, request.method, target_of(request), body, now())
        except SignatureError as exc:
            return _error(401, "unauthorized", str(exc))
        return channel, body

    @app.post("/sim/{code}/orders")
    async def dispatch(code: str, request: Request) -> Response:
        checked = await authenticated(request, code)
        if isinstance(checked, Response):
            return checked
        channel, body = checked
        payload = _parse_dispatch(body)
        if isinstance(payload, str):
            return _error(400, "invalid_request", payload)
        channel.dispatches[payload["ref"]] += 1
        refused = await failing_front_end(
            channel, orjson.dumps({"error": {"code": "simulated_http_status", "message": "simulated"}})
        )
        if refused is not None:
            return refused
        order, is_new = sim.take_order(channel, payload)
        if is_new:
            await sim.start_callbacks(channel, order)
        await reply_delay(channel)
        if channel.behaviour.malformed_reply:
            return gibberish()
        return _json(order.reply)

    @app.get("/sim/{code}/orders/{ref:path}")
    async def query(code: str, ref: str, request: Request) -> Response:
        checked = await authenticated(request, code)
        if isinstance(checked, Response):
            return checked
        channel, _ = checked
        return _json(sim.answer_query(channel, ref))

    @app.get("/sim/{code}/balance")
    async def balance(code: str, request: Request) -> Response:
        checked = await authenticated(request, code)
        if isinstance(checked, Response):
            return checked
        channel, _ = checked
        amount = channel.behaviour.balance
        return _json({"amount": 10**12 if amount is None else amount, "currency": "CNY"})


def callback(channel: Channel, order: SimOrder, status: str, now: float) -> tuple[bytes, dict[str, str]]:
    code = "00" if status == "success" else channel.behaviour.failure_code
    body = orjson.dumps(
        {
            "ref": order.ref,
            "supplier_order_id": order.supplier_order_id,
            "status": status,
            "code": code,
            "message": "success" if status == "success" else "simulated failure",
        }
    )
    target = httpx.URL(order.callback_url).raw_path.decode("ascii")
    headers = signed_headers(channel.behaviour.secret, "POST", target, body, now)
    headers["Content-Type"] = "application/json"
    return body, headers
