"""HttpWebhookSender against httpx.MockTransport: what is sent, how it is signed, every outcome."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import httpx
import orjson
import pytest

from topup.adapters.notify.webhook import (
    FakeWebhookSender,
    HttpWebhookSender,
    Webhook,
)
from topup.signing import verify

NOW = 1_700_000_000.0
BODY = orjson.dumps({"event_id": "evt_1", "type": "order.succeeded", "order": {"order_id": "ord_1"}})


def hook(url: str = "https://merchant.example/cb?x=1", **kw: object) -> Webhook:
    return Webhook(url=url, body=BODY, merchant_id="m1", secret="s3cret", event_id="evt_1", **kw)  # type: ignore[arg-type]


def sender(handler: Callable[[httpx.Request], httpx.Response], **kw: object) -> HttpWebhookSender:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return HttpWebhookSender(http, now=lambda: NOW, **kw)  # type: ignore[arg-type]


async def test_posts_the_body_signed_with_the_merchant_secret() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    result = await sender(handler).send(hook())
    assert result.ok and result.status_code == 204 and result.error is None
    (req,) = seen
    assert req.method == "POST" and req.content == BODY
    assert req.headers["X-Merchant-Id"] == "m1" and req.headers["X-Event-Id"] == "evt_1"
    assert req.headers["Content-Type"] == "application/json"
    # The signature covers the path with its query, exactly as sent.
    verify("s3cret", req.headers, "POST", "/cb?x=1", req.content, NOW)


@pytest.mark.parametrize(
    ("status", "ok"), [(200, True), (299, True), (302, False), (404, False), (500, False)]
)
async def test_only_2xx_acknowledges(status: int, ok: bool) -> None:
    result = await sender(lambda _r: httpx.Response(status, headers={"Location": "/elsewhere"})).send(hook())
    assert result.ok is ok and result.status_code == status
    assert (result.error is None) is ok


async def test_timeouts_and_network_errors_are_failed_tries() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    timed_out = await sender(slow, timeout_s=0.5).send(hook())
    assert (
        not timed_out.ok
        and timed_out.status_code is None
        and "timed out after 0.5 s" in (timed_out.error or "")
    )
    refused = await sender(down).send(hook())
    assert not refused.ok and "ConnectError" in (refused.error or "") and not refused.permanent


async def test_per_order_urls_on_private_addresses_are_refused() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200)

    refused = await sender(handler).send(hook("http://127.0.0.1:9/cb", check_address=True))
    assert refused.permanent and not refused.ok and "non-public address" in (refused.error or "")
    assert calls == []
    allowed = await sender(handler, allow_private=True).send(
        hook("http://127.0.0.1:9/cb", check_address=True)
    )
    assert allowed.ok
    trusted = await sender(handler).send(hook("http://127.0.0.1:9/cb"))  # the merchant's own default
    assert trusted.ok


async def test_fake_sender_records_and_answers_from_its_script() -> None:
    fake = FakeWebhookSender()
    fake.answer([500, None])
    results = [await fake.send(hook()) for _ in range(3)]
    assert [r.status_code for r in results] == [500, None, 200]
    assert [r.ok for r in results] == [False, False, True]
    assert len(fake.sent) == 3 and fake.sent[0].event_id == "evt_1"


def _resolver(monkeypatch: pytest.MonkeyPatch, answers: list[list[str]]) -> list[str]:
    """This test's event loop resolves names from `answers`, one list per lookup; IP literals to
    themselves. Returns the names looked up."""
    pending = iter(answers)
    lookups: list[str] = []

    async def getaddrinfo(host: str, port: int | None, *args: object, **kw: object) -> list[object]:
        lookups.append(host)
        found = [host] if host[0].isdigit() else next(pending)
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port or 0))
            for a in found
        ]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
    return lookups


async def test_per_order_urls_go_to_the_address_that_was_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    # DNS answers a public address for the check; a second lookup (the rebinding trick) would answer
    # loopback. The request must go to the checked address, never to a fresh resolution of the name.
    lookups = _resolver(monkeypatch, [["93.184.216.34"], ["127.0.0.1"]])
    seen: list[httpx.Request] = []
    pinned_seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    def pinned_handler(request: httpx.Request) -> httpx.Response:
        pinned_seen.append(request)
        return httpx.Response(200)

    pinned = httpx.AsyncClient(transport=httpx.MockTransport(pinned_handler))
    s = sender(handler, pinned_http=pinned)
    result = await s.send(hook("https://m.example.com/cb?x=1", check_address=True))
    assert result.ok and lookups == ["m.example.com"]  # resolved once, for the check
    assert seen == []  # pinned sends use their own client (no shared keep-alive pool)
    (req,) = pinned_seen
    assert req.url.host == "93.184.216.34" and req.url.scheme == "https"
    assert req.headers["Host"] == "m.example.com"
    # TLS still names (and verifies) the merchant's host.
    assert req.extensions["sni_hostname"] == "m.example.com"
    verify("s3cret", req.headers, "POST", "/cb?x=1", req.content, NOW)

    plain = await s.send(hook("http://m.example.com:8080/cb", check_address=False))
    assert plain.ok and seen[-1].url.host == "m.example.com"  # the merchant's own default: not pinned
    ip_literal = await s.send(hook("http://93.184.216.34:8080/cb", check_address=True))
    assert ip_literal.ok and pinned_seen[-1].headers["Host"] == "93.184.216.34:8080"


async def test_pinned_sends_use_the_ascii_name_and_try_each_checked_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _resolver(monkeypatch, [["2606:2800:220:1::1", "93.184.216.34"]])
    tried: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        tried.append(request)
        if request.url.host == "2606:2800:220:1::1":
            raise httpx.ConnectError("network unreachable", request=request)  # no IPv6 route here
        return httpx.Response(200)

    # An internationalised name: the Host header and SNI carry its IDNA (ASCII) form.
    result = await sender(handler).send(hook("https://münchen.example:8443/cb", check_address=True))
    assert result.ok, result
    assert [r.url.host for r in tried] == ["2606:2800:220:1::1", "93.184.216.34"]
    assert tried[-1].headers["Host"] == "xn--mnchen-3ya.example:8443"
    assert tried[-1].extensions["sni_hostname"] == "xn--mnchen-3ya.example"


async def test_a_pinned_send_tries_two_addresses_at_most_and_says_what_each_did(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _resolver(monkeypatch, [["93.184.216.34", "93.184.216.35", "93.184.216.36"]])
    tried: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        tried.append(request.url.host)
        if request.url.host.endswith(".34"):
            raise httpx.ConnectTimeout("", request=request)
        raise httpx.ConnectError("connection refused", request=request)

    result = await sender(handler, timeout_s=0.5).send(hook("https://m.example.com/cb", check_address=True))
    assert not result.ok and not result.permanent
    assert tried == ["93.184.216.34", "93.184.216.35"]  # a merchant's DNS cannot stretch a try
    assert result.error == (
        "93.184.216.34: connect timed out after 0.5 s; 93.184.216.35: ConnectError: connection refused"
    )


@pytest.mark.parametrize(
    ("url", "check_address"),
    [
        ("https://\u2603.example/cb", True),
        ("https://\u2603.example/cb", False),
        ("http://[::1/cb", True),
        ("http://[::1/cb", False),
        # IDNA refuses it when httpx connects by name (a pinned send connects to the address instead).
        ("https://xn--a.example/cb", False),
    ],
)
async def test_a_url_httpx_cannot_send_to_is_a_permanent_failure_not_an_exception(
    url: str, check_address: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    _resolver(monkeypatch, [["93.184.216.34"]] * 3)  # the name resolves: httpx itself must refuse it
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200)

    result = await sender(handler).send(hook(url, check_address=check_address))
    assert result.permanent and not result.ok and (result.error or "").startswith("invalid URL"), result
    assert calls == []
