"""Operator commands of the `topup` CLI: they talk to a running server's admin and merchant APIs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer


def register(app: typer.Typer) -> None:
    """Attach the operator commands to the main `topup` app."""
    app.add_typer(order_app, name="order")
    app.add_typer(channel_app, name="channel")
    app.add_typer(batch_app, name="batch")
    from topup.entrypoints import cli_accounts  # operator accounts, roles, API tokens, keys

    cli_accounts.register(app)
    app.command("groups")(groups_cmd)


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
