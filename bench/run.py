"""`make bench`: real processes, a real database, a merchant in its own process, and the truth.

    python -m bench.run [--sqlite] [--api 2] [--workers 2] [--rate 100,0] [--orders 3000] [--quick]
                        [--prefill 5000000]

It creates a fresh PostgreSQL database (or a SQLite file), starts K `topup serve --no-worker` and M
`topup worker` processes (SQLite: one `topup serve` with its in-process worker), the supplier simulator
(`topup simulate`) and a webhook sink, configures everything through the admin API, then for each offered
rate runs the load generator (`bench/loadgen.py`, its own process) and watches the database until every
order is final. Then a 10,000-row batch, pgbench on the same server, and the checks: every order final,
no ref dispatched twice (simulator stats), the ledger balanced. Figures go to bench/results/<timestamp>/.

With `--prefill N` (PostgreSQL only) the configured database first gets N finished orders of the past
year, written in SQL by `bench/prefill.py` (history merchants of their own, balanced books), so the
figures show what a long history costs the hot path.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import procs
from bench.measure import FINAL, Observer, dumps, failover_summary, summary_ms
from bench.report import chart, text_summary

ROOT = Path(__file__).resolve().parent
ACCOUNTS = [f"{p}{n:08d}" for p in ("138", "139", "150", "130", "186", "133", "189") for n in range(1, 41)]
MERCHANT_SECRET = "bench-merchant-secret-0001"
PRICE, FACE = 4980, 5000


def failure_mix(first_fail: float, silent: float) -> dict[str, Any]:
    """supA behaviour so that `first_fail` of first attempts fail (half rejected at dispatch, half by a
    failure callback) and `silent` never answer (the deadline, a query, then abandon)."""
    reject = first_fail / 2
    silent_ratio = silent / (1 - reject)
    failed_cb = first_fail / 2 / (1 - reject - silent)
    return {"reject_ratio": reject, "silent_ratio": silent_ratio, "success_ratio": 1 - failed_cb}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    ap.add_argument(
        "--sqlite", action="store_true", help="SQLite file instead of PostgreSQL (K=1, in-process worker)"
    )
    ap.add_argument("--api", type=int, default=2, help="API processes (topup serve --no-worker)")
    ap.add_argument("--workers", type=int, default=2, help="worker processes (topup worker)")
    ap.add_argument(
        "--rate", default="100,0", help="offered orders/s per phase, comma separated; 0 = flat out"
    )
    ap.add_argument("--orders", type=int, default=3000, help="orders per phase")
    ap.add_argument("--concurrency", type=int, default=64, help="merchant connections when flat out")
    ap.add_argument("--batch-rows", type=int, default=10_000, help="rows of the batch figure (0: skip)")
    ap.add_argument("--no-batch-pay", action="store_true", help="only place the batch, do not pay for it")
    ap.add_argument("--fail", type=float, default=0.20, help="share of first attempts that fail")
    ap.add_argument("--silent", type=float, default=0.05, help="share of first attempts with no answer")
    ap.add_argument("--timeout-s", type=float, default=1.0, help="channel timeout_s (silent orders wait it)")
    ap.add_argument("--max-wait-s", type=float, default=2.0, help="channel max_wait_s")
    ap.add_argument("--callback-delay-s", type=float, default=0.02, help="simulator callback delay")
    ap.add_argument("--no-notify", action="store_true", help="merchants without a webhook URL")
    ap.add_argument("--pgbench-seconds", type=int, default=15)
    ap.add_argument("--pgbench-scale", type=int, default=10)
    ap.add_argument("--no-pgbench", action="store_true")
    ap.add_argument("--quick", action="store_true", help="a short smoke run")
    ap.add_argument("--label", default="", help="a note stored with the results")
    ap.add_argument("--out", default=str(ROOT / "results"), help="results root directory")
    ap.add_argument(
        "--pool-size",
        type=int,
        default=5,
        help="TOPUP_DB_POOL_SIZE per process (no overflow: that many connections each; PG allows 100)",
    )
    ap.add_argument(
        "--cprofile", action="store_true", help="run every topup process under cProfile (<results>/profiles)"
    )
    ap.add_argument("--env", action="append", default=[], help="extra KEY=VALUE for the topup processes")
    ap.add_argument(
        "--prefill", type=int, default=0, help="N finished orders of history before the phases (PostgreSQL)"
    )
    args = ap.parse_args(argv)
    if args.prefill and args.sqlite:
        ap.error("--prefill needs PostgreSQL (it writes the history with generate_series); drop --sqlite")
    if args.quick:
        args.orders = min(args.orders, 300)
        args.rate = "50,0" if args.rate == "100,0" else args.rate
        args.batch_rows = min(args.batch_rows, 1000)
        args.pgbench_seconds, args.pgbench_scale = 3, 1
    if args.sqlite:
        args.api, args.workers = 1, 0
    return args


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.dir = Path(args.out) / stamp
        self.logs = self.dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.procs: list[procs.Proc] = []
        self.apis: list[procs.Proc] = []
        self.workers: list[procs.Proc] = []
        self.api_urls: list[str] = []
        self.db_name: str | None = None
        self.sqlite_path: Path | None = None
        self.sim_url = ""
        self.sink_url = ""
        self.admin: httpx.AsyncClient | None = None
        self.partial: list[dict[str, Any]] = []

    # ---- processes -------------------------------------------------------------------------------

    def topup(self, name: str) -> list[str]:
        """The command for one topup process (under cProfile with --cprofile)."""
        if not self.args.cprofile:
            return procs.topup_cmd(name)
        prof = self.dir / "profiles"
        prof.mkdir(exist_ok=True)
        return procs.topup_cmd(name, prof)

    def _env(self, public_port: int) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "TOPUP_DATABASE_URL": self.database_url,
                "TOPUP_ADMIN_TOKEN": procs.ADMIN_TOKEN,
                "TOPUP_PUBLIC_URL": f"http://127.0.0.1:{public_port}",
                "TOPUP_ALLOW_PRIVATE_NOTIFY_URLS": "true",
                "TOPUP_LOG_LEVEL": "WARNING",
                "TOPUP_DB_POOL_SIZE": str(self.args.pool_size),
            }
        )
        for kv in self.args.env:
            k, _, v = kv.partition("=")
            env[k] = v
        return env

    def start(self) -> None:
        a = self.args
        if a.sqlite:
            self.sqlite_path = self.dir / "bench.db"
            self.database_url = f"sqlite:///{self.sqlite_path}"
        else:
            self.db_name = procs.create_pg_database("topup_bench")
            self.database_url = procs.pg_url(self.db_name)
        # The simulator: supA carries the failure mix, supB and supC always succeed.
        sim_port = procs.free_port()
        fast = {"callback_delay_s": a.callback_delay_s, "silent_query": "processing"}
        config = {
            "seed": 7,
            "callback_retries": 6,
            "defaults": fast,
            "channels": {"supA": failure_mix(a.fail, a.silent), "supB": {}, "supC": {}},
        }
        (self.dir / "simulator.json").write_text(json.dumps(config, indent=2))
        sim = procs.Proc(
            "simulator",
            [
                *self.topup("simulator"),
                "simulate",
                "--port",
                str(sim_port),
                "--config",
                str(self.dir / "simulator.json"),
            ],
            dict(os.environ),
            self.logs,
        ).start()
        self.procs.append(sim)
        self.sim_url = f"http://127.0.0.1:{sim_port}"
        sink_port = procs.free_port()
        sink = procs.Proc(
            "sink", [sys.executable, "-m", "bench.sink", str(sink_port)], dict(os.environ), self.logs
        )
        self.procs.append(sink.start())
        self.sink_url = f"http://127.0.0.1:{sink_port}"
        # The first API process migrates alone; the rest start together.
        ports = [procs.free_port() for _ in range(a.api)]
        auth = {"Authorization": f"Bearer {procs.ADMIN_TOKEN}"}
        for i, port in enumerate(ports):
            args = [*self.topup(f"api{i + 1}"), "serve", "--port", str(port)]
            if not a.sqlite:
                args.append("--no-worker")
            p = procs.Proc(f"api{i + 1}", args, self._env(port), self.logs).start()
            self.procs.append(p)
            self.apis.append(p)
            self.api_urls.append(f"http://127.0.0.1:{port}")
            if i == 0:
                procs.wait_http(f"{self.api_urls[0]}/admin/v1/ledger/check", p, headers=auth)
        for p, url in zip(self.apis, self.api_urls, strict=True):
            procs.wait_http(f"{url}/admin/v1/ledger/check", p, headers=auth)
        for j in range(a.workers):
            w = procs.Proc(
                f"worker{j + 1}",
                [*self.topup(f"worker{j + 1}"), "worker"],
                self._env(ports[j % len(ports)]),
                self.logs,
            )
            self.procs.append(w.start())
            self.workers.append(w)
        procs.wait_http(f"{self.sim_url}/control/stats", sim)
        procs.wait_http(f"{self.sink_url}/", sink)
        if self.workers:
            asyncio.run(self._wait_workers())

    async def _wait_workers(self, timeout_s: float = 60.0) -> None:
        """Workers have no HTTP port: they are up once each LISTENs for new jobs."""
        import asyncpg

        conn = await asyncpg.connect(self.database_url)
        try:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                n = await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = $1 AND query LIKE 'LISTEN%topup_jobs%'",
                    self.db_name,
                )
                if n >= len(self.workers):
                    return
                for w in self.workers:
                    if not w.alive():
                        raise RuntimeError(f"{w.name} exited; see {w.log}:\n{w.tail()}")
                await asyncio.sleep(0.2)
            raise RuntimeError("workers did not start listening in time")
        finally:
            await conn.close()

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.stop()
        if self.db_name and not os.environ.get("TOPUP_BENCH_KEEP_DB"):
            procs.drop_pg_database(self.db_name)
        if self.sqlite_path is not None:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    Path(f"{self.sqlite_path}{suffix}").unlink()

    async def cpu(self, obs: Observer) -> dict[str, Any]:
        """CPU seconds so far of every process of ours, the database's backends and the whole machine."""
        mine = {p.name: procs.cpu_s(p.pid) for p in self.procs}
        backends = {pid: procs.cpu_s(pid) for pid in await obs.backend_pids()}
        return {"procs": mine, "backends": backends, "system": procs.system_cpu_s()}

    @staticmethod
    def cpu_delta(a: dict[str, Any], b: dict[str, Any], loadgen_s: float, orders: int) -> dict[str, Any]:
        """CPU used between two `cpu()` samples, per process group and per completed order.

        The machine may be shared: `other` is what processes that are not part of this bench used.
        """
        groups: dict[str, float] = {}
        for name, end in b["procs"].items():
            start = a["procs"].get(name)
            if end is None or start is None:
                continue
            group = name.rstrip("0123456789")
            groups[group] = groups.get(group, 0.0) + end - start
        groups["postgres"] = sum(
            (end or 0) - (a["backends"].get(pid) or 0)
            for pid, end in b["backends"].items()
            if end is not None
        )
        groups["loadgen"] = loadgen_s
        total = b["system"] - a["system"]
        platform = groups.get("api", 0) + groups.get("worker", 0) + groups["postgres"]
        return {
            "seconds": {k: round(v, 2) for k, v in groups.items()},
            "machine_total_s": round(total, 2),
            "other_s": round(total - sum(groups.values()), 2),
            "platform_ms_per_order": round(1000 * platform / orders, 2) if orders else None,
            "platform_python_ms_per_order": (
                round(1000 * (groups.get("api", 0) + groups.get("worker", 0)) / orders, 2) if orders else None
            ),
        }

    def rss(self) -> dict[str, int | None]:
        return {p.name: procs.rss_kib(p.pid) for p in [*self.apis, *self.workers]}

    # ---- configuration through the admin API ------------------------------------------------------

    async def _put(self, path: str, body: dict[str, Any]) -> None:
        assert self.admin is not None
        r = await self.admin.put(path, json=body)
        if r.status_code not in (200, 201):
            raise RuntimeError(f"PUT {path}: {r.status_code} {r.text}")

    async def configure(self, merchants: list[str]) -> None:
        a = self.args
        await self._put(
            "/admin/v1/products/airtime.50",
            {
                "business_type": "mobile_airtime",
                "brand": "auto",
                "name": "Airtime 50",
                "face_value": FACE,
                "price": PRICE,
            },
        )
        for code in ("supA", "supB", "supC"):
            await self._put(
                f"/admin/v1/channels/{code}",
                {
                    "name": code,
                    "protocol": "topup-json",
                    "base_url": f"{self.sim_url}/sim/{code}",
                    "secret": "sim-secret",
                    "timeout_s": a.timeout_s,
                    "max_wait_s": a.max_wait_s,
                    "supports_query": True,
                    "enabled": True,
                },
            )
        # Not sticky: with a constant failure mix a sticky group would just move everyone off supA,
        # and the figure is meant to include fail-overs.
        await self._put(
            "/admin/v1/groups/air",
            {
                "business_type": "mobile_airtime",
                "brand": None,
                "strategy": "priority",
                "sticky": False,
                "recovery_s": 300,
                "members": [
                    {"channel": c, "priority": i, "weight": 1, "costs": {}}
                    for i, c in enumerate(("supA", "supB", "supC"), start=1)
                ],
            },
        )
        assert self.admin is not None
        for m in merchants:
            body: dict[str, Any] = {"name": m, "secret": MERCHANT_SECRET}
            if not a.no_notify:
                body["notify_url"] = f"{self.sink_url}/hooks/{m}"
            await self._put(f"/admin/v1/merchants/{m}", body)
            r = await self.admin.post(
                f"/admin/v1/merchants/{m}/credits", json={"amount": 10**12, "reference": f"bench-{m}"}
            )
            if r.status_code not in (200, 201):
                raise RuntimeError(f"credit {m}: {r.status_code} {r.text}")

    # ---- phases --------------------------------------------------------------------------------

    async def phase(self, obs: Observer, name: str, merchant: str, rate: float) -> dict[str, Any]:
        a = self.args
        spec = {
            "urls": self.api_urls,
            "merchant_id": merchant,
            "secret": MERCHANT_SECRET,
            "orders": a.orders,
            "rate": rate,
            "concurrency": a.concurrency,
            "prefix": name,
            "product_code": "airtime.50",
            "accounts": ACCOUNTS,
        }
        spec_path, out_path = self.dir / f"loadgen-{name}.json", self.dir / f"loadgen-{name}.out.json"
        spec_path.write_text(json.dumps(spec))
        print(
            f"[{name}] {a.orders} orders, {'flat out' if not rate else f'{rate:g}/s offered'} ...", flush=True
        )
        cpu0 = await self.cpu(obs)
        xact0 = await obs.xacts()
        # Backends can come and go within a phase (pool_recycle after 300 s, a reconnect): remember the
        # last CPU reading of every one seen, so one that exits still counts.
        seen: dict[int, float] = {}
        # RSS of every API and worker process every 10 s: a long soak shows whether memory levels off.
        rss_series: list[tuple[float, dict[str, int | None]]] = []
        t0 = time.monotonic()

        async def sample_backends() -> None:
            for pid in await obs.backend_pids():
                used = procs.cpu_s(pid)
                if used is not None:
                    seen[pid] = used

        async def sampler() -> None:
            tick = 0
            while True:
                await sample_backends()
                if tick % 10 == 0:
                    rss_series.append((round(time.monotonic() - t0, 1), self.rss()))
                tick += 1
                await asyncio.sleep(1.0)

        log = (self.logs / f"loadgen-{name}.log").open("ab")
        gen = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.loadgen", str(spec_path), str(out_path), stdout=log, stderr=log
        )
        sampling = asyncio.create_task(sampler())
        await gen.wait()
        sampling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampling
        log.close()
        if gen.returncode != 0:
            raise RuntimeError(f"load generator failed; see {self.logs / f'loadgen-{name}.log'}")
        lg = orjson.loads(out_path.read_bytes())
        # Wait for every accepted order to reach a final state (watching the database, not the API).
        deadline = time.monotonic() + 60 + a.orders / 20
        while True:
            left = await obs.open_orders(merchant)
            await sample_backends()
            if not left or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.25)
        cpu1 = await self.cpu(obs)
        for pid, used in seen.items():
            cpu1["backends"].setdefault(pid, used)
        xact1 = await obs.xacts()
        rows = await obs.orders(merchant)
        records = lg["records"]
        ok = [r for r in records if r[4] in (200, 201)]
        start = lg["started_at"]
        created = [r[2] for r in rows]
        done = [r for r in rows if r[3] is not None]
        accept_span = max(r[3] for r in ok) - start if ok else 0.0
        complete_span = max(r[3] for r in done) - min(created) if done else 0.0
        failovers = await obs.failovers(merchant)
        return {
            "name": name,
            "orders": a.orders,
            "offered": "flat out" if not rate else f"{rate:g}/s",
            "rate": rate,
            "accepted": len(ok),
            "rejected": len(records) - len(ok),
            "client_retries": lg.get("retries", 0),
            "accepted_per_s": round(len(ok) / accept_span, 1) if accept_span else None,
            "completed": len(done),
            "completed_per_s": round(len(done) / complete_span, 1) if complete_span else None,
            "not_final": left,
            "statuses": await obs.counts(merchant),
            "attempts_per_order": round(sum(r[4] for r in rows) / len(rows), 3) if rows else None,
            "intake_latency": summary_ms([r[3] - r[1] for r in ok]),
            "intake_latency_from_send": summary_ms([r[3] - r[2] for r in ok]),
            "completion_latency": summary_ms([r[3] - r[2] for r in done]),
            "failover_delay": failover_summary(failovers),
            "cpu": self.cpu_delta(cpu0, cpu1, lg.get("cpu_s", 0.0), len(done)),
            "db_transactions_per_order": (
                round((xact1 - xact0) / len(done), 1) if xact0 is not None and xact1 and done else None
            ),
            "rss_series": [*rss_series, (round(time.monotonic() - t0, 1), self.rss())],
            "_start": start,
            "_accepted_at": [r[3] for r in ok],
            "_intake_s": [r[3] - r[1] for r in ok],
            "_completed_at": [r[3] for r in done],
            "_completion_s": [r[3] - r[2] for r in done],
        }

    async def batch(self, obs: Observer, merchant: str) -> dict[str, Any]:
        a = self.args
        rows = [
            {"product_code": "airtime.50", "account": ACCOUNTS[i % len(ACCOUNTS)]}
            for i in range(a.batch_rows)
        ]
        body = orjson.dumps(
            {"merchant_batch_id": f"bench-{int(time.time())}", "rows": rows, "notify_url": None}
        )
        async with httpx.AsyncClient(base_url=self.api_urls[0], timeout=300.0, trust_env=False) as client:

            async def signed(method: str, path: str, raw: bytes = b"") -> httpx.Response:
                from bench.loadgen import sign

                h = sign(MERCHANT_SECRET, method, path, raw, time.time())
                h["X-Merchant-Id"] = merchant
                if raw:
                    h["Content-Type"] = "application/json"
                return await client.request(method, path, content=raw, headers=h)

            print(f"[batch] {a.batch_rows} rows ...", flush=True)
            t0 = time.time()
            r = await signed("POST", "/v1/batches", body)
            if r.status_code in (404, 405):
                return {"skipped": f"POST /v1/batches answered {r.status_code}: batches are not built yet"}
            if r.status_code not in (200, 201):
                return {"skipped": f"POST /v1/batches answered {r.status_code}: {r.text[:300]}"}
            b = r.json()
            while b.get("status") == "placing" and time.time() - t0 < 300:
                await asyncio.sleep(0.2)
                b = (await signed("GET", f"/v1/batches/{b['batch_id']}")).json()
            placed_s = time.time() - t0
            out: dict[str, Any] = {
                "rows": a.batch_rows,
                "http_status": r.status_code,
                "status": b.get("status"),
                "valid_rows": b.get("valid_rows"),
                "placed_s": round(placed_s, 3),
            }
            if a.no_batch_pay:
                # Unpaid orders wait for payment forever: cancel the batch so every order ends final.
                c = await signed("POST", f"/v1/batches/{b['batch_id']}/cancel")
                out["cancel_http_status"] = c.status_code
                return out
            t1 = time.time()
            p = await signed(
                "POST", f"/v1/batches/{b['batch_id']}/payment", orjson.dumps({"method": "balance"})
            )
            out["pay_http_status"] = p.status_code
            out["pay_s"] = round(time.time() - t1, 3)
            if p.status_code not in (200, 201):
                out["pay_error"] = p.text[:300]
                return out
            deadline = time.monotonic() + 120 + a.batch_rows / 20
            while time.monotonic() < deadline:
                orders = await obs.batch_orders(b["batch_id"])
                if orders and all(o[0] in FINAL for o in orders):
                    break
                await asyncio.sleep(0.5)
            done = [o for o in orders if o[2] is not None]
            last = max((o[2] for o in done), default=t1)
            out["paid_to_final_s"] = round(last - t1, 3)
            out["completed_per_s"] = round(len(done) / (last - t1), 1) if last > t1 else None
            statuses: dict[str, int] = {}
            for o in orders:
                statuses[o[0]] = statuses.get(o[0], 0) + 1
            out["statuses"] = statuses
            return out

    # ---- checks ------------------------------------------------------------------------------------

    async def _sim_stats(self) -> dict[str, Any]:
        """The simulator's per-ref dispatch counts (it may still be busy retrying callbacks)."""
        async with httpx.AsyncClient(trust_env=False, timeout=120) as client:
            for attempt in range(3):
                try:
                    return (await client.get(f"{self.sim_url}/control/stats")).json()  # type: ignore[no-any-return]
                except httpx.HTTPError:
                    if attempt == 2:
                        raise
                    await asyncio.sleep(5)
        raise AssertionError("unreachable")

    async def verdict(
        self, obs: Observer, phases: list[dict[str, Any]], merchants: list[str]
    ) -> dict[str, Any]:
        assert self.admin is not None
        stats = await self._sim_stats()
        twice = {
            f"{code}:{ref}": n
            for code, ch in stats["channels"].items()
            for ref, n in ch["dispatches"].items()
            if n != 1
        }
        dispatched = sum(ch["dispatch_total"] for ch in stats["channels"].values())
        ledger = (await self.admin.get("/admin/v1/ledger/check")).json()
        open_orders = {m: await obs.open_orders(m) for m in merchants}
        accepted_missing = sum(p["accepted"] - sum(p["statuses"].values()) for p in phases)
        checks = {
            "every order final": all(v == 0 for v in open_orders.values()),
            "every accepted order stored": accepted_missing == 0,
            "no intake errors": all(p["rejected"] == 0 for p in phases),
            "nothing dispatched twice": not twice,
            "ledger balanced": bool(ledger.get("balanced")),
        }
        return {
            "ok": all(checks.values()),
            "checks": checks,
            "open_orders": open_orders,
            "dispatched_twice": dict(list(twice.items())[:20]),
            "dispatches_total": dispatched,
            "ledger": {k: v for k, v in ledger.items() if k != "mismatched_accounts"}
            | {"mismatched_accounts": ledger.get("mismatched_accounts", [])[:10]},
        }

    async def run(self) -> dict[str, Any]:
        a = self.args
        rates = [float(x) for x in str(a.rate).split(",") if x.strip() != ""]
        names = [f"rate{r:g}" if r else "flat" for r in rates]
        merchants = [f"bench-{n}" for n in names] + ["bench-batch"]
        self.admin = httpx.AsyncClient(
            base_url=self.api_urls[0],
            headers={"Authorization": f"Bearer {procs.ADMIN_TOKEN}"},
            timeout=120.0,
            trust_env=False,
        )
        obs = Observer(self.database_url)
        await obs.open()
        try:
            await self.configure(merchants)
            if a.prefill:
                from bench.prefill import prefill

                print(f"[prefill] {a.prefill:,} finished orders ...", flush=True)
                done = await prefill(self.database_url, a.prefill, template_merchant=merchants[-1])
                print(done.text(), flush=True)
            rss_start = self.rss()
            phases = []
            for name, rate in zip(names, rates, strict=True):
                phases.append(await self.phase(obs, name, f"bench-{name}", rate))
                self.partial = phases
                await asyncio.sleep(1.0)
            batch: dict[str, Any] = {"skipped": "--batch-rows 0"}
            if a.batch_rows:
                batch = await self.batch(obs, "bench-batch")
            rss_end = self.rss()
            verdict = await self.verdict(obs, phases, merchants)
            sink_count = (await httpx.AsyncClient(trust_env=False).get(f"{self.sink_url}/")).json()
        finally:
            await obs.close()
            await self.admin.aclose()
        pgbench: dict[str, Any] = {"skipped": "SQLite run" if a.sqlite else "--no-pgbench"}
        if not a.sqlite and not a.no_pgbench:
            print(f"[pgbench] -s {a.pgbench_scale}, -c 4 -j 2 -T {a.pgbench_seconds} ...", flush=True)
            pgbench = await asyncio.to_thread(
                procs.run_pgbench, a.pgbench_scale, 4, 2, a.pgbench_seconds, self.logs
            )
        memory = {
            n: {
                "start_kib": rss_start.get(n),
                "end_kib": rss_end.get(n),
                "growth_kib": (rss_end.get(n) or 0) - (rss_start.get(n) or 0),
            }
            for n in rss_start
        }
        best = max((p["completed_per_s"] or 0 for p in phases), default=0)
        db = "SQLite" if a.sqlite else "PostgreSQL"
        return {
            "setup": {
                "description": f"{db}, {a.api} API + {a.workers} worker processes, {os.cpu_count()} CPUs"
                + (f" ({a.label})" if a.label else ""),
                "database": db,
                "api_processes": a.api,
                "worker_processes": a.workers,
                "cpus": os.cpu_count(),
                "orders_per_phase": a.orders,
                "failure_mix": {
                    "first_attempt_fail": a.fail,
                    "silent": a.silent,
                    "supA": failure_mix(a.fail, a.silent),
                },
                "timeout_s": a.timeout_s,
                "max_wait_s": a.max_wait_s,
                "callback_delay_s": a.callback_delay_s,
                "notify": not a.no_notify,
                "git": _git_rev(),
                "argv": sys.argv[1:],
            },
            "phases": phases,
            "batch": batch,
            "pgbench": pgbench,
            "pgbench_ratio": (
                f"{best:.0f} : {pgbench['tps']:.0f} = {best / pgbench['tps']:.3f}"
                if pgbench.get("tps")
                else None
            ),
            "memory": memory,
            "webhooks_received": sink_count.get("received"),
            "verdict": verdict,
        }


