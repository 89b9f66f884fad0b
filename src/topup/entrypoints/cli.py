"""`topup ...`: serve, worker, migrate, demo, simulate, and operator commands (orders, groups, batches)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from typing import TYPE_CHECKING, Annotated

import structlog
import typer
import uvicorn

from topup.config import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

app = typer.Typer(
    help="Topup Gateway: prepaid top-up orders with supplier routing and failover.", no_args_is_help=True
)


def _settings(host: str | None = None, port: int | None = None) -> Settings:
    from topup.entrypoints.cli_accounts import settings

    s = settings()
    if host:
        s.host = host
    if port:
        s.port = port
    return s


def _refuse_weak_secrets(refusal: str | None) -> None:
    """One line naming what to set, instead of starting with secrets everyone knows (safety.py)."""
    if refusal:
        typer.echo(f"topup: {refusal}", err=True)
        raise typer.Exit(2)


def build_app(settings: Settings, with_worker: bool = True) -> FastAPI:
    """The app `serve` runs: the worker too unless `with_worker` is False or `run_worker` is off."""
    from topup import bootstrap, logs
    from topup.entrypoints.api.app import create_app

    logs.configure(settings)
    return create_app(bootstrap.build(settings), worker=None if with_worker else False)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8080,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="API only; run `topup worker` separately")
    ] = False,
) -> None:
    """Run the API, the web pages and the background worker in one process (migrations run first)."""
    from topup import safety

    settings = _settings(host, port)
    _refuse_weak_secrets(safety.refusal(settings, host))
    uvicorn.run(
        build_app(settings, with_worker=not no_worker),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        ws="websockets-sansio",
    )


@app.command()
def worker() -> None:
    """Run only the background worker (several can share one PostgreSQL database)."""
    from topup import bootstrap, logs, safety
    from topup.entrypoints.worker import start_background

    settings = _settings()
    _refuse_weak_secrets(safety.worker_refusal(settings))
    logs.configure(settings)

    async def main() -> None:
        c = bootstrap.build(settings)
        await c.start()
        w = await start_background(c, worker=True)
        assert w is not None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await w.aclose()
        structlog.get_logger().info("worker_stopped", jobs_done=w.jobs_done)
        await c.close()

    # uvloop, as `topup serve` gets from uvicorn: the worker's time goes to sockets and callbacks.
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        asyncio.run(main())
    else:
        uvloop.run(main())


@app.command()
def migrate() -> None:
    """Bring the database schema to the latest revision."""
    from topup.adapters.db.engine import Database
    from topup.adapters.db.engine import migrate as run_migrations
    from topup.clock import Clock

    async def main() -> None:
        db = Database(Settings().database_url, Clock())
        await run_migrations(db)
        await db.dispose()

    asyncio.run(main())
    typer.echo("database is at the latest revision")


@app.command()
def prune(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would go; delete nothing")] = False,
) -> None:
    """Delete old operational rows of finished work now, as the daily `prune` job does."""
    from rich.table import Table

    from topup.adapters.db.engine import Database
    from topup.bootstrap import retention_policy
    from topup.clock import Clock
    from topup.entrypoints.cli_ops import _console
    from topup.services.retention import Retention

    settings = _settings()
    policy = retention_policy(settings)

    async def main() -> dict[str, int]:
        db = Database(settings.database_url, Clock())
        try:
            return await Retention(db, policy).prune(dry_run=dry_run)
        finally:
            await db.dispose()

    counts = asyncio.run(main())
    verb = "would delete" if dry_run else "deleted"
    table = Table("table", verb, title=f"Prune ({verb}; batches of {policy.batch_size})")
    for name, n in counts.items():
        table.add_row(name, str(n))
    table.add_row("total", str(sum(counts.values())))
    _console().print(table)


@app.command()
def simulate(
    port: Annotated[int, typer.Option(help="Port")] = 8900,
    host: Annotated[str, typer.Option(help="Interface")] = "127.0.0.1",
    config: Annotated[str | None, typer.Option(help="JSON file with channel behaviour")] = None,
) -> None:
    """Run the built-in supplier simulator (topup-json) as a real HTTP server."""
    from topup.adapters.suppliers.simulator import run

    run(host, port, config)


def example_curl(base: str, merchant: str, secret: str, body: dict) -> str:
    from topup.signing import signed_headers

    raw = json.dumps(body, separators=(",", ":"))
    h = signed_headers(secret, "POST", "/v1/orders", raw.encode(), time.time())
    return (
        f"curl -s -X POST {base}/v1/orders -H 'Content-Type: application/json' "
        f"-H 'X-Merchant-Id: {merchant}' -H 'X-Timestamp: {h['X-Timestamp']}' "
        f"-H 'X-Signature: {h['X-Signature']}' -d '{raw}'"
    )


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Platform port")] = 8080,
    sim_port: Annotated[int, typer.Option(help="Simulated suppliers' port")] = 8900,
    host: Annotated[str, typer.Option(help="Interface")] = "127.0.0.1",
) -> None:
    """Start everything on the embedded default: SQLite, simulated suppliers, seeded catalog and merchant."""
    from topup import bootstrap, safety
    from topup.adapters.suppliers.simulator import start_in_thread
    from topup.domain.catalog import SAMPLE_ACCOUNTS_BY_BRAND
    from topup.services import seed
    from topup.services.demo_suppliers import DEMO_SUPPLIERS

    os.environ.setdefault("TOPUP_ADMIN_TOKEN", "demo-admin-token")
    settings = _settings(host, port)
    _refuse_weak_secrets(safety.refusal(settings, host))
    sim = start_in_thread(seed.simulator_config(settings.callback_base()), host=host, port=sim_port)

    async def do_seed() -> None:
        c = bootstrap.build(settings)
        await c.start()
        async with c.db.transaction() as tx:
            await seed.seed_demo(tx, sim.url, c.box, c.suppliers)
        await c.close()

    asyncio.run(do_seed())
    base = f"http://{host}:{port}"
    body = {
        "merchant_order_id": f"demo-{int(time.time())}",
        "product_code": "airtime.50",
        "account": "13800138000",
    }
    protocols = "\n".join(
        f"  {s.protocol:<12} {s.code:<14} topup example-order --account "
        f"{SAMPLE_ACCOUNTS_BY_BRAND[s.carrier.value]}"
        for s in DEMO_SUPPLIERS
    )
    typer.echo(
        f"""
