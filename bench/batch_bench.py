"""How long a 10,000-row batch takes to place (and to pay with balance), on SQLite and PostgreSQL.

    .venv/bin/python bench/batch_bench.py [--rows 10000] [--pg-dsn postgresql://postgres@127.0.0.1:5432/postgres]

Runs a real server on loopback without the worker (so paying only enqueues the route jobs) and prints
wall-clock times. PostgreSQL is skipped when it is not reachable. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from topup.signing import signed_headers  # noqa: E402

ADMIN = "bench-admin-token-0123456789"
SECRET = "bench-merchant-secret-0001"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _signed(client: httpx.Client, method: str, path: str, body: object | None) -> httpx.Response:
    raw = orjson.dumps(body) if body is not None else b""
    h = signed_headers(SECRET, method, path, raw, time.time())
    h.update({"X-Merchant-Id": "bench", "Content-Type": "application/json"})
    return client.request(method, path, content=raw, headers=h)


def run(database_url: str, rows: int) -> dict[str, float]:
    from topup import bootstrap
    from topup.adapters.suppliers.simulator import BackgroundServer
    from topup.config import Settings
    from topup.entrypoints.api.app import create_app

    port = _port()
    settings = Settings(database_url=database_url, admin_token=ADMIN, port=port, run_worker=False)
    c = bootstrap.build(settings)
    app = create_app(c, worker=False)
    server = BackgroundServer(app, "127.0.0.1", port).start(timeout_s=30)
    try:
        admin = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=120)
        admin.put(
            "/admin/v1/products/airtime.50",
            json={
                "business_type": "mobile_airtime",
                "brand": "auto",
                "name": "50",
                "face_value": 5000,
                "price": 4980,
            },
        ).raise_for_status()
        admin.put(
            "/admin/v1/channels/sup",
            json={
                "name": "sup",
                "protocol": "topup-json",
                "base_url": "http://127.0.0.1:9",
                "secret": "bench-channel-secret",
                "timeout_s": 5,
                "max_wait_s": 10,
                "supports_query": True,
                "enabled": True,
            },
        ).raise_for_status()
        admin.put(
            "/admin/v1/groups/air",
            json={
                "business_type": "mobile_airtime",
                "brand": None,
                "strategy": "priority",
                "sticky": True,
                "recovery_s": 300,
                "members": [{"channel": "sup", "priority": 1, "weight": 1, "costs": {}}],
            },
        ).raise_for_status()
        admin.put("/admin/v1/merchants/bench", json={"name": "bench", "secret": SECRET}).raise_for_status()
        admin.post(
            "/admin/v1/merchants/bench/credits", json={"amount": 4980 * rows, "reference": "bench"}
        ).raise_for_status()
        prefixes = ["138", "139", "150", "188", "135", "136", "137", "158"]
        body = {
            "merchant_batch_id": f"bench-{uuid.uuid4().hex[:8]}",
            "rows": [
                {"product_code": "airtime.50", "account": f"{prefixes[i % 8]}{i:08d}"} for i in range(rows)
            ],
        }
        m = httpx.Client(base_url=server.url, timeout=120)
        t0 = time.perf_counter()
        r = _signed(m, "POST", "/v1/batches", body)
        place_s = time.perf_counter() - t0
        assert r.status_code == 201, r.text[:500]
        batch = r.json()
        t0 = time.perf_counter()
        r = _signed(m, "POST", f"/v1/batches/{batch['batch_id']}/payment", {"method": "balance"})
        pay_s = time.perf_counter() - t0
        assert r.status_code == 201, r.text[:500]
        return {"valid_rows": batch["valid_rows"], "place_s": place_s, "pay_s": pay_s}
    finally:
        server.stop()


def _pg_database(dsn: str) -> tuple[str, str] | None:
    import asyncpg

    name = f"topup_bench_{uuid.uuid4().hex[:8]}"

    async def create() -> bool:
        try:
            conn = await asyncpg.connect(dsn, timeout=3)
        except (OSError, asyncpg.PostgresError):
            return False
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return True

    if not asyncio.run(create()):
        return None
    return name, f"{dsn.rsplit('/', 1)[0]}/{name}"


def _pg_drop(dsn: str, name: str) -> None:
    import asyncpg

    async def drop() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument(
        "--pg-dsn",
        default=os.environ.get("TOPUP_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        res = run(f"sqlite:///{d}/bench.db", args.rows)
        print(
            f"sqlite     place {res['valid_rows']} rows: {res['place_s']:.2f} s   pay: {res['pay_s']:.2f} s"
        )
    pg = _pg_database(args.pg_dsn)
    if pg is None:
        print("postgresql not reachable; skipped")
        return
    try:
        res = run(pg[1], args.rows)
        print(
            f"postgresql place {res['valid_rows']} rows: {res['place_s']:.2f} s   pay: {res['pay_s']:.2f} s"
        )
    finally:
        _pg_drop(args.pg_dsn, pg[0])


if __name__ == "__main__":
    main()
