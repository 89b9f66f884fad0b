"""Process and database faults under load: nothing lost, nothing doubled, the books still balance.

- kill -9 of worker processes at random moments while orders flow (PostgreSQL, API + 2 workers);
- kill -9 of the API process at random moments while merchants place orders (they retry with the same
  merchant_order_id, as the SPEC's idempotency invites);
- a private PostgreSQL cluster restarted mid-load (never the machine's shared one).

After each run: every accepted order is final exactly once, has exactly one `order.<status>` event, no
attempt ref reached a supplier twice, every merchant_order_id maps to one order, and the ledger checks.
Set TOPUP_FAULT_SEED to replay a run's kill moments.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import random
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import IN_CI
from tests.support.platform import Platform, SignedClient, free_port, setup_airtime, sim_stats, wait_until
from tests.support.processes import Proc, all_final, platform_client, serve, worker

pytestmark = [pytest.mark.slow, pytest.mark.pg]

BALANCE = 100_000_000
# Small pools: several processes share one server (and the shared test server has other users).
LEAN = {"TOPUP_DB_POOL_SIZE": "3"}
# A killed worker's leases expire after this; the default (60 s) is for production, not a test.
FAST_LEASE = {"TOPUP_JOB_LEASE_S": "2", **LEAN}
FINAL = ("succeeded", "failed", "cancelled")


def fault_rng(request: pytest.FixtureRequest) -> random.Random:
    seed = int(os.environ.get("TOPUP_FAULT_SEED") or random.SystemRandom().randrange(1, 10**6))
    print(f"\n{request.node.name}: TOPUP_FAULT_SEED={seed}")
    return random.Random(seed)


# ---- load: merchants that retry until their order is accepted ---------------------------------------


@dataclass
class Load:
    """Places `n` orders from a thread pool; an order is retried (same id and body) until accepted."""

    m: SignedClient
    prefix: str
    n: int
    threads: int = 6
    give_up_s: float = 60.0
    accepted: dict[str, str] = field(default_factory=dict)  # merchant_order_id -> order_id
    replays: int = 0  # accepted with 200: an earlier try had been stored though its answer was lost
    retries: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _one(self, i: int) -> None:
        mid = f"{self.prefix}-{i}"
        deadline = time.monotonic() + self.give_up_s
        tries = 0
        while True:
            tries += 1
            try:
                r = self.m.order(mid, account=f"138{i:08d}"[:11])
                status, body = r.status_code, (r.json() if r.status_code < 500 else None)
            except (httpx.HTTPError, ValueError) as e:
                status, body = None, None
                with self._lock:
                    self.errors[type(e).__name__] += 1
            if status in (200, 201):
                with self._lock:
                    self.accepted[mid] = body["order_id"]
                    self.replays += status == 200
                    self.retries += tries - 1
                return
            if status is not None and status < 500:
                raise AssertionError(f"{mid}: refused with {status}: {body}")
            if status is not None:
                with self._lock:
                    self.errors[f"http_{status}"] += 1
            if time.monotonic() > deadline:
                raise AssertionError(f"{mid}: not accepted within {self.give_up_s}s")
            time.sleep(0.1)

    def run(self, pace_s: float = 0.0) -> None:
        with concurrent.futures.ThreadPoolExecutor(self.threads) as pool:
            futures = []
            for i in range(self.n):
                futures.append(pool.submit(self._one, i))
                if pace_s:
                    time.sleep(pace_s)
            for f in futures:
                f.result()

    def start(self, pace_s: float = 0.0) -> threading.Thread:
        self.failure: BaseException | None = None

        def target() -> None:
            try:
                self.run(pace_s)
            except BaseException as e:  # surfaced by join()
                self.failure = e

        th = threading.Thread(target=target, name=f"load-{self.prefix}", daemon=True)
        th.start()
        return th

    def join(self, th: threading.Thread, timeout_s: float = 90.0) -> None:
        th.join(timeout_s)
        assert not th.is_alive(), "the load did not finish"
        if self.failure is not None:
            raise self.failure


# ---- what must hold after every fault ------------------------------------------------------------------


def pg_fetch(url: str, sql: str) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            return list(await conn.fetch(sql))
        finally:
            await conn.close()

    return asyncio.run(run())


def check_invariants(p: Platform, url: str, sim: Any, load: Load, merchant_id: str) -> dict[str, Any]:
    n = len(load.accepted)
    assert n == load.n + ("WARMUP" in load.accepted), "every order was accepted in the end"
    orders = all_final(p, list(load.accepted.values()), timeout_s=60)
    # One order per merchant_order_id, and it is the one the merchant was told about.
    rows = pg_fetch(
        url, f"SELECT id, merchant_order_id, status FROM orders WHERE merchant_id = '{merchant_id}'"
    )
    assert len(rows) == n, f"{len(rows)} orders stored for {n} merchant_order_ids"
    assert {r["merchant_order_id"]: r["id"] for r in rows} == load.accepted
    assert all(r["status"] in FINAL for r in rows)
    # Exactly one final event per final order, of the right type.
    events = pg_fetch(url, f"SELECT order_id, type FROM events WHERE merchant_id = '{merchant_id}'")
    per_order = Counter(e["order_id"] for e in events)
    doubled = {oid: n for oid, n in per_order.items() if n != 1}
    assert not doubled, f"orders with more than one final event: {doubled}"
    assert {e["order_id"]: e["type"] for e in events} == {r["id"]: f"order.{r['status']}" for r in rows}
    # No attempt reached a supplier twice, and nothing was dispatched that is not a stored attempt.
    counts: Counter[str] = Counter()
    for ch in sim_stats(sim)["channels"].values():
        counts.update(ch["dispatches"])
    twice = {ref: n for ref, n in counts.items() if n > 1}
    assert not twice, f"refs dispatched more than once: {twice}"
    stored = {a["ref"] for o in orders.values() for a in o["attempts"]}
    assert set(counts) <= stored
    # The money: balanced books, nothing left held, each success charged once.
    check = p.ledger_check()
    assert check["balanced"], check
    bal = p.admin.get("/admin/v1/merchants").json()["items"]
    (mine,) = [x for x in bal if x["id"] == merchant_id]
    charged = sum(o["price"] for o in orders.values() if o["status"] == "succeeded")
    assert mine["balance"]["held"] == 0
    assert mine["balance"]["available"] == BALANCE - charged
    statuses = Counter(o["status"] for o in orders.values())
    return {
        "orders": n,
        "statuses": dict(statuses),
        "attempts": len(stored),
        "dispatched": len(counts),
        "failovers": sum(1 for o in orders.values() if len(o["attempts"]) > 1),
        "replayed_200": load.replays,
        "client_retries": load.retries,
        "client_errors": dict(load.errors),
    }


def channels(seed: int) -> dict[str, dict[str, Any]]:
    # A mix: rejections, failure callbacks, slow callbacks, so kills land in every phase of an order.
    return {
        "supA": {"callback_delay_s": 0.3, "reject_ratio": 0.15, "success_ratio": 0.85, "seed": seed},
        "supB": {"callback_delay_s": 0.1, "success_ratio": 0.95, "seed": seed + 1},
    }


def warm_up(p: Platform, m: SignedClient, load: Load) -> None:
    """One order end to end, so the worker is up before any fault is injected (it counts as accepted)."""
    r = m.order("WARMUP", account="13900000000")
    assert r.status_code == 201, r.text
    all_final(p, [r.json()["order_id"]], timeout_s=30)
    load.accepted["WARMUP"] = r.json()["order_id"]


def stop_all(*procs: Proc | None) -> None:
    for proc in procs:
        if proc is not None:
            proc.stop()


# ---- kill -9 ----------------------------------------------------------------------------------------------


def test_kill9_workers_at_random_moments_loses_and_doubles_nothing(
    pg_url: str, sim: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    rng = fault_rng(request)
    api, port = serve(pg_url, tmp_path / "api.log", worker=False, **LEAN)
    workers = [worker(pg_url, tmp_path / f"w{i}.log", port, **FAST_LEASE) for i in range(2)]
    p = platform_client(port, pg_url)
    kills = restarts = 0
    started = time.monotonic()
    try:
        setup_airtime(p, sim, channels(rng.randrange(1000)), timeout_s=0.5, max_wait_s=1.0)
        m = p.merchant("mk", balance=BALANCE)
        load = Load(m, "KW", 100)
        warm_up(p, m, load)
        th = load.start(pace_s=0.01)
        # Kill a random worker at random moments while the load runs; bring it back a little later.
        for _ in range(3):
            time.sleep(rng.uniform(0.2, 0.7))
            i = rng.randrange(2)
            workers[i].kill9()
            kills += 1
            time.sleep(rng.uniform(0.1, 0.6))
            workers[i] = worker(pg_url, tmp_path / f"w{i}.log", port, **FAST_LEASE)
            restarts += 1
        load.join(th)
        figures = check_invariants(p, pg_url, sim, load, "mk")
    finally:
        stop_all(*workers, api)
        p.admin.close()
    figures.update(kills=kills, restarts=restarts, seconds=round(time.monotonic() - started, 1))
    print("worker kill -9 figures:", figures)


def test_kill9_api_at_random_moments_loses_and_doubles_nothing(
    pg_url: str, sim: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    rng = fault_rng(request)
    api, port = serve(pg_url, tmp_path / "api.log", worker=False, **LEAN)
    wk = worker(pg_url, tmp_path / "w.log", port, **FAST_LEASE)
    p = platform_client(port, pg_url)
    kills = 0
    started = time.monotonic()
    try:
        setup_airtime(p, sim, channels(rng.randrange(1000)), timeout_s=0.5, max_wait_s=1.0)
        m = p.merchant("ma", balance=BALANCE)
        load = Load(m, "KA", 120)
        warm_up(p, m, load)
        th = load.start(pace_s=0.01)
        # Kill the API while requests are in flight (some stored, answer lost) and callbacks arrive.
        for _ in range(2):
            time.sleep(rng.uniform(0.3, 0.9))
            api.kill9()
            kills += 1
            time.sleep(rng.uniform(0.2, 0.6))
            api, _ = serve(pg_url, tmp_path / "api.log", port=port, worker=False, **LEAN)
        load.join(th)
        figures = check_invariants(p, pg_url, sim, load, "ma")
    finally:
        stop_all(wk, api)
        p.admin.close()
    figures.update(kills=kills, restarts=kills, seconds=round(time.monotonic() - started, 1))
    print("API kill -9 figures:", figures)


# ---- a private PostgreSQL restarted mid-load ---------------------------------------------------------------


def pg_bin() -> Path | None:
    """The newest PostgreSQL server binaries on this machine (Debian layout), if any."""
    root = Path("/usr/lib/postgresql")
    if root.is_dir():
        for version in sorted(root.iterdir(), key=lambda d: d.name, reverse=True):
            if (version / "bin" / "initdb").exists() and (version / "bin" / "pg_ctl").exists():
                return version / "bin"
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("pg_ctl") else None


@dataclass
class PrivatePg:
    bindir: Path
    base: Path
    port: int
    as_postgres: bool

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, *args: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout_s, check=True, cwd=self.base
        )

    def pg_ctl(self, *args: str) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.base} -c fsync=off -c max_connections=100"
        )
        self.run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.base / "pg.log"),
            "-w",
            "-t",
            "30",
            "-o",
            options,
            *args,
        )


@pytest.fixture
def private_pg() -> Iterator[PrivatePg]:
    """A throwaway PostgreSQL cluster on a free port, owned by this test alone."""
    bindir = pg_bin()
    if bindir is None:
        if IN_CI:
            pytest.fail("initdb/pg_ctl not found; under CI the database restart test must run")
        pytest.skip("initdb/pg_ctl not found")
    as_postgres = os.geteuid() == 0
    if as_postgres and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL as the postgres user")
    base = Path(tempfile.mkdtemp(prefix="topup-pg-", dir="/tmp"))
    if as_postgres:
        shutil.chown(base, "postgres", "postgres")
    pg = PrivatePg(bindir, base, free_port(), as_postgres)
    try:
        pg.run(
            "initdb",
            "-D",
            str(pg.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )
        pg.pg_ctl("start")
        yield pg
    finally:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            pg.pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(base, ignore_errors=True)


LISTENERS = (
    "SELECT count(*) AS n FROM pg_stat_activity"
    " WHERE query ILIKE 'LISTEN%topup_jobs%' AND pid <> pg_backend_pid()"
)


def test_postgres_restart_mid_load_recovers_without_a_manual_step(
    private_pg: PrivatePg, sim: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    rng = fault_rng(request)
    url = private_pg.url
    api, port = serve(url, tmp_path / "api.log", worker=False, **LEAN)
    wk = worker(url, tmp_path / "w.log", port, **FAST_LEASE)
    p = platform_client(port, url)
    restarts = 0
    restart_s: list[float] = []
    started = time.monotonic()
    try:
        setup_airtime(p, sim, channels(rng.randrange(1000)), timeout_s=0.5, max_wait_s=1.0)
        m = p.merchant("mp", balance=BALANCE)
        load = Load(m, "PG", 120)
        warm_up(p, m, load)
        th = load.start(pace_s=0.02)
        for how in ("restart", "stop-start"):
            time.sleep(rng.uniform(0.5, 1.0))
            t0 = time.monotonic()
            if how == "restart":
                private_pg.pg_ctl("restart", "-m", "fast")
            else:
                private_pg.pg_ctl("stop", "-m", "fast")
                time.sleep(2.0)
                private_pg.pg_ctl("start")
            restart_s.append(round(time.monotonic() - t0, 2))
            restarts += 1
        load.join(th)
        # The same processes carry on: nobody restarted them.
        assert api.p is not None and api.p.poll() is None, "the API process died"
        assert wk.p is not None and wk.p.poll() is None, "the worker process died"
        # The worker listens for new work again (LISTEN topup_jobs), not just polling.
        wait_until(
            lambda: pg_fetch(url, LISTENERS)[0]["n"] >= 1, timeout_s=10, what="the worker's LISTEN is back"
        )
        figures = check_invariants(p, url, sim, load, "mp")
    finally:
        stop_all(wk, api)
        p.admin.close()
    figures.update(
        db_restarts=restarts, restart_seconds=restart_s, seconds=round(time.monotonic() - started, 1)
    )
    print("PostgreSQL restart figures:", figures)
