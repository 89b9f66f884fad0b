"""Reference client for the Topup Gateway merchant WebSocket (`GET /v1/stream`).

    python examples/stream_client.py ws://127.0.0.1:8080 MERCHANT_ID SECRET airtime.50 13800138000 ...

Authenticates, places one order per account, prints every reply and pushed event, and returns once
each placed order is final. If the connection drops it reconnects and sends `resume` with the last
event it saw, so nothing is missed; events are deduplicated by `event_id` (delivery is at least once).
Needs only the `websockets` library (>= 14).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sys
import time
import uuid
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

FINAL = {"order.succeeded", "order.failed", "order.cancelled"}


def auth_message(merchant_id: str, secret: str, now: float | None = None) -> dict[str, Any]:
    """Sign "<timestamp>\\nGET\\n/v1/stream\\n" with the merchant secret (HMAC-SHA256, hex)."""
    ts = int(time.time() if now is None else now)
    message = f"{ts}\nGET\n/v1/stream\n".encode()
    signature = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return {"type": "auth", "merchant_id": merchant_id, "timestamp": ts, "signature": signature}


async def place_orders(
    base_url: str,
    merchant_id: str,
    secret: str,
    orders: list[dict[str, Any]],
    timeout_s: float = 60.0,
    out: Any = print,
) -> dict[str, dict[str, Any]]:
    """Place `orders` (bodies as for POST /v1/orders) and wait for their final events.

    Returns {merchant_order_id: final event}. Orders the server refuses are returned as their error.
    """
    url = base_url.rstrip("/").replace("http://", "ws://").replace("https://", "wss://") + "/v1/stream"
    todo = {str(uuid.uuid4()): body for body in orders}  # request_id -> order not final yet
    by_order: dict[str, str] = {}  # order_id -> request_id
    early: dict[str, dict[str, Any]] = {}  # order_id -> final event that overtook order.accepted
    results: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    last_event_id: str | None = None

    def finish(request_id: str | None, msg: dict[str, Any]) -> None:
        body = todo.pop(request_id, None) if request_id else None
        if body is not None:
            results[body["merchant_order_id"]] = msg

    async def session() -> None:
        nonlocal last_event_id
        # proxy=None: connect directly (pass a proxy URL here if you need one).
        async with connect(url, proxy=None) as ws:
            await ws.send(json.dumps(auth_message(merchant_id, secret)))
            hello = json.loads(await ws.recv())
            if hello.get("type") != "auth.ok":
                raise PermissionError(f"stream refused: {hello}")
            if last_event_id is not None:
                await ws.send(json.dumps({"type": "resume", "after_event_id": last_event_id}))
            # (Re)send every order without a result: placing is idempotent by merchant_order_id, and a
            # replay of an order that finished while we were away comes back with its final status.
            for request_id, body in list(todo.items()):
                await ws.send(json.dumps({"type": "order", "request_id": request_id, "order": body}))
            while todo:
                msg = json.loads(await ws.recv())
                out(json.dumps(msg, ensure_ascii=False))
                if msg["type"] == "order.accepted":
                    order = msg["order"]
                    by_order[order["order_id"]] = msg["request_id"]
                    if order["order_id"] in early:
                        finish(msg["request_id"], early.pop(order["order_id"]))
                    elif order["status"] in ("succeeded", "failed", "cancelled"):
                        finish(msg["request_id"], msg)
                elif msg["type"] == "error":
                    finish(msg.get("request_id"), msg)
                elif msg["type"] in FINAL and msg["event_id"] not in seen:
                    seen.add(msg["event_id"])
                    last_event_id = msg["event_id"]
                    order_id = msg["order"]["order_id"]
                    if order_id in by_order:
                        finish(by_order[order_id], msg)
                    else:
                        early[order_id] = msg

    async def until_done() -> None:
        while True:
            try:
                await session()
                return
            except (ConnectionClosed, OSError) as e:
                out(f"connection lost ({e!r}); reconnecting")
                await asyncio.sleep(0.5)

    await asyncio.wait_for(until_done(), timeout_s)
    return results


def main(argv: list[str]) -> int:
    if len(argv) < 5:
        print(__doc__)
        return 2
    base_url, merchant_id, secret, product, *accounts = argv[1:]
    run = f"{int(time.time())}"
    orders = [
        {"merchant_order_id": f"WS-{run}-{i}", "product_code": product, "account": account}
        for i, account in enumerate(accounts, start=1)
    ]
    results = asyncio.run(place_orders(base_url, merchant_id, secret, orders))
    for merchant_order_id, result in results.items():
        print(merchant_order_id, result["type"], result.get("order", {}).get("status"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
