"""Jinja2 templates of the console, their filters, and the security headers every page carries."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

from topup.entrypoints.websession import Session

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"

CSP = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

DONE = {
    "saved": "{what} saved.",
    "deposited": "Deposit booked for {what}.",
    "replayed": "Deposit reference already booked for {what}; nothing changed.",
    "resolved": "Exception {what} resolved.",
    "enabled": "Channel {what} enabled.",
    "disabled": "Channel {what} disabled.",
}
_WHAT = re.compile(r"^[A-Za-z0-9_.\- ]{1,80}$")


def money(fen: Any) -> str:
    if fen is None:
        return "-"
    fen = int(fen)
    sign = "-" if fen < 0 else ""
    return f"{sign}¥{abs(fen) // 100:,}.{abs(fen) % 100:02d}"


def when(ts: Any) -> str:
    """Unix seconds or an RFC 3339 string -> `2024-05-01 12:00:03 UTC`."""
    if ts is None or ts == "":
        return "-"
    if isinstance(ts, str):
        return ts.replace("T", " ").replace("Z", " UTC")
    return datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
env.filters.update(money=money, when=when, pct=pct, num=num)


def flash(request: Request) -> str | None:
    done = request.query_params.get("done")
    what = request.query_params.get("what", "")
    if done not in DONE or not _WHAT.match(what or "-"):
        return None
    return DONE[done].format(what=what or "item")


def page(request: Request, name: str, session: Session | None, status: int = 200, **ctx: Any) -> HTMLResponse:
    from topup.entrypoints.console.auth import display_name

    html = env.get_template(name).render(
        request=request,
        me=display_name(session) if session else None,
        csrf=session.csrf if session else None,
        path=request.url.path,
        flash=flash(request),
        **ctx,
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS)
