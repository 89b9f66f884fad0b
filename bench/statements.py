"""How long a supplier statement of 100,000 rows takes to reconcile, on SQLite and PostgreSQL.

    .venv/bin/python bench/statements.py [--rows 100000] [--discrepancies 1000] [--sqlite-only]
                                         [--pg-dsn postgresql://postgres@127.0.0.1:5432/postgres]

Builds a database with `--rows` attempts on one channel (succeeded ones with their cost postings,
a fifth failed), written in bulk straight into the tables (placing 100,000 orders through the engine
would measure the engine, not reconciliation). Then, against a real server on loopback: posts the
statement the supplier would send (every attempt, `--discrepancies` of them altered or missing, plus as
many unknown refs), posts the same file again (200, the stored statement), and downloads the
discrepancies CSV. Prints wall-clock seconds; nothing is asserted (SPEC 8 asks for under 10 s).
PostgreSQL is skipped when it is not reachable.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.batch_bench import _pg_database, _pg_drop, _port  # noqa: E402

ADMIN = "bench-admin-token-0123456789"
CHANNEL = "sup"
DAY = 1_714_521_600.0  # 2024-05-01T00:00:00Z
COST = 4900
CHUNK = 5_000


async def _build(database_url: str, rows: int) -> list[tuple[str, str, int]]:
    """`rows` succeeded/failed orders with one attempt each on CHANNEL, dispatched across DAY; their
    statement rows (supplier_ref, status, amount)."""
    from topup.adapters.db.engine import Database, migrate
    from topup.clock import Clock

    db = Database(database_url, Clock(), pool_size=2)
    await migrate(db)
    statement: list[tuple[str, str, int]] = []
    try:
        for start in range(0, rows, CHUNK):
            orders, attempts, transfers = [], [], []
            for i in range(start, min(rows, start + CHUNK)):
                order_id = f"ord_bench{i:09d}"
                ref = f"{order_id}-1"
                at = DAY + i * 86_000 / rows
                ok = i % 5 != 0
                orders.append(
                    (
                        order_id,
                        "bench",
                        f"b{i}",
                        "h",
                        "mobile_airtime",
                        "airtime.50",
                        f"138{i:08d}",
                        5000,
                        4980,
                        "succeeded" if ok else "failed",
                        "balance",
                        "air",
                        ref if ok else None,
                        at,
                        at + 1,
                    )
                )
                attempts.append(
                    (
                        order_id,
                        1,
                        ref,
                        CHANNEL,
                        "air",
                        "succeeded" if ok else "failed",
                        "accepted",
                        at,
                        at,
                        at + 1,
                        ref,
                    )
                )
                if ok:
                    transfers.append((f"trf_bench{i:09d}", "cost", ref, "bench", order_id, COST, at + 1))
                statement.append((ref, "success" if ok else "failed", COST if ok else 0))
            async with db.transaction() as tx:
                await tx.executemany(
                    "INSERT INTO orders (id, merchant_id, merchant_order_id, request_hash, business_type,"
                    " product_code, account, face_value, price, status, funding, group_code,"
                    " succeeded_ref, is_probe, attempt_count, created_at, updated_at, completed_at) VALUES"
                    " ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, false, 1, $14, $15, $15)",
                    orders,
                )
                await tx.executemany(
                    "INSERT INTO attempts (order_id, no, ref, channel_code, group_code, status,"
                    " dispatch_state, started_at, dispatched_at, finished_at, supplier_ref)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                    attempts,
                )
                await tx.executemany(
                    "INSERT INTO transfers (id, kind, reference, merchant_id, order_id, amount, created_at)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    transfers,
                )
    finally:
        await db.dispose()
    return statement


def _csv(rows: list[tuple[str, str, int]], discrepancies: int, seed: int = 7) -> bytes:
    rng = random.Random(seed)
    rows = list(rows)
    for i in rng.sample(range(len(rows)), min(discrepancies, len(rows))):
        ref, status, amount = rows[i]
        rows[i] = (
            ref,
            "success" if status == "failed" else status,
            amount + 10 if status == "success" else COST,
        )
    for i in rng.sample(range(len(rows)), min(discrepancies, len(rows)) // 4):
        rows[i] = ("", "", 0)  # dropped: missing there
    lines = ["supplier_ref,status,amount"]
    lines += [
        f"{ref},{status},{amount if status == 'success' else ''}" for ref, status, amount in rows if ref
    ]
    lines += [f"UNKNOWN{i:08d},success,{COST}" for i in range(discrepancies)]
    return ("\n".join(lines) + "\n").encode()


def run(database_url: str, rows: int, discrepancies: int) -> dict[str, float]:
    from topup import bootstrap, logs
    from topup.adapters.suppliers.simulator import BackgroundServer
    from topup.config import Settings
    from topup.entrypoints.api.app import create_app

    t0 = time.perf_counter()
    statement = asyncio.run(_build(database_url, rows))
    build_s = time.perf_counter() - t0
    port = _port()
    settings = Settings(
        database_url=database_url, admin_token=ADMIN, port=port, run_worker=False, log_level="WARNING"
    )
    logs.configure(settings)
    c = bootstrap.build(settings)
    app = create_app(c, worker=False)
    server = BackgroundServer(app, "127.0.0.1", port).start(timeout_s=30)
    try:
        admin = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=600)
        admin.put(
            f"/admin/v1/channels/{CHANNEL}",
            json={
                "name": CHANNEL,
                "protocol": "topup-json",
                "base_url": "http://127.0.0.1:9",
                "secret": "bench-channel-secret",
                "timeout_s": 5,
                "max_wait_s": 10,
                "supports_query": True,
                "enabled": True,
            },
        ).raise_for_status()
        body = _csv(statement, discrepancies)
        params = {"from": "2024-05-01", "to": "2024-05-02"}
        path = f"/admin/v1/channels/{CHANNEL}/statements"
        headers = {"Content-Type": "text/csv"}
        t0 = time.perf_counter()
        r = admin.post(path, params=params, content=body, headers=headers)
        post_s = time.perf_counter() - t0
        assert r.status_code == 201, r.text[:500]
        s = r.json()
        t0 = time.perf_counter()
        again = admin.post(path, params=params, content=body, headers=headers)
        replay_s = time.perf_counter() - t0
        assert again.status_code == 200, again.text[:500]
        t0 = time.perf_counter()
        download = admin.get(f"/admin/v1/statements/{s['statement_id']}/discrepancies.csv")
        csv_s = time.perf_counter() - t0
        assert download.status_code == 200
        return {
            "rows": s["rows"],
            "matched": s["matched"],
            "discrepancies": len(s["discrepancies"]),
            "megabytes": len(body) / 1e6,
            "build_s": build_s,
            "post_s": post_s,
            "replay_s": replay_s,
            "csv_s": csv_s,
        }
    finally:
        server.stop()


def _print(name: str, res: dict[str, float]) -> None:
    print(
        f"{name:<10} statement of {res['rows']:,} rows ({res['megabytes']:.1f} MB,"
        f" {res['matched']:,} matched, {res['discrepancies']:,} discrepancies):"
        f" reconciled in {res['post_s']:.2f} s;"
        f" same file again {res['replay_s']:.2f} s; discrepancies.csv {res['csv_s']:.2f} s"
        f"  (building the database took {res['build_s']:.1f} s)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--discrepancies", type=int, default=1_000)
    ap.add_argument("--sqlite-only", action="store_true")
    ap.add_argument(
        "--pg-dsn",
        default=os.environ.get("TOPUP_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        _print("sqlite", run(f"sqlite:///{d}/bench.db", args.rows, args.discrepancies))
    if args.sqlite_only:
        return
    pg = _pg_database(args.pg_dsn)
    if pg is None:
        print("postgresql not reachable; skipped")
        return
    try:
        _print("postgresql", run(pg[1], args.rows, args.discrepancies))
    finally:
        _pg_drop(args.pg_dsn, pg[0])


if __name__ == "__main__":
    main()
