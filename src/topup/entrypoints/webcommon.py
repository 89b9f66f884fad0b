"""Shared by the merchant pages and the operator console: template filters, Jinja setup, page responses."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse


def security_headers(csp: str) -> dict[str, str]:
    """The headers every page carries, with the site's Content-Security-Policy."""
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }


def money(fen: Any) -> str:
    """Integer fen -> `¥1,234.56` (`-` when missing)."""
    if fen is None or fen == "":
        return "-"
    fen = int(fen)
    sign = "-" if fen < 0 else ""
    return f"{sign}¥{abs(fen) // 100:,}.{abs(fen) % 100:02d}"


def when(ts: Any, *, whole_seconds: bool = False) -> str:
    """Unix seconds or an RFC 3339 string -> `2024-05-01 12:00:03 UTC`.

    An RFC 3339 string keeps its fraction of a second unless `whole_seconds`.
    """
    if ts is None or ts == "":
        return "-"
    if isinstance(ts, str):
        shown = ts.replace("T", " ").replace("Z", " UTC")
        if whole_seconds:
            return shown.split(".")[0] + (" UTC" if ts.endswith("Z") else "")
        return shown
    return datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def template_env(templates: Path, **filters: Any) -> Environment:
    """Autoescaped Jinja2 templates from a directory, with `money`, `when` and the given filters."""
    env = Environment(
        loader=FileSystemLoader(templates),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update({"money": money, "when": when, **filters})
    return env


def render_page(
    env: Environment,
    headers: dict[str, str],
    request: Request,
    name: str,
    status: int = 200,
    **ctx: Any,
) -> HTMLResponse:
    """Render a template (it gets `request` and `path`, plus `ctx`) as an HTML response with `headers`."""
    html = env.get_template(name).render(request=request, path=request.url.path, **ctx)
    return HTMLResponse(html, status_code=status, headers=headers)
