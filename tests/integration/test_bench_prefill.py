"""`bench/prefill.py` writes finished orders shaped like the platform's own, with balanced books; and the
history indexes' migration (0007) goes down and up again on both databases."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import asyncpg
import pytest
from bench.prefill import HISTORY_MERCHANTS, prefill
from tests.support.platform import start_platform

from topup.adapters.db.engine import Database, migrate
from topup.clock import Clock

N = 200
GENERATED_ID = re.compile(r"^ord_[0-9a-f]{23}$")  # topup.ids.new_id("ord", now)


def _configure(admin: Any) -> None:
    """What the bench's `configure` sets up: a product, three channels in a group, a merchant with money."""
    r = admin.put(
        "/admin/v1/products/airtime.50",
        json={
            "business_type": "mobile_airtime",
            "brand": "auto",
            "name": "A50",
            "face_value": 5000,
            "price": 4980,
        },
    )
    assert r.status_code in (200, 201), r.text
    for code in ("supA", "supB", "supC"):
        r = admin.put(
            f"/admin/v1/channels/{code}",
            json={
                "name": code,
                "protocol": "topup-json",
                "base_url": f"http://127.0.0.1:9/sim/{code}",
                "secret": "sim-secret",
                "timeout_s": 1.0,
                "max_wait_s": 2.0,
                "supports_query": True,
                "enabled": True,
            },
        )
        assert r.status_code in (200, 201), r.text
    members = [
        {"channel": c, "priority": i, "weight": 1, "costs": {}}
        for i, c in enumerate(["supA", "supB", "supC"], 1)
    ]
    r = admin.put(
        "/admin/v1/groups/air",
        json={
            "business_type": "mobile_airtime",
            "brand": None,
            "strategy": "priority",
            "sticky": False,
            "recovery_s": 300,
            "members": members,
        },
    )
    assert r.status_code in (200, 201), r.text
    r = admin.put(
        "/admin/v1/merchants/bench-batch",
        json={"name": "bench-batch", "secret": "s" * 24, "notify_url": "http://127.0.0.1:9/hooks"},
    )
    assert r.status_code in (200, 201), r.text
    r = admin.post("/admin/v1/merchants/bench-batch/credits", json={"amount": 10**9, "reference": "init"})
    assert r.status_code in (200, 201), r.text


async def _shape(url: str) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        q = conn.fetch
        return {
            "orders": await q("SELECT * FROM orders WHERE merchant_id LIKE 'history-%'"),
            "attempts": await q("SELECT * FROM attempts ORDER BY order_id, no"),
            "timeline": await q("SELECT order_id, kind, attempt_no, at FROM order_events ORDER BY id"),
            "callbacks": await q("SELECT * FROM callbacks"),
            "events": await q("SELECT * FROM events"),
            "deliveries": await q("SELECT * FROM deliveries"),
            "delivery_attempts": await q("SELECT * FROM delivery_attempts"),
            "transfers": await q("SELECT * FROM transfers WHERE merchant_id LIKE 'history-%'"),
            "unbalanced": await conn.fetchval(
                "SELECT count(*) FROM (SELECT transfer_id FROM postings GROUP BY transfer_id"
                " HAVING sum(amount) <> 0) x"
            ),
            "accounts": {r["id"]: r["balance"] for r in await q("SELECT id, balance FROM ledger_accounts")},
        }
    finally:
        await conn.close()


