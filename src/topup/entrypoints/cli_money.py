"""Money commands of the `topup` CLI (SPEC section 8): statements, margins, supplier prepayments. Like the
other operator commands they talk to a running server's admin API."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from topup.entrypoints.cli_ops import DEFAULT_URL, TokenOpt, UrlOpt, _admin, _call, _console, _die

statements_app = typer.Typer(help="Reconcile supplier statements.", no_args_is_help=True)
supplier_app = typer.Typer(help="Money with suppliers: accounts and prepayments.", no_args_is_help=True)
CHUNK = 256 * 1024

DateOpt = Annotated[
    str | None, typer.Option("--date", help="The UTC day to cover (YYYY-MM-DD; default: today)")
]
FromOpt = Annotated[str | None, typer.Option("--from", help="Start (RFC 3339 or date); overrides --date")]
ToOpt = Annotated[
    str | None, typer.Option("--to", help="End, exclusive (RFC 3339 or date); overrides --date")
]


def register(app: typer.Typer) -> None:
    app.add_typer(statements_app, name="statements")
    app.add_typer(supplier_app, name="supplier")
    app.command("margins")(margins_cmd)


def period_params(day: str | None, start: str | None, end: str | None) -> dict[str, str]:
    """`from`/`to` query parameters: the given ones, else the UTC day `day` (default today)."""
    try:
        d = date.fromisoformat(day) if day else datetime.now(UTC).date()
    except ValueError:
        _die(f"--date: a day like 2024-05-01, not {day!r}")
    return {"from": start or d.isoformat(), "to": end or (d + timedelta(days=1)).isoformat()}


def _fen(amount: Any) -> str:
    if amount is None:
        return "-"
    amount = int(amount)
    return f"{'-' if amount < 0 else ''}{abs(amount) // 100:,}.{abs(amount) % 100:02d}"


# ---- statements ----------------------------------------------------------------------------------------


@statements_app.command("upload")
def statements_upload(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The statement (CSV)")],
    channel: Annotated[str, typer.Option("--channel", help="The channel whose supplier sent it")],
    day: DateOpt = None,
    start: FromOpt = None,
    end: ToOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="Statement format")] = "csv",
    out: Annotated[Path | None, typer.Option("--out", help="Write the discrepancies CSV here")] = None,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
) -> None:
    """Reconcile FILE against the attempts sent to CHANNEL (a progress bar while a big file uploads)."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TransferSpeedColumn,
    )

    size = file.stat().st_size
    params = {**period_params(day, start, end), "format": fmt}
    console = _console()
    with (
        Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress,
        _admin(url, token) as client,
    ):
        task = progress.add_task(f"uploading {file.name}", total=max(size, 1))

        def chunks() -> Iterator[bytes]:
            with file.open("rb") as f:
                while block := f.read(CHUNK):
                    progress.advance(task, len(block))
                    yield block
            progress.update(task, description="reconciling")

        client.timeout = max(60.0, size / 100_000)  # a server reconciles ~100,000 rows a second or more
        r = _call(
            client,
            "POST",
            f"/admin/v1/channels/{channel}/statements",
            params=params,
            content=chunks(),
            headers={"Content-Type": "text/csv", "Content-Length": str(size)},
        )
    s = r.json()
    _print_statement(s, replayed=r.status_code == 200)
    if out is not None:
        with _admin(url, token) as client:
            csv = _call(client, "GET", f"/admin/v1/statements/{s['statement_id']}/discrepancies.csv")
        out.write_bytes(csv.content)
        console.print(f"discrepancies written to {out}")


def _print_statement(s: dict[str, Any], replayed: bool = False, limit: int = 20) -> None:
    from rich.table import Table

    console = _console()
    console.print(
        f"statement [bold]{s['statement_id']}[/bold] for {s['channel']} {s['from']} .. {s['to']}"
        + (" (this file was reconciled before)" if replayed else "")
    )
    console.print(
        f"{s['rows']} rows, {s['matched']} matched, {s.get('agreed', '-')} agree;"
        f" at stake {_fen(s.get('at_stake'))} yuan"
    )
    found = s["discrepancies"]
    if not found:
        console.print("[green]no discrepancies[/green]")
        return
    counts = ", ".join(f"{k} {n}" for k, n in (s.get("counts") or {}).items() if n)
    console.print(f"[red]{len(found)} discrepancies[/red]: {counts}")
    table = Table("supplier_ref", "kind", "ours", "theirs", "at stake")
    for d in found[:limit]:
        ours, theirs = d.get("ours") or {}, d.get("theirs") or {}
        table.add_row(
            d["supplier_ref"],
            d["kind"],
            f"{ours.get('status')} {_fen(ours.get('amount'))}" if ours else "-",
            f"{theirs.get('status')} {_fen(theirs.get('amount'))}" if theirs else "-",
            _fen(d.get("at_stake")) if d.get("at_stake") else "",
        )
    console.print(table)
    if len(found) > limit:
        console.print(f"... and {len(found) - limit} more (--out FILE writes them all)")


