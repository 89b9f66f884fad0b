"""Templates of the merchant pages, their filters, and the security headers every page carries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from starlette.responses import HTMLResponse

from topup.entrypoints import webcommon
from topup.entrypoints.webcommon import render_page, security_headers, template_env

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
STATIC_FILES = {
    "web.css": "text/css; charset=utf-8",
    "batch_editor.js": "text/javascript; charset=utf-8",
    "batch_live.js": "text/javascript; charset=utf-8",
}

CSP = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = security_headers(CSP)


def when(ts: Any) -> str:
    """Unix seconds or an RFC 3339 string -> `2024-05-01 12:00:03 UTC` (whole seconds)."""
    return webcommon.when(ts, whole_seconds=True)


env = template_env(HERE / "templates", when=when)


def page(
    request: Request,
    name: str,
    me: str | None,
    csrf: str | None,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **ctx: Any,
) -> HTMLResponse:
    return render_page(env, {**HEADERS, **(headers or {})}, request, name, status, me=me, csrf=csrf, **ctx)
