"""The `/v1/stream` route: the signed `auth` handshake, then one `StreamConnection`."""

from __future__ import annotations

import asyncio
import contextlib

import orjson
from fastapi import APIRouter, WebSocket

from topup import signing
from topup.bootstrap import Container
from topup.entrypoints.api.deps import MerchantCtx, load_merchant
from topup.entrypoints.site import site_of
from topup.entrypoints.stream.connection import StreamConnection
from topup.entrypoints.stream.events import _max_seq, event_seq
from topup.entrypoints.stream.hub import EventHub
from topup.entrypoints.stream.messages import _parse, error_message

PATH = "/v1/stream"
AUTH_TIMEOUT_S = 10.0
CLOSE_POLICY = 1008


async def _refuse(ws: WebSocket, code: str, message: str) -> None:
    with contextlib.suppress(Exception):
        await ws.send_text(orjson.dumps(error_message(code, message)).decode())
        await ws.close(CLOSE_POLICY, message[:120])


async def authenticate(ws: WebSocket, c: Container) -> tuple[MerchantCtx, str | None] | None:
    """The first frame must be a signed `auth` message; anything else is answered and closed."""
    try:
        frame = await asyncio.wait_for(ws.receive(), AUTH_TIMEOUT_S)
    except TimeoutError:
        await _refuse(ws, "unauthorized", f"no auth message within {AUTH_TIMEOUT_S:g} s")
        return None
    if frame["type"] == "websocket.disconnect":
        return None
    msg, problem = _parse(frame.get("text"))
    if msg is None or msg.get("type") != "auth":
        await _refuse(ws, "unauthorized", 'the first message must be {"type": "auth", ...}')
        return None
    merchant_id, ts, sig = msg.get("merchant_id"), msg.get("timestamp"), msg.get("signature")
    if not isinstance(merchant_id, str) or not merchant_id or len(merchant_id) > 64:
        await _refuse(ws, "unauthorized", "auth needs `merchant_id`")
        return None
    if not isinstance(ts, int | str) or isinstance(ts, bool) or not isinstance(sig, str):
        await _refuse(ws, "unauthorized", "auth needs `timestamp` (unix seconds) and `signature`")
        return None
    row = await load_merchant(c, merchant_id)
    if row is None:
        await _refuse(ws, "unauthorized", "unknown merchant or bad signature")
        return None
    try:
        signing.verify_parts(row.secret, ts, sig, "GET", PATH, b"", c.clock.now())
    except signing.SignatureError as e:
        await _refuse(ws, "unauthorized", str(e))
        return None
    after = msg.get("after_event_id")
    return MerchantCtx(row.id, row.secret, row.notify_url), after if isinstance(after, str) else None


def hub_of(ws: WebSocket) -> EventHub:
    """The app's event hub (`create_app` starts it with the app)."""
    return site_of(ws).event_hub


router = APIRouter()


@router.websocket(PATH)
async def stream(ws: WebSocket) -> None:
    c: Container = ws.app.state.container
    await ws.accept()
    auth = await authenticate(ws, c)
    if auth is None:
        return
    merchant, after = auth
    start = await _max_seq(c.db, merchant.id)
    if after is not None:
        seq = await event_seq(c.db, merchant.id, after)
        if seq is None:
            await _refuse(ws, "not_found", f"no event {after} for this merchant")
            return
        start = seq
    await ws.send_text(orjson.dumps({"type": "auth.ok"}).decode())
    await StreamConnection(ws, c, hub_of(ws), merchant).run(start)
