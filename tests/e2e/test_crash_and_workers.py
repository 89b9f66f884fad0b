"""Real `topup` processes: kill -9 mid-flight then restart; two workers sharing PostgreSQL."""

from __future__ import annotations

import concurrent.futures
import json
import time
from pathlib import Path

import pytest

from tests.support.platform import setup_airtime, sim_stats
from tests.support.processes import all_final, platform_client, serve, worker

pytestmark = pytest.mark.slow


def place_many(m, prefix: str, n: int) -> list[str]:
    def one(i: int) -> str:
        r = m.order(f"{prefix}-{i}", account=f"138{i:08d}"[:11])
        assert r.status_code == 201, r.text
        return r.json()["order_id"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(n)))


def assert_dispatched_at_most_once(sim) -> dict[str, int]:
    counts: dict[str, int] = {}
    for ch in sim_stats(sim)["channels"].values():
        for ref, n in ch["dispatches"].items():
            counts[ref] = counts.get(ref, 0) + n
    doubles = {ref: n for ref, n in counts.items() if n > 1}
    assert not doubles, f"refs dispatched more than once: {doubles}"
    return counts


def test_kill9_mid_flight_then_restart_loses_nothing(database_url: str, sim, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    # Jobs the killed process had claimed come back when their lease ends: 5 s instead of the default
    # 60 s keeps the test short (every handler here finishes well within it).
    lease = {"TOPUP_JOB_LEASE_S": "5"}
    proc, port = serve(database_url, log, **lease)
    p = platform_client(port, database_url)
    try:
        setup_airtime(
            p,
            sim,
            {
                "supA": {"callback_delay_s": 0.4, "reject_ratio": 0.2, "seed": 3},
                "supB": {"callback_delay_s": 0.2},
            },
            timeout_s=0.5,
            max_wait_s=1.5,
        )
        m = p.merchant(balance=10_000_000)
        ids = place_many(m, "K", 40)
        time.sleep(0.3)  # some dispatched, some callbacks pending, some still queued
        proc.kill9()
        time.sleep(0.5)  # callbacks sent now are refused; the simulator retries, then queries catch up
        proc, port2 = serve(database_url, log, port=port, **lease)
        orders = all_final(p, ids, timeout_s=60)
        assert len(orders) == 40
        assert all(o["status"] in ("succeeded", "failed") for o in orders.values())
        check = p.ledger_check()
        assert check["balanced"], check
        bal = m.get("/v1/balance").json()
        assert bal["held"] == 0
        charged = sum(o["price"] for o in orders.values() if o["status"] == "succeeded")
        assert bal["available"] == 10_000_000 - charged
        assert_dispatched_at_most_once(sim)
    finally:
        proc.stop()
        p.admin.close()


def test_two_workers_on_postgres_dispatch_each_attempt_once(pg_url: str, sim, tmp_path: Path) -> None:
    api, port = serve(pg_url, tmp_path / "api.log", worker=False)
    workers = [worker(pg_url, tmp_path / f"worker{i}.log", port, TOPUP_LOG_LEVEL="INFO") for i in range(2)]
    p = platform_client(port, pg_url)
    try:
        setup_airtime(
            p,
            sim,
            {
                "supA": {"reject_ratio": 0.3, "seed": 5, "callback_delay_s": 0.05},
                "supB": {"callback_delay_s": 0.05},
            },
            timeout_s=5.0,  # generous: a dispatch cut off on a loaded machine is an unknown outcome
            max_wait_s=10.0,
        )
        m = p.merchant(balance=10_000_000)
        ids = place_many(m, "W", 120)
        orders = all_final(p, ids, timeout_s=60)
        failed = {
            oid: (o["failure_reason"], o["attempts"])
            for oid, o in orders.items()
            if o["status"] != "succeeded"
        }
        assert not failed, failed
        counts = assert_dispatched_at_most_once(sim)
        attempts = [a["ref"] for o in orders.values() for a in o["attempts"]]
        assert sorted(attempts) == sorted(counts), "every stored attempt was dispatched exactly once"
        assert any(len(o["attempts"]) > 1 for o in orders.values()), "the mix includes failovers"
        assert p.ledger_check()["balanced"]
    finally:
        for w in workers:
            w.stop()
        api.stop()
        p.admin.close()
    # Both workers took part (each logs how many jobs it ran when it stops).
    for i in range(2):
        lines = [
            json.loads(x) for x in (tmp_path / f"worker{i}.log").read_text().splitlines() if x.startswith("{")
        ]
        stopped = [x for x in lines if x.get("event") == "worker_stopped"]
        assert stopped and stopped[0]["jobs_done"] > 0, f"worker {i} did no work"