@statements_app.command("sample")
def statements_sample(
    channel: Annotated[str, typer.Option("--channel", help="The channel")],
    day: DateOpt = None,
    start: FromOpt = None,
    end: ToOpt = None,
    with_discrepancies: Annotated[
        bool, typer.Option("--with-discrepancies", help="Plant one discrepancy of each kind")
    ] = False,
    seed: Annotated[int, typer.Option("--seed", help="Which rows get the discrepancies")] = 0,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
) -> None:
    """Print the statement CHANNEL's supplier would send if it agreed with us (for drills and demos)."""
    params: dict[str, Any] = {**period_params(day, start, end), "seed": seed}
    if with_discrepancies:
        params["with_discrepancies"] = "true"
    with _admin(url, token) as client:
        r = _call(client, "GET", f"/admin/v1/channels/{channel}/statements/sample.csv", params=params)
    sys.stdout.write(r.text)


@statements_app.command("show")
def statements_show(
    statement_id: str,
    out: Annotated[Path | None, typer.Option("--out", help="Write the discrepancies CSV here")] = None,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
) -> None:
    """Print a reconciled statement and its discrepancies."""
    with _admin(url, token) as client:
        s = _call(client, "GET", f"/admin/v1/statements/{statement_id}").json()
        if out is not None:
            out.write_bytes(
                _call(client, "GET", f"/admin/v1/statements/{statement_id}/discrepancies.csv").content
            )
    _print_statement(s)


@statements_app.command("list")
def statements_list(url: UrlOpt = DEFAULT_URL, token: TokenOpt = "") -> None:
    """The latest reconciled statements."""
    from rich.table import Table

    with _admin(url, token) as client:
        items = _call(client, "GET", "/admin/v1/statements").json()["items"]
    table = Table("statement", "channel", "from", "to", "rows", "matched", "discrepancies", "at stake")
    for s in items:
        table.add_row(
            s["statement_id"],
            s["channel"],
            s["from"],
            s["to"],
            str(s["rows"]),
            str(s["matched"]),
            str(s["discrepancy_count"]),
            _fen(s.get("at_stake")),
        )
    _console().print(table)


# ---- margins and supplier accounts -------------------------------------------------------------------


def margins_cmd(
    by: Annotated[str, typer.Option("--by", help="channel | product | merchant")] = "channel",
    day: DateOpt = None,
    start: FromOpt = None,
    end: ToOpt = None,
    csv: Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table")] = False,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
) -> None:
    """Revenue, cost and margin of a period by channel, product or merchant (amounts in yuan)."""
    from rich.table import Table

    params = {**period_params(day, start, end), "by": by}
    with _admin(url, token) as client:
        if csv:
            sys.stdout.write(_call(client, "GET", "/admin/v1/reports/margins.csv", params=params).text)
            return
        report = _call(client, "GET", "/admin/v1/reports/margins", params=params).json()
    table = Table(
        by, "orders", "revenue", "cost", "margin", "fulfilments", title=f"{report['from']} .. {report['to']}"
    )
    for line in [*report["items"], {"key": "total", **report["totals"]}]:
        table.add_row(
            line["key"],
            str(line["orders"]),
            _fen(line["revenue"]),
            _fen(line["cost"]),
            _fen(line["margin"]),
            str(line["fulfilments"]),
        )
    _console().print(table)


@supplier_app.command("accounts")
def supplier_accounts(url: UrlOpt = DEFAULT_URL, token: TokenOpt = "") -> None:
    """Per channel: prepaid, cost, our balance (negative: owed) and what the supplier last reported."""
    from rich.table import Table

    with _admin(url, token) as client:
        items = _call(client, "GET", "/admin/v1/supplier-accounts").json()["items"]
    table = Table("channel", "prepaid", "cost", "our books", "supplier says", "difference")
    for a in items:
        reported = a.get("reported")
        table.add_row(
            a["channel"],
            _fen(a["prepaid"]),
            _fen(a["cost"]),
            _fen(a["balance"]),
            f"{_fen(reported['amount'])} {reported['currency']}" if reported else "-",
            _fen(a["difference"]) if a.get("difference") is not None else "",
        )
    _console().print(table)


@supplier_app.command("prepay")
def supplier_prepay(
    channel: str,
    amount: Annotated[int, typer.Argument(help="Fen sent to the supplier (100000 = 1,000.00 yuan)", min=1)],
    reference: Annotated[
        str | None, typer.Option("--reference", help="Your reference (default: made up from now)")
    ] = None,
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = "",
) -> None:
    """Record a prepayment to CHANNEL's supplier (the same reference twice records it once)."""
    body = {"amount": amount, "reference": reference or f"cli-{int(time.time())}"}
    with _admin(url, token) as client:
        r = _call(client, "POST", f"/admin/v1/channels/{channel}/prepayments", json=body)
    p = r.json()
    again = " (this reference was recorded before)" if r.status_code == 200 else ""
    typer.echo(
        f"prepayment {p['reference']} of {_fen(p['amount'])} yuan to {channel}{again};"
        f" our books now say {_fen(p['account']['balance'])} yuan"
    )
