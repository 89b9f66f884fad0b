"""The thin transport half every supplier protocol shares: send one request, bounded in time, and turn
anything the network does into a `NoReply` with a code, never an exception the engine must know."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import orjson

from topup.domain.suppliers import RAW_LIMIT


class NoReply(Exception):
    """The request got no HTTP reply at all; `code` says why (timeout, connect_error, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


async def send(client: httpx.AsyncClient, request: httpx.Request, timeout_s: float) -> httpx.Response:
    """Send `request`, bounding the whole exchange by `timeout_s` (httpx's timeouts are per phase)."""
    try:
        async with asyncio.timeout(timeout_s):
            return await client.send(request)
    except (TimeoutError, httpx.TimeoutException):
        raise NoReply("timeout", f"no reply within {timeout_s:g} s") from None
    except httpx.ConnectError as exc:
        raise NoReply("connect_error", str(exc) or type(exc).__name__) from None
    except httpx.TransportError as exc:
        raise NoReply("network_error", str(exc) or type(exc).__name__) from None
    except httpx.HTTPError as exc:
        raise NoReply("request_error", str(exc) or type(exc).__name__) from None


def build(client: httpx.AsyncClient, method: str, url: str, timeout_s: float, **kw: Any) -> httpx.Request:
    """`client.build_request`, with a URL httpx cannot send to reported as `NoReply("invalid_url")`."""
    try:
        return client.build_request(method, url, timeout=timeout_s, **kw)
    except httpx.InvalidURL as exc:
        raise NoReply("invalid_url", str(exc)) from None


def join(base_url: str, path: str) -> str:
    return base_url.rstrip("/") + path


def ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def raw_text(response: httpx.Response) -> str:
    """The start of a reply body, for the order's timeline."""
    return response.content[: RAW_LIMIT * 4].decode("utf-8", errors="replace")[:RAW_LIMIT]


def json_object(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is not one."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def text(value: Any) -> str | None:
    return None if value is None else str(value)
