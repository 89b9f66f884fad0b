"""Templates of the merchant pages, their filters, and the security headers every page carries."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

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
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def money(fen: Any) -> str:
    if fen is None or fen == "":
        return "-"
    fen = int(fen)
    sign = "-" if fen < 0 else ""
    return f"{sign}¥{abs(fen) // 100:,}.{abs(fen) % 100:02d}"


def when(ts: Any) -> str:
    """Unix seconds or an RFC 3339 string -> `2024-05-01 12:00:03 UTC`."""
    if ts is None or ts == "":
        return "-"
    if isinstance(ts, str):
        return ts.replace("T", " ").replace("Z", " UTC").split(".")[0] + (" UTC" if ts.endswith("Z") else "")
    return datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
env.filters.update(money=money, when=when)


def page(
    request: Request,
    name: str,
    me: str | None,
    csrf: str | None,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **ctx: Any,
) -> HTMLResponse:
    html = env.get_template(name).render(request=request, me=me, csrf=csrf, path=request.url.path, **ctx)
    return HTMLResponse(html, status_code=status, headers={**HEADERS, **(headers or {})})
