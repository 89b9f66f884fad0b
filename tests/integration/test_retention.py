"""Retention on both databases: real orders, webhook deliveries and callbacks made by the running
platform, aged by moving their timestamps back, then pruned. Exactly the old operational rows of
finished work go; money records, open work, recent rows and each channel's latest balance stay."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tests.support.platform import Platform, setup_airtime, wait_until
from typer.testing import CliRunner

from topup.adapters.db import tables as t
from topup.adapters.db.engine import Database
from topup.adapters.db.repos.retention import SqlRetention
from topup.clock import Clock
from topup.entrypoints.cli import app
from topup.services.ports.retention import Prunable
from topup.services.retention import DAY_S, Retention, RetentionPolicy
from topup.signing import signed_headers

# Every table's primary key: what a snapshot records.
KEYS = {
    "orders": "id",
    "attempts": "id",
    "transfers": "id",
    "postings": "id",
    "payments": "id",
    "batches": "id",
    "exceptions": "id",
    "audit_log": "id",
    "statements": "id",
    "merchants": "id",
    "ledger_accounts": "id",
    "events": "seq",
    "deliveries": "event_id",
    "delivery_attempts": "id",
    "callbacks": "id",
    "order_events": "id",
    "channel_balances": "id",
    "group_switches": "id",
    "jobs": "key",
}


def run_db(url: str, fn: Any) -> Any:
    """`fn(db)` on a database connection of the test's own (the platform runs on another loop)."""

    async def go() -> Any:
        db = Database(url, Clock(), pool_size=1)
        try:
            return await fn(db)
        finally:
            await db.dispose()

    return asyncio.run(go())


async def snapshot(db: Database) -> dict[str, set[Any]]:
    async with db.transaction() as tx:
        return {
            table: {r[0] for r in await tx.fetch_values(f"SELECT {key} FROM {table}")}
            for table, key in KEYS.items()
        }


async def keys(db: Database, sql: str, *args: Any) -> set[Any]:
    async with db.transaction() as tx:
        return {r[0] for r in await tx.fetch_values(sql, *args)}


async def age(db: Database, order_id: str, days: float) -> None:
    """Move everything an order left behind `days` into the past."""
    s = days * DAY_S
    async with db.transaction() as tx:
        for sql in (
            "UPDATE orders SET created_at = created_at - $1, updated_at = updated_at - $1,"
            " completed_at = completed_at - $1 WHERE id = $2",
            "UPDATE attempts SET started_at = started_at - $1, dispatched_at = dispatched_at - $1,"
            " finished_at = finished_at - $1 WHERE order_id = $2",
            "UPDATE order_events SET at = at - $1 WHERE order_id = $2",
            "UPDATE events SET created_at = created_at - $1 WHERE order_id = $2",
            "UPDATE delivery_attempts SET at = at - $1"
            " WHERE event_id IN (SELECT event_id FROM deliveries WHERE order_id = $2)",
            "UPDATE deliveries SET created_at = created_at - $1, delivered_at = delivered_at - $1"
            " WHERE order_id = $2",
            "UPDATE callbacks SET received_at = received_at - $1"
            " WHERE ref IN (SELECT ref FROM attempts WHERE order_id = $2)",
            "UPDATE transfers SET created_at = created_at - $1 WHERE order_id = $2",
        ):
            await tx.exec(sql, s, order_id)


async def add_rows(db: Database, now: float) -> dict[str, set[int]]:
    """Rows the services make rarely or slowly, inserted directly: an order still processing (with an
    old callback and timeline), balance checks, group switches and a job due in ten days."""
    old = now - 200 * DAY_S
    async with db.transaction() as tx:
        c = tx.conn
        await c.execute(
            t.orders.insert().values(
                id="ord_open",
                merchant_id="m1",
                merchant_order_id="OPEN-1",
                request_hash="h",
                business_type="mobile_airtime",
                product_code="airtime.50",
                account="13800138000",
                face_value=5000,
                price=4980,
                status="processing",
                funding="balance",
                attempt_count=1,
                created_at=old,
                updated_at=old,
            )  # fmt: skip
        )
        await c.execute(
            t.attempts.insert().values(
                order_id="ord_open",
                no=1,
                ref="ord_open-1",
                channel_code="supA",
                status="pending",
                dispatch_state="sent",
                started_at=old,
                supplier_ref="ord_open-1",
            )  # fmt: skip
        )
        await c.execute(
            t.callbacks.insert().values(
                channel_code="supA", ref="ord_open-1", status="processing", received_at=old
            )
        )
        await c.execute(t.order_events.insert().values(order_id="ord_open", kind="callback", at=old))
        ids: dict[str, set[int]] = {"gone_balances": set(), "gone_switches": set()}

        async def balance(code: str, ok: bool, days_ago: float, gone: bool) -> None:
            r = await c.execute(
                t.channel_balances.insert().values(
                    channel_code=code,
                    ok=ok,
                    amount=100 if ok else None,
                    currency="CNY",
                    error=None if ok else "timeout",
                    checked_at=now - days_ago * DAY_S,
                )  # fmt: skip
            )
            if gone:
                ids["gone_balances"].add(int(r.inserted_primary_key[0]))

        # chX: its latest check failed (kept) and its latest good one is older (kept too).
        await balance("chX", True, 300, gone=True)
        await balance("chX", False, 250, gone=True)
        await balance("chX", True, 200, gone=False)
        await balance("chX", False, 150, gone=False)
        # chY: only old checks; the newest stays.
        await balance("chY", True, 120, gone=True)
        await balance("chY", True, 110, gone=False)
        # chZ: a recent check makes the old ones go, a recent failed one stays.
        await balance("chZ", True, 100, gone=True)
        await balance("chZ", True, 1, gone=False)
        for days_ago, gone in ((100, True), (95, True), (10, False)):
            r = await c.execute(
                t.group_switches.insert().values(
                    group_code="air",
                    from_channel="supA",
                    to_channel="supB",
                    reason="failover",
                    at=now - days_ago * DAY_S,
                )  # fmt: skip
            )
            if gone:
                ids["gone_switches"].add(int(r.inserted_primary_key[0]))
        await c.execute(
            t.jobs.insert().values(
                kind="notify",
                key="notify:keep-me",
                payload={"event_id": "keep-me"},
                run_at=now + 10 * DAY_S,
                tries=0,
                created_at=old,
            )  # fmt: skip
        )
    return ids


