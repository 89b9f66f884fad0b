"""Reading the outcome straight from the database (read-only), and the statistics drawn from it.

Completion is observed here, not through the API, so measuring adds no per-order load to the platform.
"""

from __future__ import annotations

import json
import math
import sqlite3
from typing import Any

FINAL = ("succeeded", "failed", "cancelled")


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))
    return s[k]


def summary_ms(values_s: list[float]) -> dict[str, Any]:
    """p50/p95/p99/max in milliseconds of a list of durations in seconds."""
    ms = [v * 1000 for v in values_s]

    def r(x: float | None) -> float | None:
        return None if x is None else round(x, 1)

    return {
        "n": len(ms),
        "p50_ms": r(percentile(ms, 50)),
        "p95_ms": r(percentile(ms, 95)),
        "p99_ms": r(percentile(ms, 99)),
        "max_ms": r(max(ms) if ms else None),
        "mean_ms": r(sum(ms) / len(ms) if ms else None),
    }


class Observer:
    """Read-only queries on orders / order_events, for PostgreSQL (asyncpg) or SQLite (sqlite3)."""

    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self.pg = database_url.startswith("postgresql")
        self._conn: Any = None

    async def open(self) -> None:
        if self.pg:
            import asyncpg

            self._conn = await asyncpg.connect(self.url)
            await self._conn.execute("SET default_transaction_read_only = on")
        else:
            path = self.url.split("///", 1)[1]
            self._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)

    async def close(self) -> None:
        if self._conn is not None:
            if self.pg:
                await self._conn.close()
            else:
                self._conn.close()

    async def _fetch(self, pg_sql: str, lite_sql: str, *args: Any) -> list[tuple[Any, ...]]:
        if self.pg:
            return [tuple(r) for r in await self._conn.fetch(pg_sql, *args)]
        return list(self._conn.execute(lite_sql, args).fetchall())

    async def open_orders(self, merchant_id: str) -> int:
        """Orders of the merchant not yet final."""
        rows = await self._fetch(
            "SELECT count(*) FROM orders WHERE merchant_id = $1 AND completed_at IS NULL",
            "SELECT count(*) FROM orders WHERE merchant_id = ? AND completed_at IS NULL",
            merchant_id,
        )
        return int(rows[0][0])

    async def counts(self, merchant_id: str) -> dict[str, int]:
        rows = await self._fetch(
            "SELECT status, count(*) FROM orders WHERE merchant_id = $1 GROUP BY status",
            "SELECT status, count(*) FROM orders WHERE merchant_id = ? GROUP BY status",
            merchant_id,
        )
        return {r[0]: int(r[1]) for r in rows}

    async def orders(self, merchant_id: str) -> list[tuple[str, str, float, float | None, int]]:
        """(id, status, created_at, completed_at, attempt_count) of every order of the merchant."""
        return await self._fetch(
            "SELECT id, status, created_at, completed_at, attempt_count FROM orders WHERE merchant_id = $1",
            "SELECT id, status, created_at, completed_at, attempt_count FROM orders WHERE merchant_id = ?",
            merchant_id,
        )

    async def failovers(self, merchant_id: str) -> list[tuple[str, str, float]]:
        """(kind, reason, seconds) from each failed/abandoned attempt to the next attempt's dispatch."""
        sql = """
            SELECT f.kind, {reason}, d.at - f.at
            FROM order_events f
            JOIN orders o ON o.id = f.order_id
            JOIN order_events d ON d.order_id = f.order_id AND d.kind = 'dispatch'
                               AND d.attempt_no = f.attempt_no + 1
            WHERE o.merchant_id = {p} AND f.kind IN ('attempt_failed', 'attempt_abandoned')
        """
        rows = await self._fetch(
            sql.format(reason="f.detail::json->>'reason'", p="$1"),
            sql.format(reason="json_extract(f.detail, '$.reason')", p="?"),
            merchant_id,
        )
        return [(r[0], r[1] or "", float(r[2])) for r in rows]

    async def batch_orders(self, batch_id: str) -> list[tuple[str, float, float | None]]:
        return await self._fetch(
            "SELECT status, created_at, completed_at FROM orders WHERE batch_id = $1",
            "SELECT status, created_at, completed_at FROM orders WHERE batch_id = ?",
            batch_id,
        )

    async def backend_pids(self) -> list[int]:
        """PostgreSQL server processes serving this database (their CPU counts as the platform's)."""
        if not self.pg:
            return []
        rows = await self._conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        return [int(r[0]) for r in rows]

    async def xacts(self) -> int | None:
        """Transactions committed or rolled back in this database so far (PostgreSQL statistics)."""
        if not self.pg:
            return None
        await self._conn.execute("SELECT pg_stat_clear_snapshot()")
        return int(
            await self._conn.fetchval(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
            )
        )

    async def jobs_left(self) -> int:
        rows = await self._fetch(
            "SELECT count(*) FROM jobs WHERE kind IN ('route', 'deadline')",
            "SELECT count(*) FROM jobs WHERE kind IN ('route', 'deadline')",
        )
        return int(rows[0][0])


def failover_summary(rows: list[tuple[str, str, float]]) -> dict[str, Any]:
    """Delay to the next dispatch, split by what failed the attempt."""
    groups: dict[str, list[float]] = {}
    for kind, reason, delay in rows:
        if kind == "attempt_abandoned":
            cause = "abandoned (timeout)"
        elif reason.startswith("rejected"):
            cause = "rejected at dispatch"
        elif reason.startswith("supplier_failed"):
            cause = "failure callback"
        else:
            cause = reason.split(":")[0] or kind
        groups.setdefault(cause, []).append(delay)
    out = {"all": summary_ms([d for _, _, d in rows])}
    out.update({k: summary_ms(v) for k, v in sorted(groups.items())})
    return out


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=False, default=str)
