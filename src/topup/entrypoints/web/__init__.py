"""Merchant web pages: login, batches (edit, place, pay, watch, download), orders and balance.

Server-rendered with Jinja2; the small scripts in `static/` are ours (no third-party front-end files).
`create_app` includes `routers()`: the pages and the sandbox gateway's hosted pay page.
"""

from __future__ import annotations

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    from topup.entrypoints.web import pages, sandbox

    return [pages.router, sandbox.router]
