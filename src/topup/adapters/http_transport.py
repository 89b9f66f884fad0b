"""An httpx transport that sends over aiohttp's connection pool.

The platform speaks httpx everywhere (requests, responses, errors, `MockTransport` in tests); only the
wire underneath changes. httpcore's pool walks every pooled connection on each request and asks each
socket whether it is still readable, so with dozens of requests in flight a request cost ~2.5 ms of
CPU on this machine, against ~0.5 ms through this transport (`docs/performance.md`, "HTTP client").

What stays httpx's: building and signing the request, redirects (never followed here), decoding the
body by its `Content-Encoding`, and the exceptions callers catch. aiohttp only moves bytes: the URL is
sent exactly as httpx encoded it, no header of its own is added and nothing is decompressed.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import aiohttp
import certifi
import httpx
import yarl

# The same pool as the httpx client it replaces (`httpx.Limits(max_connections=200)`), and an idle
# connection dropped before uvicorn's 5 s keep-alive would close it under a request.
MAX_CONNECTIONS = 200
KEEPALIVE_S = 4.0
# The peer closed the connection or sent something that is not HTTP.
_BROKEN_REPLY = (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientResponseError)


class _Body(httpx.AsyncByteStream):
    """The whole response body, read before the aiohttp response was released."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._body


class AiohttpTransport(httpx.AsyncBaseTransport):
    """`httpx.AsyncClient(transport=AiohttpTransport())`; the session is made on first use, inside the
    running event loop, and closed with the client."""

    def __init__(
        self, *, max_connections: int = MAX_CONNECTIONS, keepalive_s: float | None = KEEPALIVE_S
    ) -> None:
        self._max_connections = max_connections
        self._keepalive_s = keepalive_s
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            context = ssl.create_default_context(cafile=certifi.where())
            if self._keepalive_s is None:
                connector = aiohttp.TCPConnector(limit=self._max_connections, ssl=context, force_close=True)
            else:
                connector = aiohttp.TCPConnector(
                    limit=self._max_connections, ssl=context, keepalive_timeout=self._keepalive_s
                )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                timeout=aiohttp.ClientTimeout(total=None),
                trust_env=False,
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._open()
        body = await request.aread()
        try:
            async with session.request(
                request.method,
                yarl.URL(str(request.url), encoded=True),
                headers=request.headers.multi_items(),
                data=body or None,
                allow_redirects=False,
                timeout=_timeout(request),
            ) as reply:
                content = await reply.read()
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc) or "connect timed out", request=request) from exc
        except (aiohttp.ServerTimeoutError, TimeoutError) as exc:
            raise httpx.ReadTimeout(str(exc) or "read timed out", request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except _BROKEN_REPLY as exc:
            raise httpx.RemoteProtocolError(str(exc) or type(exc).__name__, request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx.NetworkError(str(exc) or type(exc).__name__, request=request) from exc
        return httpx.Response(
            reply.status,
            headers=reply.raw_headers,
            stream=_Body(content),
            request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": (reply.reason or "").encode("latin-1")},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


def _timeout(request: httpx.Request) -> aiohttp.ClientTimeout:
    """httpx's per-phase timeouts: waiting for a pooled connection and connecting together bound the
    connection, reading bounds each read."""
    phases = request.extensions.get("timeout") or {}
    connect, pool, read = phases.get("connect"), phases.get("pool"), phases.get("read")
    acquire = None if connect is None or pool is None else connect + pool
    return aiohttp.ClientTimeout(total=None, connect=acquire, sock_connect=connect, sock_read=read)


def client(*, timeout: float = 30.0, keepalive: bool = True) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` over aiohttp (no proxies from the environment, redirects not followed)."""
    transport = AiohttpTransport(keepalive_s=KEEPALIVE_S if keepalive else None)
    return httpx.AsyncClient(transport=transport, timeout=timeout, trust_env=False)
