"""`--prefill N`: a year of finished orders written straight into a configured PostgreSQL database.

Every order leaves what a real finished order leaves (the shape was copied from orders run through the
platform): one or two final attempts, its `order_events` timeline, the supplier `callbacks`, its outbox
`events` with a delivered webhook (`deliveries` + `delivery_attempts`) and ledger transfers posted as
`services/ledger.py` posts them: `hold` then `capture` (succeeded) or `release` (failed, a refund), each
two postings summing to zero, funded by one `deposit` per merchant and chunk. Cached balances are moved
by exactly the sum of the new postings, so `GET /admin/v1/ledger/check` still balances.

History belongs to merchants of its own (`history-1` .. `history-8`, copies of a bench merchant): the
bench observes each phase by its merchant, so history on those merchants would be counted as the
phase's orders. Products, group and channels are the bench's. Ids have an `h` where generated ids have
hex digits (`ord_<ms hex>h<n>`, see `topup.ids`), so they never collide and still sort by time.

Run after `configure` and before the phases; it ends with VACUUM ANALYZE. Also usable on its own:

    python -m bench.prefill postgresql://postgres@127.0.0.1/topup_x 5000000 [--template-merchant M]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from bench.prefill_sql import (
    ATTEMPTS,
    BALANCES,
    CALLBACKS,
    DELIVERIES,
    DELIVERY_ATTEMPTS,
    DEPOSITS,
    EVENTS,
    LOOSE_INDEXES,
    MERCHANTS,
    ORDER_EVENTS,
    ORDERS,
    POSTINGS,
    SESSION,
    STAGE,
    TRANSFERS,
)

HISTORY_MERCHANTS = 8
DAY = 86_400.0
TABLES = (
    "orders",
    "attempts",
    "order_events",
    "callbacks",
    "events",
    "deliveries",
    "delivery_attempts",
    "transfers",
    "postings",
)


@dataclass
class PrefillResult:
    orders: int
    seconds: float
    vacuum_seconds: float
    sizes: dict[str, tuple[int, str]] = field(default_factory=dict)
    """table -> (rows estimate, total size with indexes)."""
    step_seconds: dict[str, float] = field(default_factory=dict)
    """Seconds each statement took, summed over chunks and connections (`indexes`: rebuilding them)."""

    def text(self) -> str:
        lines = [
            f"prefill: {self.orders:,} finished orders in {self.seconds:.1f} s"
            f" (+ VACUUM ANALYZE {self.vacuum_seconds:.1f} s)"
        ]
        lines += [f"  {t:<18} {rows:>12,} rows  {size:>10}" for t, (rows, size) in self.sizes.items()]
        steps = ", ".join(f"{k} {v:.0f}" for k, v in self.step_seconds.items())
        lines.append(f"  statement seconds (all connections): {steps}")
        return "\n".join(lines)


async def _chunk(conn: Any, first: int, last: int, start: float, step: float, cfg: dict[str, Any]) -> None:
    async with conn.transaction():
        t0 = time.monotonic()
        await conn.execute(
            STAGE, first, last, start, cfg["channels"], step, HISTORY_MERCHANTS, cfg["product"]
        )
        cfg["timings"]["staging"] = cfg["timings"].get("staging", 0.0) + time.monotonic() - t0
        steps: list[tuple[str, str, tuple[Any, ...]]] = [
            ("orders", ORDERS, (cfg["group"],)),
            ("attempts", ATTEMPTS, (cfg["group"],)),
            ("order_events", ORDER_EVENTS, (cfg["group"],)),
            ("callbacks", CALLBACKS, ()),
            ("events", EVENTS, ()),
            ("deliveries", DELIVERIES, ()),
            ("delivery_attempts", DELIVERY_ATTEMPTS, ()),
            ("transfers", TRANSFERS, ()),
            ("postings", POSTINGS, ()),
            ("deposits", DEPOSITS, (first, start - DAY)),
        ]
        for name, sql, args in steps:
            t0 = time.monotonic()
            await conn.execute(sql, *args)
            cfg["timings"][name] = cfg["timings"].get(name, 0.0) + time.monotonic() - t0
        await conn.execute(BALANCES)


async def prefill(
    database_url: str,
    n: int,
    *,
    template_merchant: str,
    product: str = "airtime.50",
    group: str = "air",
    chunk: int = 250_000,
    drop_indexes_from: int = 200_000,
    connections: int = 2,
    now: float | None = None,
    vacuum: bool = True,
) -> PrefillResult:
    """Write `n` finished orders of the 365 days before `now` (see the module docstring)."""
    import asyncpg

    now = time.time() if now is None else now
    conn = await asyncpg.connect(database_url)
    try:
        t0 = time.monotonic()
        channels = [
            r[0]
            for r in await conn.fetch(
                "SELECT channel_code FROM group_members WHERE group_code = $1 ORDER BY priority", group
            )
        ]
        if not channels:
            raise RuntimeError(f"group {group!r} has no channels: configure the platform first")
        if await conn.fetchval("SELECT count(*) FROM merchants WHERE id = $1", template_merchant) != 1:
            raise RuntimeError(f"merchant {template_merchant!r} does not exist: configure the platform first")
        if await conn.fetchval("SELECT count(*) FROM products WHERE code = $1", product) != 1:
            raise RuntimeError(f"product {product!r} does not exist: configure the platform first")
        start = now - 365 * DAY
        await conn.execute(MERCHANTS, template_merchant, start - 2 * DAY, HISTORY_MERCHANTS)
        # A second prefill of the same database continues the numbering.
        done = await conn.fetchval("SELECT count(*) FROM orders WHERE merchant_id LIKE 'history-%'")
        first_n, step = int(done) + 1, (365 * DAY - 3600.0) / max(n, 1)
        cfg: dict[str, Any] = {"channels": channels, "group": group, "product": product, "timings": {}}
        # Building an index once is far cheaper than maintaining it row by row.
        loose = await conn.fetch(LOOSE_INDEXES, list(TABLES)) if n >= drop_indexes_from else []
        for ix in loose:
            await conn.execute(f'DROP INDEX "{ix["name"]}"')
        chunks = [(f, min(f + chunk - 1, first_n + n - 1)) for f in range(first_n, first_n + n, chunk)]
        origin, loaded = start - first_n * step, [0]

        async def loader() -> None:
            c = await asyncpg.connect(database_url)
            try:
                # Bulk load of rows consistent by construction: no per-row foreign key triggers.
                await c.execute(SESSION)
                while chunks:
                    first, last = chunks.pop(0)
                    await _chunk(c, first, last, origin, step, cfg)
                    loaded[0] += last - first + 1
                    print(f"prefill: {loaded[0]:,}/{n:,} orders, {time.monotonic() - t0:.0f} s", flush=True)
            except BaseException:
                chunks.clear()  # the other loaders stop after their current chunk
                raise
            finally:
                await c.close()

        try:
            outcomes = await asyncio.gather(
                *(loader() for _ in range(min(connections, len(chunks)))), return_exceptions=True
            )
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
        finally:
            t2 = time.monotonic()
            await conn.execute("SET maintenance_work_mem = '512MB'")
            for ix in loose:
                await conn.execute(ix["definition"])
            if loose:
                cfg["timings"]["indexes"] = time.monotonic() - t2
        seconds = time.monotonic() - t0
        t1 = time.monotonic()
        if vacuum:
            for table in TABLES:
                await conn.execute(f"VACUUM ANALYZE {table}")
        result = PrefillResult(n, seconds, time.monotonic() - t1, step_seconds=cfg["timings"])
        for table in TABLES:
            row = await conn.fetchrow(
                "SELECT c.reltuples::bigint AS rows, pg_size_pretty(pg_total_relation_size(c.oid)) AS size"
                " FROM pg_class c WHERE c.oid = $1::regclass",
                table,
            )
            result.sizes[table] = (int(row["rows"]), str(row["size"]))
        return result
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.prefill", description=__doc__.split("\n")[0])
    ap.add_argument("database_url", help="postgresql://... (a configured platform's database)")
    ap.add_argument("orders", type=int)
    ap.add_argument("--template-merchant", default="bench-batch", help="the merchant history merchants copy")
    ap.add_argument("--product", default="airtime.50")
    ap.add_argument("--group", default="air")
    args = ap.parse_args(argv)
    result = asyncio.run(
        prefill(
            args.database_url,
            args.orders,
            template_merchant=args.template_merchant,
            product=args.product,
            group=args.group,
        )
    )
    print(result.text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
