"""A rate-limited channel holds its rate across two real `topup worker` processes (SPEC section 7),
on SQLite and on PostgreSQL: the limit lives in the database, not in a process."""

from __future__ import annotations

import concurrent.futures
import json
from pathlib import Path

import pytest

from tests.integration.test_supplier_operations import max_in_window, run_db
from tests.support.platform import sim_channel
from tests.support.processes import all_final, platform_client, serve, worker

pytestmark = pytest.mark.slow

RATE = 3
ORDERS = 15


def test_two_workers_hold_a_rate_limited_channel_to_its_rate(database_url: str, sim, tmp_path: Path) -> None:
    api, port = serve(database_url, tmp_path / "api.log", worker=False)
    # Few route slots per worker, so neither can take the whole burst: both dispatch to the channel.
    env = {"TOPUP_LOG_LEVEL": "INFO", "TOPUP_WORKER_DISPATCH_CONCURRENCY": "4"}
    workers = [worker(database_url, tmp_path / f"worker{i}.log", port, **env) for i in range(2)]
    p = platform_client(port, database_url)
    try:
        p.product("airtime.50")
        p.channel("supA", sim_channel(sim, "supA"), rate_limit_per_s=RATE, timeout_s=2.0, max_wait_s=4.0)
        p.group("air", "mobile_airtime", [{"channel": "supA"}])
        m = p.merchant(balance=10_000_000)

        def place(i: int) -> str:
            r = m.order(f"RL-{i}", account="13800138000")
            assert r.status_code == 201, r.text
            return str(r.json()["order_id"])

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(place, range(ORDERS)))
        orders = all_final(p, ids, timeout_s=60)
        assert all([a["status"] for a in o["attempts"]] == ["succeeded"] for o in orders.values()), orders
        starts = [float(r.dispatched_at) for r in run_db(p, "SELECT dispatched_at FROM attempts")]
        assert len(starts) == ORDERS
        assert max_in_window(starts) <= RATE, sorted(starts)
        assert max(starts) - min(starts) >= ORDERS / RATE - 1, "the burst went out at the channel's rate"
        assert p.ledger_check()["balanced"]
    finally:
        for w in workers:
            w.stop()
        api.stop()
        p.admin.close()
    # Both workers dispatched to the channel (each logs the timeline events it commits).
    for i in range(2):
        lines = [
            json.loads(x) for x in (tmp_path / f"worker{i}.log").read_text().splitlines() if x.startswith("{")
        ]
        assert any(x.get("event") == "dispatch" for x in lines), f"worker {i} dispatched nothing"
