"""Processes and databases for the bench: real `topup` processes, a throwaway database, RSS, pgbench."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

PG_ADMIN_DSN = os.environ.get("TOPUP_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"
TOPUP = [sys.executable, "-m", "topup.entrypoints.cli"]


def topup_cmd(name: str, profile_dir: Path | None = None) -> list[str]:
    """`topup` as a child process; with `profile_dir`, run under cProfile (stats written on a clean stop)."""
    if profile_dir is None:
        return list(TOPUP)
    return [sys.executable, "-m", "bench.cprofile_child", str(profile_dir / f"{name}.pstats")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    """One child process with its output in a log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log = log_dir / f"{name}.log"
        self.p: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        out = self.log.open("ab")
        self.p = subprocess.Popen(self.args, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        return self

    @property
    def pid(self) -> int:
        assert self.p is not None
        return self.p.pid

    def alive(self) -> bool:
        return self.p is not None and self.p.poll() is None

    def stop(self) -> None:
        if self.p is None or self.p.poll() is not None:
            return
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(15)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait(5)

    def tail(self, n: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""


def rss_kib(pid: int) -> int | None:
    """VmRSS of a process in KiB, from /proc (psutil is not a dependency)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    m = re.search(r"^VmRSS:\s+(\d+)\s+kB", text, re.M)
    return int(m.group(1)) if m else None


def cpu_s(pid: int) -> float | None:
    """User + system CPU seconds a process has used so far (/proc/<pid>/stat, fields 14 and 15)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def system_cpu_s() -> float:
    """CPU seconds used by the whole machine (every process, not just ours) from /proc/stat."""
    parts = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    busy = sum(int(x) for i, x in enumerate(parts) if i not in (3, 4))  # minus idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


def wait_http(url: str, proc: Proc, timeout_s: float = 60.0, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited; see {proc.log}:\n{proc.tail()}")
        try:
            r = httpx.get(url, headers=headers, timeout=1.0, trust_env=False)
            if r.status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} ({proc.name}) did not answer within {timeout_s}s; see {proc.log}")


def pg_url(name: str) -> str:
    return f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{name}"


def create_pg_database(prefix: str) -> str:
    import asyncpg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"

    async def create() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return name


def drop_pg_database(name: str) -> None:
    import asyncpg

    async def drop() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


def pg_conn_args() -> list[str]:
    """-h/-p/-U for the PostgreSQL client tools, taken from the admin DSN."""
    from urllib.parse import urlsplit

    u = urlsplit(PG_ADMIN_DSN)
    return ["-h", u.hostname or "127.0.0.1", "-p", str(u.port or 5432), "-U", u.username or "postgres"]


def run_pgbench(scale: int, clients: int, threads: int, seconds: int, log_dir: Path) -> dict[str, object]:
    """`pgbench -i -s scale` then a TPC-B run in a database of its own; returns the TPS."""
    import shutil

    if shutil.which("pgbench") is None:
        return {"skipped": "pgbench is not installed (it comes with the PostgreSQL client package)"}
    name = create_pg_database("topup_pgbench")
    try:
        conn = pg_conn_args()
        log = (log_dir / "pgbench.log").open("ab")
        subprocess.run(
            ["pgbench", *conn, "-i", "-q", "-s", str(scale), name], stdout=log, stderr=log, check=True
        )
        out = subprocess.run(
            ["pgbench", *conn, "-c", str(clients), "-j", str(threads), "-T", str(seconds), name],
            capture_output=True,
            text=True,
            check=True,
        )
        log.write(out.stdout.encode() + out.stderr.encode())
        log.close()
        m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out.stdout) or re.search(
            r"tps = ([\d.]+)", out.stdout
        )
        lat = re.search(r"latency average = ([\d.]+) ms", out.stdout)
        return {
            "tps": float(m.group(1)) if m else None,
            "latency_avg_ms": float(lat.group(1)) if lat else None,
            "scale": scale,
            "clients": clients,
            "threads": threads,
            "seconds": seconds,
        }
    finally:
        drop_pg_database(name)
