"""`AiohttpTransport` over real loopback sockets: httpx's requests, responses and errors, aiohttp's wire.

The server is a bare asyncio one, so each test sees the exact bytes the transport sent and can answer
with anything, including something that is not HTTP.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import orjson
import pytest

from topup.adapters import http_transport
from topup.adapters.suppliers import transport as supplier_transport

Answer = Callable[[bytes, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Server:
    """Records every request head and body; `answer` writes the reply (default: 200 with a JSON body)."""

    answer: Answer | None = None
    heads: list[bytes] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    connections: int = 0
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length) if length else b""
                self.heads.append(head)
                self.bodies.append(body)
                if self.answer is None:
                    await reply(writer, 200, b'{"ok": true}', b"Content-Type: application/json\r\n")
                else:
                    await self.answer(head, writer)
                if writer.is_closing():
                    return
        finally:
            writer.close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


async def reply(writer: asyncio.StreamWriter, status: int, body: bytes, headers: bytes = b"") -> None:
    writer.write(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n%s\r\n%s" % (status, len(body), headers, body))
    await writer.drain()


async def answers_late(head: bytes, writer: asyncio.StreamWriter) -> None:
    """An answer that never comes within the tests' 0.2 s timeouts."""
    await asyncio.sleep(1.0)


async def closed_port() -> int:
    """A loopback port that was just listening and no longer is: connecting is refused."""
    listener = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port: int = listener.sockets[0].getsockname()[1]
    listener.close()
    await listener.wait_closed()
    return port


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server()
    listener = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
    srv.port = listener.sockets[0].getsockname()[1]
    yield srv
    listener.close()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with http_transport.client(timeout=5.0) as c:
        yield c


async def test_a_post_arrives_with_httpx_headers_and_body_and_the_reply_is_read(
    server: Server, client: httpx.AsyncClient
) -> None:
    body = orjson.dumps({"order": "T-1", "amount": "10.00"})
    r = await client.post(server.url("/dispatch"), content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 200
    assert r.json() == {"ok": True}
    assert r.headers["content-type"] == "application/json"
    assert r.elapsed.total_seconds() >= 0  # httpx closed the response stream itself
    head = server.heads[0].decode()
    assert head.startswith("POST /dispatch HTTP/1.1\r\n")
    lower = head.lower()
    assert "content-type: application/json" in lower
    assert f"content-length: {len(body)}" in lower
    # httpx's own headers, and none that aiohttp would have added
    assert f"user-agent: python-httpx/{httpx.__version__}" in lower
    assert "aiohttp" not in lower
    assert server.bodies == [body]


async def test_the_url_is_sent_exactly_as_httpx_encoded_it(server: Server, client: httpx.AsyncClient) -> None:
    """Signatures cover the request target (webhooks, Juhe's GET): nothing may re-quote it."""
    request = client.build_request("GET", server.url("/q"), params={"sign": "a/b+c=", "name": "李 x"})
    r = await client.send(request)
    assert r.status_code == 200
    sent = server.heads[0].split(b"\r\n", 1)[0]
    assert sent == b"GET " + request.url.raw_path + b" HTTP/1.1"
    assert b"%2F" in sent and b"%2B" in sent  # not decoded back to / and +
    assert server.bodies == [b""]
    assert b"content-length" not in server.heads[0].lower()  # a GET without a body says nothing of one


async def test_a_gzip_reply_is_decoded_once_by_httpx(server: Server, client: httpx.AsyncClient) -> None:
    payload = b'{"state": "succeeded"}' * 50

    async def gzipped(head: bytes, writer: asyncio.StreamWriter) -> None:
        await reply(writer, 200, gzip.compress(payload), b"Content-Encoding: gzip\r\n")

    server.answer = gzipped
    r = await client.get(server.url("/z"))
    assert r.content == payload
    assert b"accept-encoding: gzip" in server.heads[0].lower()


async def test_a_redirect_is_returned_not_followed(server: Server, client: httpx.AsyncClient) -> None:
    async def moved(head: bytes, writer: asyncio.StreamWriter) -> None:
        await reply(writer, 302, b"", b"Location: /elsewhere\r\n")

    server.answer = moved
    r = await client.post(server.url("/hook"), content=b"x")
    assert r.status_code == 302
    assert r.headers["location"] == "/elsewhere"
    assert len(server.heads) == 1


async def test_connections_are_kept_and_reused(server: Server, client: httpx.AsyncClient) -> None:
    for _ in range(5):
        assert (await client.get(server.url("/k"))).status_code == 200
    assert len(server.heads) == 5
    assert server.connections == 1


async def test_keepalive_off_opens_a_connection_per_request(server: Server) -> None:
    async with http_transport.client(timeout=5.0, keepalive=False) as c:
        for _ in range(3):
            assert (await c.get(server.url("/k"))).status_code == 200
    assert server.connections == 3


async def test_refused_connection_is_an_httpx_connect_error(client: httpx.AsyncClient) -> None:
    port = await closed_port()
    with pytest.raises(httpx.ConnectError):
        await client.get(f"http://127.0.0.1:{port}/")


async def test_a_reply_slower_than_the_read_timeout_is_an_httpx_read_timeout(
    server: Server, client: httpx.AsyncClient
) -> None:
    server.answer = answers_late
    with pytest.raises(httpx.ReadTimeout):
        await client.get(server.url("/slow"), timeout=0.2)


async def test_a_peer_that_hangs_up_or_answers_garbage_is_an_httpx_transport_error(
    server: Server, client: httpx.AsyncClient
) -> None:
    async def hang_up(head: bytes, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async def garbage(head: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()
        writer.close()

    async def short_body(head: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
        await writer.drain()
        writer.close()

    for answer in (hang_up, garbage, short_body):
        server.answer = answer
        with pytest.raises(httpx.TransportError):
            await client.get(server.url("/x"))


async def test_the_supplier_transport_turns_the_failures_into_no_reply_codes(
    server: Server, client: httpx.AsyncClient
) -> None:
    server.answer = answers_late
    request = supplier_transport.build(client, "POST", server.url("/d"), 0.2, content=b"{}")
    with pytest.raises(supplier_transport.NoReply) as timed_out:
        await supplier_transport.send(client, request, 0.2)
    assert timed_out.value.code == "timeout"

    port = await closed_port()
    request = supplier_transport.build(client, "POST", f"http://127.0.0.1:{port}/d", 1.0, content=b"{}")
    with pytest.raises(supplier_transport.NoReply) as refused:
        await supplier_transport.send(client, request, 1.0)
    assert refused.value.code == "connect_error"


async def test_closing_the_client_closes_the_pool(server: Server) -> None:
    transport = http_transport.AiohttpTransport()
    c = httpx.AsyncClient(transport=transport)
    assert (await c.get(server.url("/k"))).status_code == 200
    await c.aclose()
    assert transport._session is None