def _git_rev() -> str | None:
    with contextlib.suppress(Exception):
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        )
        return out.stdout.strip() or None
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench = Bench(args)
    print(f"bench: results in {bench.dir}", flush=True)
    try:
        bench.start()
        result = asyncio.run(bench.run())
    except BaseException:
        if bench.partial:
            done = [{k: v for k, v in p.items() if not k.startswith("_")} for p in bench.partial]
            (bench.dir / "results-partial.json").write_text(dumps({"phases": done}))
            print(f"partial results (phases that finished): {bench.dir / 'results-partial.json'}")
        for p in bench.procs:
            if not p.alive():
                print(f"--- {p.name} exited early:\n{p.tail()}", file=sys.stderr)
        raise
    finally:
        bench.stop()
    public = {
        **result,
        "phases": [{k: v for k, v in p.items() if not k.startswith("_")} for p in result["phases"]],
    }
    (bench.dir / "results.json").write_text(dumps(public))
    chart(result["phases"], bench.dir / "chart.png", result["setup"]["description"])
    summary = text_summary(public)
    (bench.dir / "summary.txt").write_text(summary + "\n")
    print(summary)
    print(f"\nresults: {bench.dir / 'results.json'}  chart: {bench.dir / 'chart.png'}")
    return 0 if result["verdict"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
