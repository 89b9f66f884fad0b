"""`topup ...`: serve, worker, migrate, demo, simulate, and operator commands (orders, groups, batches)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import structlog
import typer
import uvicorn

from topup.config import Settings

app = typer.Typer(
    help="Topup Gateway: prepaid top-up orders with supplier routing and failover.", no_args_is_help=True
)


def _settings(host: str | None = None, port: int | None = None) -> Settings:
    s = Settings()
    if host:
        s.host = host
    if port:
        s.port = port
    return s


def build_app(settings: Settings, with_worker: bool = True):  # type: ignore[no-untyped-def]
    from topup import bootstrap, logs
    from topup.entrypoints.api.app import create_app
    from topup.entrypoints.worker import start_worker

    logs.configure(settings)
    container = bootstrap.build(settings)
    plugins = bootstrap.install_plugins(container)
    hooks = [start_worker] if with_worker and settings.run_worker else []
    return create_app(container, on_startup=hooks + plugins)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8080,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="API only; run `topup worker` separately")
    ] = False,
) -> None:
    """Run the API, the web pages and the background worker in one process (migrations run first)."""
    settings = _settings(host, port)
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
    from topup import bootstrap, logs
    from topup.entrypoints.worker import Worker, default_handlers

    settings = Settings()
    logs.configure(settings)

    async def main() -> None:
        c = bootstrap.build(settings)
        bootstrap.install_plugins(c)
        await c.start()
        w = await Worker(c, default_handlers(c)).start()
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
    from topup import bootstrap
    from topup.adapters.suppliers.simulator import start_in_thread
    from topup.services import seed

    os.environ.setdefault("TOPUP_ADMIN_TOKEN", "demo-admin-token")
    settings = _settings(host, port)
    sim = start_in_thread(seed.simulator_config(), host=host, port=sim_port)

    async def do_seed() -> None:
        c = bootstrap.build(settings)
        await c.start()
        async with c.db.transaction() as tx:
            await seed.seed_demo(tx, sim.url)
        await c.close()

    asyncio.run(do_seed())
    base = f"http://{host}:{port}"
    body = {
        "merchant_order_id": f"demo-{int(time.time())}",
        "product_code": "airtime.50",
        "account": "13800138000",
    }
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


# ---- operator commands: talk to a running server's admin and merchant APIs ----------------------

# Tests inject an httpx transport here; None means real HTTP.
HTTP_TRANSPORT: httpx.BaseTransport | None = None

UrlOpt = Annotated[str, typer.Option("--url", envvar="TOPUP_URL", help="Platform base URL")]
TokenOpt = Annotated[
    str,
    typer.Option("--token", envvar="TOPUP_ADMIN_TOKEN", help="Admin token (default: $TOPUP_ADMIN_TOKEN)"),
]
DEFAULT_URL = "http://127.0.0.1:8080"


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False)


def _http(url: str, headers: dict[str, str] | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=url.rstrip("/"),
        headers=headers or {},
        timeout=30.0,
        trust_env=False,
        transport=HTTP_TRANSPORT,
    )


def _admin(url: str, token: str) -> httpx.Client:
    if not token:
        _die("no admin token: set TOPUP_ADMIN_TOKEN or pass --token")
    return _http(url, {"Authorization": f"Bearer {token}"})


def _die(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _call(client: httpx.Client, method: str, path: str, **kw: Any) -> httpx.Response:
    try:
        r = client.request(method, path, **kw)
    except httpx.HTTPError as e:
        _die(f"cannot reach {client.base_url}: {e}")
    if r.status_code >= 400:
        try:
            err = r.json()["error"]
            _die(f"{r.status_code} {err['code']}: {err['message']}")
        except (ValueError, KeyError, TypeError):
            _die(f"{r.status_code} from {method} {path}")
    return r


order_app = typer.Typer(help="Look at orders.", no_args_is_help=True)
channel_app = typer.Typer(help="Switch channels on and off.", no_args_is_help=True)
batch_app = typer.Typer(help="Submit batches through the signed merchant API.", no_args_is_help=True)
operator_app = typer.Typer(help="Operator accounts for the console.", no_args_is_help=True)
app.add_typer(order_app, name="order")
app.add_typer(channel_app, name="channel")
app.add_typer(batch_app, name="batch")
app.add_typer(operator_app, name="operator")


@order_app.command("show")
def order_show(order_id: str, url: UrlOpt = DEFAULT_URL, token: TokenOpt = "") -> None:
    """Print an order with its attempts and full timeline (callbacks, notifications, ledger, exceptions)."""
    from rich.table import Table

    from topup.entrypoints.console.timeline import entries

    with _admin(url, token) as client:
        o = _call(client, "GET", f"/admin/v1/orders/{order_id}").json()
    out = _console()
    out.print(f"[bold]Order {o['order_id']}[/bold]  status [bold]{o['status']}[/bold]")
    out.print(f"merchant {o['merchant_id']} / {o['merchant_order_id']}   batch {o.get('batch_id') or '-'}")
    out.print(
        f"product {o['product_code']} ({o['business_type']})  account {o['account']}"
        f"  price {o['price']} fen  group {o.get('group') or '-'}"
        f"  plan {' > '.join(o.get('route_plan') or []) or '-'}"
    )
    if o.get("failure_reason"):
        out.print(f"[red]failure: {o['failure_reason']}[/red]")
    attempts = Table("#", "channel", "ref", "status", "reason", "started", "finished", title="Attempts")
    for a in o["attempts"]:
        attempts.add_row(
            str(a["no"]),
            a["channel"],
            a["ref"],
            a["status"],
            a["reason"] or "",
            a["started_at"],
            a["finished_at"] or "",
        )
    out.print(attempts)
    timeline = Table("at", "source", "what", "detail", title="Timeline")
    for e in entries(o):
        colour = {"ok": "green", "bad": "red"}.get(e.tone, "")
        what = f"[{colour}]{e.title}[/{colour}]" if colour else e.title
        timeline.add_row(e.at, e.source + (f" #{e.attempt}" if e.attempt else ""), what, e.detail)
    out.print(timeline)


@app.command("groups")
def groups_cmd(url: UrlOpt = DEFAULT_URL, token: TokenOpt = "") -> None:
    """List routing groups with their active channel and ranking."""
    from rich.table import Table

    with _admin(url, token) as client:
        items = _call(client, "GET", "/admin/v1/groups").json()["items"]
    table = Table("group", "serves", "strategy", "active", "ranking", "switched", title="Groups")
    for g in items:
        serves = g["business_type"] + (f" / {g['brand']}" if g.get("brand") else "")
        table.add_row(
            g["code"],
            serves,
            g["strategy"],
            g["active_channel"] or "-",
            " > ".join(g["ranking"]),
            g["switched_at"] or "",
        )
    _console().print(table)


def _switch_channel(code: str, action: str, url: str, token: str) -> None:
    with _admin(url, token) as client:
        ch = _call(client, "POST", f"/admin/v1/channels/{code}/{action}").json()
    typer.echo(f"channel {ch['code']} is now {'enabled' if ch['enabled'] else 'disabled'}")


@channel_app.command("enable")
def channel_enable(code: str, url: UrlOpt = DEFAULT_URL, token: TokenOpt = "") -> None:
    """Route new attempts to CODE again."""
    _switch_channel(code, "enable", url, token)


@channel_app.command("disable")
def channel_disable(code: str, url: UrlOpt = DEFAULT_URL, token: TokenOpt = "") -> None:
    """Stop routing new attempts to CODE (attempts in flight finish normally)."""
    _switch_channel(code, "disable", url, token)


def read_batch_csv(path: Path) -> list[dict[str, str]]:
    """`product_code,account` rows (a header line first); other columns are ignored."""
    import csv

    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = {"product_code", "account"} - set(reader.fieldnames or [])
        if missing:
            _die(f"{path}: the header must name the columns product_code and account")
        return [
            {
                "product_code": (r.get("product_code") or "").strip(),
                "account": (r.get("account") or "").strip(),
            }
            for r in reader
        ]


class MerchantClient:
    """Signed merchant requests (SPEC section 0)."""

    def __init__(self, url: str, merchant_id: str, secret: str) -> None:
        self.http = _http(url)
        self.merchant_id = merchant_id
        self.secret = secret

    def request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        from topup.signing import MERCHANT_HEADER, signed_headers

        raw = json.dumps(body, separators=(",", ":")).encode() if body is not None else b""
        headers = signed_headers(self.secret, method, path, raw, time.time())
        headers[MERCHANT_HEADER] = self.merchant_id
        if raw:
            headers["Content-Type"] = "application/json"
        return _call(self.http, method, path, content=raw, headers=headers)

    def close(self) -> None:
        self.http.close()


FINAL_BATCH = ("completed", "cancelled")


@batch_app.command("submit")
def batch_submit(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV with product_code,account")],
    merchant: Annotated[str, typer.Option("--merchant", envvar="TOPUP_MERCHANT_ID", help="Merchant id")],
    secret: Annotated[str, typer.Option("--secret", envvar="TOPUP_MERCHANT_SECRET", help="Merchant secret")],
    pay: Annotated[str | None, typer.Option("--pay", help="Pay at once: balance | sandbox")] = None,
    batch_id: Annotated[
        str | None, typer.Option("--batch-id", help="merchant_batch_id (default: derived from the file)")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Results CSV (default: FILE.results.csv)")] = None,
    url: UrlOpt = DEFAULT_URL,
    poll_s: Annotated[float, typer.Option("--poll", help="Seconds between status checks")] = 1.0,
    timeout_s: Annotated[float, typer.Option("--timeout", help="Give up waiting after this long")] = 3600.0,
) -> None:
    """Submit FILE as one batch, optionally pay for it, follow it to the end and write the results CSV."""
    import hashlib

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    if pay not in (None, "balance", "sandbox"):
        _die("--pay is balance or sandbox")
    rows = read_batch_csv(file)
    if not rows:
        _die(f"{file}: no rows")
    digest = hashlib.sha256(file.read_bytes()).hexdigest()[:12]
    # The same file submitted again is the same batch (the API answers 200 with it, nothing doubles).
    body = {"merchant_batch_id": batch_id or f"cli-{digest}", "rows": rows, "notify_url": None}
    console = _console()
    client = MerchantClient(url, merchant, secret)
    try:
        r = client.request("POST", "/v1/batches", body)
        b = r.json()
        console.print(
            f"batch [bold]{b['batch_id']}[/bold] ({b['merchant_batch_id']}): {b['valid_rows']} of "
            f"{b['total_rows']} rows valid, amount {b['amount']} fen, status {b['status']}"
            + (" (submitted before)" if r.status_code == 200 else "")
        )
        invalid = [row for row in b.get("rows", []) if row.get("status") == "invalid"]
        if invalid:
            table = Table("row", "error", title=f"{len(invalid)} invalid rows (not placed)")
            for row in invalid[:20]:
                err = row.get("error") or {}
                table.add_row(str(row["row"]), f"{err.get('code')}: {err.get('message')}")
            console.print(table)
        path = f"/v1/batches/{b['batch_id']}"
        if pay and b["status"] == "awaiting_payment":
            payment = client.request("POST", f"{path}/payment", {"method": pay}).json()
            console.print(f"payment {payment['payment_id']} ({payment['method']}): {payment['status']}")
            if payment.get("pay_url"):
                console.print(f"complete the sandbox payment at {payment['pay_url']}")
        if pay or b["status"] not in ("awaiting_payment", *FINAL_BATCH):
            deadline = time.monotonic() + timeout_s
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            ) as progress:
                task = progress.add_task("orders final", total=max(1, b["valid_rows"]))
                while True:
                    b = client.request("GET", path).json()
                    counts = b.get("counts") or {}
                    done = sum(int(counts.get(k, 0)) for k in ("succeeded", "failed", "cancelled"))
                    progress.update(task, completed=done, description=f"{b['status']}")
                    if b["status"] in FINAL_BATCH:
                        break
                    if time.monotonic() > deadline:
                        _die(f"batch {b['batch_id']} still {b['status']} after {timeout_s:g} s")
                    time.sleep(poll_s)
            console.print("counts: " + ", ".join(f"{k} {v}" for k, v in (b.get("counts") or {}).items()))
        elif b["status"] == "awaiting_payment":
            console.print("not paid: pay with --pay balance, or in the merchant pages")
        results = client.request("GET", f"{path}/results.csv")
        target = out or file.with_name(f"{file.stem}.results.csv")
        target.write_bytes(results.content)
        console.print(f"results written to {target}")
    finally:
        client.close()


def _operator_db() -> Any:
    from topup.adapters.db.engine import Database
    from topup.clock import Clock

    return Database(Settings().database_url, Clock())


@operator_app.command("add")
def operator_add(
    name: str,
    reset: Annotated[
        bool, typer.Option("--reset", help="Change the password of an existing operator")
    ] = False,
) -> None:
    """Create a console account NAME; prompts for its password."""
    import re

    from sqlalchemy import select, update

    from topup.adapters.db import tables as t
    from topup.adapters.db.engine import migrate as run_migrations
    from topup.services.merchants import hash_password

    if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", name):
        _die("operator names are 1-64 of A-Z a-z 0-9 _ . -")
    password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 10:
        _die("use at least 10 characters")
    hashed = hash_password(password)

    async def main() -> str:
        db = _operator_db()
        try:
            await run_migrations(db)
            async with db.transaction() as tx:
                ops = t.operators
                exists = (await tx.conn.execute(select(ops.c.id).where(ops.c.id == name))).first()
                if exists and not reset:
                    return "exists"
                if exists:
                    await tx.conn.execute(update(ops).where(ops.c.id == name).values(password_hash=hashed))
                    return "updated"
                await tx.conn.execute(ops.insert().values(id=name, password_hash=hashed, created_at=tx.now))
                return "created"
        finally:
            await db.dispose()

    outcome = asyncio.run(main())
    if outcome == "exists":
        _die(f"operator {name} exists; use --reset to change the password")
    typer.echo(f"operator {name} {outcome}; sign in at /console with this name and password")


@operator_app.command("list")
def operator_list() -> None:
    """List console accounts."""
    from sqlalchemy import select

    from topup.adapters.db import tables as t
    from topup.clock import rfc3339

    async def main() -> list[Any]:
        db = _operator_db()
        try:
            async with db.transaction() as tx:
                q = select(t.operators.c.id, t.operators.c.created_at).order_by(t.operators.c.id)
                return list((await tx.conn.execute(q)).all())
        finally:
            await db.dispose()

    for r in asyncio.run(main()):
        typer.echo(f"{r.id}\tcreated {rfc3339(r.created_at)}")


@operator_app.command("remove")
def operator_remove(name: str) -> None:
    """Delete a console account (its open sessions stop working on their next request)."""
    from sqlalchemy import delete

    from topup.adapters.db import tables as t

    async def main() -> int:
        db = _operator_db()
        try:
            async with db.transaction() as tx:
                res = await tx.conn.execute(delete(t.operators).where(t.operators.c.id == name))
                return int(res.rowcount)
        finally:
            await db.dispose()

    if not asyncio.run(main()):
        _die(f"no operator {name}")
    typer.echo(f"operator {name} removed")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