@pytest.fixture
def hook() -> Iterator[str]:
    """A merchant webhook endpoint that accepts everything."""
    from topup.adapters.suppliers.simulator import BackgroundServer

    async def ok(_request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    server = BackgroundServer(
        Starlette(routes=[Route("/hook", ok, methods=["POST"])]), "127.0.0.1", 0
    ).start()
    try:
        yield f"{server.url}/hook"
    finally:
        server.stop()


def post_callback(platform: Platform, body: dict[str, Any]) -> httpx.Response:
    raw = orjson.dumps(body)
    path = "/callbacks/topup-json/supA"
    headers = signed_headers("sim-secret", "POST", path, raw, time.time())
    headers["Content-Type"] = "application/json"
    return httpx.post(platform.url + path, content=raw, headers=headers, trust_env=False)


def test_prune_removes_exactly_the_old_operational_rows_of_finished_work(
    platform: Platform, sim: Any, hook: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = platform.database_url
    setup_airtime(platform, sim, {"supA": {}})
    m = platform.merchant(notify_url=hook)
    names = ["timeline-old", "old", "old-pending-delivery", "recent"]
    ids = {n: m.order(f"RET-{n}").json()["order_id"] for n in names}
    for oid in ids.values():
        assert platform.wait_order(oid)["status"] == "succeeded"

    async def delivered(db: Database) -> set[Any]:
        return await keys(db, "SELECT order_id FROM deliveries WHERE status = 'delivered'")

    wait_until(lambda: run_db(url, delivered) == set(ids.values()), what="every webhook delivered")
    now = time.time()

    async def arrange(db: Database) -> dict[str, set[int]]:
        await age(db, ids["timeline-old"], 500)
        for n in ("old", "old-pending-delivery"):
            await age(db, ids[n], 100)
        async with db.transaction() as tx:  # an operator asked for it again: still being delivered
            await tx.exec(
                "UPDATE deliveries SET status = 'pending', next_at = $1 WHERE order_id = $2",
                now + 10 * DAY_S,
                ids["old-pending-delivery"],
            )
        return await add_rows(db, now)

    inserted = run_db(url, arrange)
    gone_orders = [ids["timeline-old"], ids["old"]]
    final_old = [*gone_orders, ids["old-pending-delivery"]]

    async def expected_gone(db: Database) -> dict[str, set[Any]]:
        def of(orders: list[str]) -> str:
            return "(" + ", ".join(f"'{o}'" for o in orders) + ")"

        return {
            "delivery_attempts": await keys(
                db,
                "SELECT id FROM delivery_attempts WHERE event_id IN"
                f" (SELECT event_id FROM deliveries WHERE order_id IN {of(gone_orders)})",
            ),
            "deliveries": await keys(
                db, f"SELECT event_id FROM deliveries WHERE order_id IN {of(gone_orders)}"
            ),
            "events": await keys(db, f"SELECT seq FROM events WHERE order_id IN {of(gone_orders)}"),
            "callbacks": await keys(
                db,
                "SELECT id FROM callbacks WHERE ref IN"
                f" (SELECT ref FROM attempts WHERE order_id IN {of(final_old)})",
            ),
            "order_events": await keys(
                db, "SELECT id FROM order_events WHERE order_id = $1", ids["timeline-old"]
            ),
            "channel_balances": inserted["gone_balances"],
            "group_switches": inserted["gone_switches"],
        }

    gone = run_db(url, expected_gone)
    # Every kind has something to prune, several batches' worth where the flow made enough rows.
    assert all(gone[k.value] for k in Prunable), gone
    assert len(gone["order_events"]) > 2 and len(gone["delivery_attempts"]) == 2

    policy = RetentionPolicy(retention_days=90, timeline_retention_days=400, batch_size=2)
    before = run_db(url, snapshot)
    assert "prune" in before["jobs"]  # ensured when the platform started

    # A dry run counts exactly what would go and deletes nothing.
    counts = run_db(url, lambda db: Retention(db, policy).prune(dry_run=True))
    assert counts == {k: len(v) for k, v in gone.items()}
    assert _unchanged(before, run_db(url, snapshot))

    batches: list[tuple[str, int, int]] = []
    real_prune = SqlRetention.prune

    async def spy(self: SqlRetention, kind: Prunable, cutoff: float, limit: int) -> int:
        n = await real_prune(self, kind, cutoff, limit)
        batches.append((kind.value, limit, n))
        return n

    monkeypatch.setattr(SqlRetention, "prune", spy)
    counts = run_db(url, lambda db: Retention(db, policy).prune())
    assert counts == {k: len(v) for k, v in gone.items()}
    after = run_db(url, snapshot)
    vanished = {table: before[table] - after[table] for table in KEYS}
    assert vanished == {table: gone.get(table, set()) for table in KEYS}

    # Batches of at most 2 rows, each kind until a short batch; several for the timeline.
    for kind in Prunable:
        sizes = [n for k, limit, n in batches if k == kind.value and limit == 2]
        assert sum(sizes) == len(gone[kind.value]) and all(n <= 2 for n in sizes)
        assert sizes[-1] < 2 and all(n == 2 for n in sizes[:-1])
    assert len([b for b in batches if b[0] == "order_events"]) >= 2

    # Kept: the pending delivery with its event and tries, the open order's callback and timeline,
    # the recent order's trail, the job due later; and the books still balance.
    assert {"notify:keep-me", "prune"} <= after["jobs"]
    assert platform.ledger_check()["balanced"]
    again = run_db(url, lambda db: Retention(db, policy).prune())
    assert again == {k.value: 0 for k in Prunable}

    # A supplier replays its success callback for a pruned final order: nothing changes but the
    # inbox noting it (one callback row, one timeline line).
    async def attempt_ref(db: Database) -> str:
        (ref,) = await keys(db, "SELECT supplier_ref FROM attempts WHERE order_id = $1", ids["old"])
        return str(ref)

    ref = run_db(url, attempt_ref)
    story = platform.admin_order(ids["old"])
    balance = m.get("/v1/balance").json()
    r = post_callback(platform, {"ref": ref, "status": "success", "supplier_order_id": "S-replay"})
    assert r.status_code == 200, r.text
    replayed = run_db(url, snapshot)
    for table in KEYS:
        if table in ("callbacks", "order_events", "jobs", "channel_balances"):
            continue
        assert replayed[table] == after[table], table
    assert len(replayed["callbacks"] - after["callbacks"]) == 1
    later = platform.admin_order(ids["old"])
    assert later["status"] == story["status"] == "succeeded"
    assert later["attempts"] == story["attempts"] and later["ledger"] == story["ledger"]
    assert later["exceptions"] == story["exceptions"] == []
    assert m.get("/v1/balance").json() == balance
    assert platform.ledger_check()["balanced"]
    m.close()


def _unchanged(before: dict[str, set[Any]], now: dict[str, set[Any]]) -> bool:
    """Nothing that was there before is gone (the running platform may add rows meanwhile)."""
    return all(before[table] <= now[table] for table in KEYS)


def test_cli_prune_prints_counts_and_dry_run_deletes_nothing(database_url: str) -> None:
    now = time.time()

    async def arrange(db: Database) -> None:
        async with db.transaction() as tx:
            for days_ago in (200, 150, 100, 1):
                await tx.conn.execute(
                    t.group_switches.insert().values(
                        group_code="air", to_channel="supB", reason="failover", at=now - days_ago * DAY_S
                    )
                )

    run_db(database_url, arrange)
    env = {
        "TOPUP_DATABASE_URL": database_url,
        "TOPUP_PRUNE_BATCH_SIZE": "2",
        "COLUMNS": "200",
        "NO_COLOR": "1",
    }

    async def switches(db: Database) -> int:
        return len(await keys(db, "SELECT id FROM group_switches"))

    dry = CliRunner().invoke(app, ["prune", "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "would delete" in dry.output and "batches of 2" in dry.output
    assert re.search(r"group_switches\s*│\s*3\s*│", dry.output), dry.output
    assert re.search(r"total\s*│\s*3\s*│", dry.output), dry.output
    assert run_db(database_url, switches) == 4

    done = CliRunner().invoke(app, ["prune"], env=env)
    assert done.exit_code == 0, done.output
    assert "deleted" in done.output
    assert re.search(r"group_switches\s*│\s*3\s*│", done.output), done.output
    for kind in Prunable:
        if kind != Prunable.GROUP_SWITCHES:
            assert re.search(rf"{kind.value}\s*│\s*0\s*│", done.output), done.output
    assert run_db(database_url, switches) == 1
