"""The load generator: a merchant placing signed orders, in its own process.

    python -m bench.loadgen spec.json out.json

spec: {"urls": [...], "merchant_id", "secret", "orders", "rate" (0 = flat out), "concurrency",
"prefix", "product_code", "accounts": [...]}. It round-robins the API processes over keep-alive
connections and writes one record per order: [merchant_order_id, scheduled_at, sent_at, answered_at,
http_status, order_id]. With a rate the schedule is open loop (order i is due at start + i/rate) and
intake latency is measured from the *scheduled* time, so a slow platform cannot hide its queueing
(no coordinated omission). It uses aiohttp: the load generator shares the machine with the platform,
and aiohttp costs a fraction of httpx's CPU per request (httpcore's pool scans every connection on
each request), which leaves that CPU to the processes being measured.

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

import aiohttp
import orjson


def sign(secret: str, method: str, target: str, body: bytes, now: float) -> dict[str, str]:
    ts = str(int(now))
    msg = f"{ts}\n{method}\n{target}\n".encode() + body
    return {"X-Timestamp": ts, "X-Signature": hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()}


class Merchant:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.conc = int(spec.get("concurrency", 64))
        self.sessions: list[aiohttp.ClientSession] = []
        self.records: list[list[Any]] = []
        self.retries = 0

    def open(self) -> None:
        timeout = aiohttp.ClientTimeout(total=60.0)
        self.sessions = [
            aiohttp.ClientSession(
                base_url=u,
                connector=aiohttp.TCPConnector(limit=self.conc, limit_per_host=self.conc),
                timeout=timeout,
                trust_env=False,
            )
            for u in self.spec["urls"]
        ]

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
        session = self.sessions[i % len(self.sessions)]
        status, order_id, tries = 0, None, 0
        while tries < 3:
            tries += 1
            try:
                async with session.post("/v1/orders", data=body, headers=headers) as r:
                    status = r.status
                    raw = await r.read()
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as e:
                # A keep-alive connection the server closed as we reused it: a merchant retries, and
                # the same merchant_order_id makes the retry safe (idempotent intake).
                print(f"loadgen: {mid}: {type(e).__name__}: {e} (try {tries})", file=sys.stderr)
                self.retries += 1
                status = 0
                continue
            except (aiohttp.ClientError, TimeoutError) as e:
                print(f"loadgen: {mid}: {type(e).__name__}: {e}", file=sys.stderr)
                status = 0
                break
            if status in (200, 201):
                order_id = orjson.loads(raw)["order_id"]
            break
        self.records.append([mid, scheduled_at, sent, time.time(), status, order_id])

    async def run(self) -> dict[str, Any]:
        n = int(self.spec["orders"])
        rate = float(self.spec.get("rate") or 0)
        conc = self.conc
        self.open()
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
        for session in self.sessions:
            await session.close()
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