Topup Gateway demo
  database          {settings.database_url}
  simulated supplier {sim.url}  (behaviour: PUT {sim.url}/control/channels/<code>)
  merchant pages    {base}/login        merchant id: {seed.DEMO_MERCHANT}  password: {seed.DEMO_PASSWORD}
  operator console  {base}/console      token: {settings.admin_token}
  API docs          {base}/docs

A signed order (valid for 5 minutes; `topup example-order` makes a fresh one):
  {example_curl(base, seed.DEMO_MERCHANT, seed.DEMO_SECRET, body)}

Each carrier's airtime goes first to a supplier speaking its own protocol (the console shows them):
{protocols}
"""
    )
    try:
        uvicorn.run(build_app(settings), host=host, port=port, log_level="warning", access_log=False)
    finally:
        sim.stop()


@app.command("example-order")
def example_order(
    base: Annotated[str, typer.Option(help="Platform base URL")] = "http://127.0.0.1:8080",
    product: Annotated[str, typer.Option(help="Product code")] = "airtime.50",
    account: Annotated[str, typer.Option(help="Account")] = "13800138000",
) -> None:
    """Print a freshly signed curl command for the demo merchant."""
    from topup.services import seed

    body = {
        "merchant_order_id": f"demo-{int(time.time() * 1000)}",
        "product_code": product,
        "account": account,
    }
    typer.echo(example_curl(base.rstrip("/"), seed.DEMO_MERCHANT, seed.DEMO_SECRET, body))


# Operator commands (orders, groups, channels, batches, operator accounts) live in cli_ops.
from topup.entrypoints import cli_ops  # noqa: E402

cli_ops.register(app)

# Money with suppliers: statements, margins, prepayments (cli_money).
from topup.entrypoints import cli_money  # noqa: E402

cli_money.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
