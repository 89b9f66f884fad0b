"""Jinja2 templates of the console, their filters, and the security headers every page carries."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi import Request
from starlette.responses import HTMLResponse

from topup.entrypoints.webcommon import render_page, security_headers, template_env
from topup.entrypoints.websession import Session

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"

CSP = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = security_headers(CSP)

DONE = {
    "saved": "{what} saved.",
    "deposited": "Deposit booked for {what}.",
    "replayed": "Deposit reference already booked for {what}; nothing changed.",
    "resolved": "Exception {what} resolved.",
    "enabled": "Channel {what} enabled.",
    "disabled": "Channel {what} disabled.",
}
_WHAT = re.compile(r"^[A-Za-z0-9_.\- ]{1,80}$")


def pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


env = template_env(HERE / "templates", pct=pct, num=num)


def flash(request: Request) -> str | None:
    done = request.query_params.get("done")
    what = request.query_params.get("what", "")
    if done not in DONE or not _WHAT.match(what or "-"):
        return None
    return DONE[done].format(what=what or "item")


def page(request: Request, name: str, session: Session | None, status: int = 200, **ctx: Any) -> HTMLResponse:
    from topup.entrypoints.console.auth import display_name

    return render_page(
        env,
        HEADERS,
        request,
        name,
        status,
        me=display_name(session) if session else None,
        csrf=session.csrf if session else None,
        flash=flash(request),
        **ctx,
    )
