"""The operator console at `/console`: server-rendered pages over the same services as the admin API."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from topup.bootstrap import Container


def install(container: Container) -> None:
    from topup.entrypoints.console import (
        actions,
        admin_extras,
        channel_actions,
        money_pages,
        pages,
        security_pages,
        supplier_pages,
    )
    from topup.entrypoints.console.auth import ConsoleAuth

    container.extras["console_auth"] = ConsoleAuth.for_container(container)
    routers: list[Any] = container.extras.setdefault("routers", [])
    console = APIRouter()
    # Actions first: /console/edit/... and /console/login must not be taken for a page parameter.
    console.include_router(actions.router)
    console.include_router(channel_actions.router)
    console.include_router(money_pages.router)
    console.include_router(security_pages.router)
    console.include_router(supplier_pages.router)
    console.include_router(pages.router)
    routers.append(console)
    routers.append(admin_extras.router)
