"""The web process's own parts, beside the platform `Container`: built by `create_app`, kept on
`app.state.site`, read by the routes through `site_of` (the worker process needs none of them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

if TYPE_CHECKING:
    from topup.entrypoints.console.auth import ConsoleAuth
    from topup.entrypoints.metrics import Metrics
    from topup.entrypoints.stream.hub import EventHub
    from topup.entrypoints.web.auth import WebAuth


@dataclass
class Site:
    event_hub: EventHub
    """Wakes the merchant WebSockets on new events (started with the app)."""
    web_auth: WebAuth
    """Merchant sessions of the web pages."""
    console_auth: ConsoleAuth
    """Operator sessions of the console."""
    metrics: Metrics
    """This app's Prometheus registry (`/metrics`)."""


def site_of(conn: HTTPConnection) -> Site:
    """The site of the app serving this request or WebSocket."""
    site: Site = conn.app.state.site
    return site
