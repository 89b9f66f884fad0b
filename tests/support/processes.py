"""Run the platform as real `topup` processes (for kill -9 and multi-worker tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.platform import ADMIN_TOKEN, Platform, free_port

TOPUP = [sys.executable, "-m", "topup.entrypoints.cli"]


class Proc:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args = args
        self.env = env
        self.log = log
        self.p: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        out = self.log.open("ab")
        self.p = subprocess.Popen(self.args, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        return self

    def kill9(self) -> None:
        assert self.p is not None
        self.p.send_signal(signal.SIGKILL)
        self.p.wait(10)

    def stop(self) -> None:
        if self.p is not None and self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)


def platform_env(database_url: str, port: int, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "TOPUP_DATABASE_URL": database_url,
            "TOPUP_ADMIN_TOKEN": ADMIN_TOKEN,
            "TOPUP_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "TOPUP_WORKER_POLL_S": "0.05",
            "TOPUP_ALLOW_PRIVATE_NOTIFY_URLS": "true",
            "TOPUP_LOG_LEVEL": "WARNING",
            # Several processes share one PostgreSQL server (max_connections 100) during tests.
            "TOPUP_DB_POOL_SIZE": "4",
            **extra,
        }
    )
    return env


def serve(
    database_url: str, log: Path, port: int | None = None, worker: bool = True, **extra: str
) -> tuple[Proc, int]:
    port = port or free_port()
    args = [*TOPUP, "serve", "--port", str(port)]
    if not worker:
        args.append("--no-worker")
    proc = Proc(args, platform_env(database_url, port, **extra), log).start()
    wait_http(f"http://127.0.0.1:{port}/admin/v1/ledger/check", proc)
    return proc, port


def worker(database_url: str, log: Path, port: int, **extra: str) -> Proc:
    return Proc([*TOPUP, "worker"], platform_env(database_url, port, **extra), log).start()


def wait_http(url: str, proc: Proc, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.p is not None
        if proc.p.poll() is not None:
            raise AssertionError(
                f"process exited with {proc.p.returncode}; see {proc.log}:\n{proc.log.read_text()[-3000:]}"
            )
        try:
            r = httpx.get(
                url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=1.0, trust_env=False
            )
            if r.status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {timeout_s}s")


def platform_client(port: int, database_url: str) -> Platform:
    admin = httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=30.0,
        trust_env=False,
    )
    return Platform(f"http://127.0.0.1:{port}", database_url, admin)


def all_final(platform: Platform, order_ids: list[str], timeout_s: float = 60.0) -> dict[str, Any]:
    """Wait until every order is final; returns {order_id: order}."""
    deadline = time.monotonic() + timeout_s
    pending = set(order_ids)
    done: dict[str, Any] = {}
    while pending and time.monotonic() < deadline:
        for oid in list(pending):
            try:
                o = platform.admin_order(oid)
            except (httpx.HTTPError, AssertionError):
                break
            if o["status"] in ("succeeded", "failed", "cancelled"):
                done[oid] = o
                pending.discard(oid)
        time.sleep(0.2)
    assert not pending, f"{len(pending)} orders not final after {timeout_s}s"
    return done
