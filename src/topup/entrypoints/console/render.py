"""Jinja2 templates of the console, their filters, and the security headers every page carries."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi import Request
from starlette.responses import HTMLResponse

from topup.domain.regions import region_name
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
    "removed": "{what} removed.",
    "revoked": "{what} revoked.",
}
_WHAT = re.compile(r"^[A-Za-z0-9_.\- ]{1,80}$")


def pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


env = template_env(HERE / "templates", pct=pct, num=num, region_name=region_name)


def flash(request: Request) -> str | None:
    done = request.query_params.get("done")
    what = request.query_params.get("what", "")
    if done not in DONE or not _WHAT.match(what or "-"):
        return None
    return DONE[done].format(what=what or "item")


def page(request: Request, name: str, session: Session | None, status: int = 200, **ctx: Any) -> HTMLResponse:
    from topup.domain.roles import Role
    from topup.entrypoints.console.auth import display_name
    from topup.entrypoints.console.roles import actor_of

    actor = actor_of(request) if session else None

    def can(role: str) -> bool:
        """Templates show an action only to a role that may take it (the server checks again)."""
        return actor is not None and actor.can(Role(role))

    return render_page(
        env,
        HEADERS,
        request,
        name,
        status,
        me=display_name(session) if session else None,
        my_role=str(actor.role) if actor else None,
        can=can,
        csrf=session.csrf if session else None,
        flash=flash(request),
        paused_channels=paused_channels(request) if session else [],
        **ctx,
    )


def paused_channels(request: Request) -> list[Any]:
    """Channels that paused themselves (SPEC 7), for the banner on every page: from the configuration
    this process read last (pages about groups and channels read it fresh), so no query per page."""
    c = getattr(request.app.state, "container", None)
    snap = c.cache.peek() if c is not None else None
    return sorted((ch for ch in snap.channels.values() if ch.paused), key=lambda ch: ch.code) if snap else []
