"""The operator console at `/console`: server-rendered pages over the same services as the admin API."""

from __future__ import annotations

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    """The console's pages and actions, and the admin API routes only the console uses."""
    from topup.entrypoints.console import (
        actions,
        admin_extras,
        channel_actions,
        money_pages,
        pages,
        security_pages,
        supplier_pages,
    )

    console = APIRouter()
    # Actions first: /console/edit/... and /console/login must not be taken for a page parameter.
    console.include_router(actions.router)
    console.include_router(channel_actions.router)
    console.include_router(money_pages.router)
    console.include_router(security_pages.router)
    console.include_router(supplier_pages.router)
    console.include_router(pages.router)
    return [console, admin_extras.router]
