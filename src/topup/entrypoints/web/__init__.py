"""Merchant web pages: login, batches (edit, place, pay, watch, download), orders and balance.

Server-rendered with Jinja2; the small scripts in `static/` are ours (no third-party front-end files).
`install(container)` registers the pages and the sandbox gateway's hosted pay page.
"""

from __future__ import annotations

from typing import Any


def install(container: Any) -> None:
    from topup.entrypoints.web import pages, sandbox
    from topup.entrypoints.web.auth import WebAuth

    container.extras["web_auth"] = WebAuth.for_container(container)
    routers: list[Any] = container.extras.setdefault("routers", [])
    routers.append(pages.router)
    routers.append(sandbox.router)