async def _indexes(url: str) -> set[tuple[str, str]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")
        return {(r["indexname"], r["indexdef"]) for r in rows}
    finally:
        await conn.close()


@pytest.mark.pg
def test_prefill_writes_finished_orders_like_the_platform_and_the_books_balance(pg_url: str) -> None:
    server, platform = start_platform(pg_url)
    try:
        _configure(platform.admin)
        now = time.time()
        indexes_before = asyncio.run(_indexes(pg_url))
        # Two loaders, two chunks, and the drop-and-rebuild of indexes a large prefill does.
        result = asyncio.run(
            prefill(pg_url, N, template_merchant="bench-batch", now=now, chunk=120, drop_indexes_from=0)
        )
        assert result.orders == N and set(result.sizes) >= {"orders", "postings", "order_events"}
        s = asyncio.run(_shape(pg_url))
        check = platform.ledger_check()
        assert asyncio.run(_indexes(pg_url)) == indexes_before
    finally:
        platform.admin.close()
        server.stop()

    orders = s["orders"]
    assert len(orders) == N
    assert {o["merchant_id"] for o in orders} == {f"history-{i}" for i in range(1, HISTORY_MERCHANTS + 1)}
    assert all(o["status"] in ("succeeded", "failed") and o["completed_at"] is not None for o in orders)
    failed = [o for o in orders if o["status"] == "failed"]
    assert 0 < len(failed) < N / 4
    # A year of history, never colliding with the ids the platform generates.
    assert all(now - 365 * 86_400 <= o["created_at"] < o["completed_at"] <= now for o in orders)
    assert not any(GENERATED_ID.match(o["id"]) for o in orders)
    assert len({o["id"] for o in orders}) == N

    attempts: dict[str, list[Any]] = {}
    for a in s["attempts"]:
        attempts.setdefault(a["order_id"], []).append(a)
    timeline: dict[str, list[str]] = {}
    for e in s["timeline"]:
        timeline.setdefault(e["order_id"], []).append(e["kind"])
    kinds: dict[str, set[str]] = {}
    for tr in s["transfers"]:
        kinds.setdefault(tr["order_id"], set()).add(tr["kind"])
    for o in orders:
        mine = attempts[o["id"]]
        assert len(mine) == o["attempt_count"] in (1, 2)
        assert all(a["status"] in ("succeeded", "failed") and a["finished_at"] for a in mine)
        steps = timeline[o["id"]]
        assert steps[0] == "created" and steps.count("dispatch") == len(mine)
        if o["status"] == "succeeded":
            assert mine[-1]["status"] == "succeeded" and o["succeeded_ref"] == mine[-1]["ref"]
            assert steps[-2:] == ["attempt_succeeded", "order_succeeded"]
            assert kinds[o["id"]] == {"hold", "capture"}
        else:
            assert all(a["status"] == "failed" for a in mine)
            assert steps[-1] == "order_failed"
            assert kinds[o["id"]] == {"hold", "release"}
    accepted = [a for a in s["attempts"] if a["dispatch_state"] == "accepted"]
    assert {(c["channel_code"], c["ref"]) for c in s["callbacks"]} == {
        (a["channel_code"], a["ref"]) for a in accepted
    }
    assert sorted(e["order_id"] for e in s["events"]) == sorted(o["id"] for o in orders)
    assert all(e["type"] == f"order.{json.loads(e['payload'])['order']['status']}" for e in s["events"])
    assert len(s["deliveries"]) == N and all(d["status"] == "delivered" for d in s["deliveries"])
    assert len(s["delivery_attempts"]) == N

    # Books: every transfer balanced, the ledger check passes, each merchant's money adds up.
    assert s["unbalanced"] == 0
    assert check["balanced"] is True, check
    captured = sum(o["price"] for o in orders if o["status"] == "succeeded")
    deposits = sum(tr["amount"] for tr in s["transfers"] if tr["kind"] == "deposit")
    held = [v for k, v in s["accounts"].items() if k.startswith("merchant:history-") and k.endswith(":held")]
    available = [
        v for k, v in s["accounts"].items() if k.startswith("merchant:history-") and k.endswith(":available")
    ]
    assert held == [0] * HISTORY_MERCHANTS
    assert sum(available) == deposits - captured > 0
    assert s["accounts"]["platform:revenue"] == captured


def test_history_indexes_migration_goes_down_and_up(empty_database_url: str) -> None:
    from alembic import command
    from sqlalchemy import inspect

    from topup.adapters.db.migrations import _alembic_config

    names = {
        "orders": "ix_orders_open_status",
        "attempts": "ix_attempts_pending_channel",
        "deliveries": "ix_deliveries_retried",
        "callbacks": "ix_callbacks_received_at",
    }

    async def run() -> list[set[str]]:
        db = Database(empty_database_url, Clock())
        seen = []

        def indexes(sync_conn: Any) -> set[str]:
            insp = inspect(sync_conn)
            return {ix["name"] for table in names for ix in insp.get_indexes(table)} & set(names.values())

        def step(sync_conn: Any, to: str) -> set[str]:
            cfg = _alembic_config(sync_conn)
            if to == "0006":
                command.downgrade(cfg, to)
            else:
                command.upgrade(cfg, to)
            return indexes(sync_conn)

        try:
            await migrate(db)
            for to in ("0006", "head"):
                if db.is_postgres:
                    async with db.engine.execution_options(isolation_level="READ COMMITTED").begin() as conn:
                        seen.append(await conn.run_sync(step, to))
                else:
                    async with db.engine.connect() as conn:
                        seen.append(await conn.run_sync(step, to))
                        await conn.commit()
        finally:
            await db.dispose()
        return seen

    down, up = asyncio.run(run())
    assert down == set()
    assert up == set(names.values())
