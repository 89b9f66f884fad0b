"""The load generator: a merchant placing signed orders, in its own process.

    python -m bench.loadgen spec.json out.json

spec: {"urls": [...], "merchant_id", "secret", "orders", "rate" (0 = flat out), "concurrency",
"prefix", "product_code", "accounts": [...]}. It round-robins the API processes over keep-alive
connections and writes one record per order: [merchant_order_id, scheduled_at, sent_at, answered_at,
http_status, order_id]. With a rate the schedule is open loop (order i is due at start + i/rate) and
intake latency is measured from the *scheduled* time, so a slow platform cannot hide its queueing
(no coordinated omission).

The signature is computed here from SPEC section 0, not with the platform's own helper.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sys
import time
from typing import Any

import httpx
import orjson


def sign(secret: str, method: str, target: str, body: bytes, now: float) -> dict[str, str]:
    ts = str(int(now))
    msg = f"{ts}\n{method}\n{target}\n".encode() + body
    return {"X-Timestamp": ts, "X-Signature": hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()}


class Merchant:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        conc = int(spec.get("concurrency", 64))
        limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
        self.clients = [
            httpx.AsyncClient(base_url=u, limits=limits, timeout=60.0, trust_env=False) for u in spec["urls"]
        ]
        self.records: list[list[Any]] = []
        self.retries = 0

    async def place(self, i: int, scheduled_at: float) -> None:
        spec = self.spec
        accounts = spec["accounts"]
        mid = f"{spec['prefix']}-{i:07d}"
        body = orjson.dumps(
            {
                "merchant_order_id": mid,
                "product_code": spec["product_code"],
                "account": accounts[i % len(accounts)],
            }
        )
        sent = time.time()
        headers = sign(spec["secret"], "POST", "/v1/orders", body, sent)
        headers["X-Merchant-Id"] = spec["merchant_id"]
        headers["Content-Type"] = "application/json"
        client = self.clients[i % len(self.clients)]
        status, order_id, tries = 0, None, 0
        while tries < 3:
            tries += 1
            try:
                r = await client.post("/v1/orders", content=body, headers=headers)
            except (httpx.ReadError, httpx.RemoteProtocolError, httpx.ConnectError) as e:
                # A keep-alive connection the server closed as we reused it: a merchant retries, and
                # the same merchant_order_id makes the retry safe (idempotent intake).
                print(f"loadgen: {mid}: {type(e).__name__}: {e} (try {tries})", file=sys.stderr)
                self.retries += 1
                continue
            except httpx.HTTPError as e:
                print(f"loadgen: {mid}: {type(e).__name__}: {e}", file=sys.stderr)
                break
            status = r.status_code
            if status in (200, 201):
                order_id = orjson.loads(r.content)["order_id"]
            break
        self.records.append([mid, scheduled_at, sent, time.time(), status, order_id])

    async def run(self) -> dict[str, Any]:
        n = int(self.spec["orders"])
        rate = float(self.spec.get("rate") or 0)
        conc = int(self.spec.get("concurrency", 64))
        start = time.time()
        if rate > 0:
            # Open loop: order i is due at start + i / rate whatever happened to earlier ones.
            sem = asyncio.Semaphore(conc * 4)
            tasks = []

            async def one(i: int, due: float) -> None:
                async with sem:
                    await self.place(i, due)

            for i in range(n):
                due = start + i / rate
                delay = due - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(i, due)))
            await asyncio.gather(*tasks)
        else:
            counter = iter(range(n))

            async def closed_loop() -> None:
                for i in counter:
                    await self.place(i, time.time())

            await asyncio.gather(*(closed_loop() for _ in range(conc)))
        end = time.time()
        for c in self.clients:
            await c.aclose()
        return {
            "started_at": start,
            "finished_at": end,
            "cpu_s": time.process_time(),
            "retries": self.retries,
            "records": self.records,
        }


def main() -> None:
    spec_path, out_path = sys.argv[1], sys.argv[2]
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        pass
    result = asyncio.run(Merchant(spec).run())
    with open(out_path, "wb") as f:
        f.write(orjson.dumps(result))


if __name__ == "__main__":
    main()
