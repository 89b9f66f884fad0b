"""SSRF guard for merchant-supplied notify URLs: the pure check and the delivery-time resolver."""

from __future__ import annotations

import asyncio
import socket

import pytest

from topup.adapters.notify import guard
from topup.domain.urls import UnsafeUrl, check_notify_url, is_public_ip

PUBLIC = [
    "https://m.example.com/cb",
    "http://m.example.com:8443/topup/notify?x=1",
    "https://8.8.8.8/cb",
    "https://[2001:4860:4860::8888]/cb",
    "https://例え.jp/cb",
    "https://shop-1.example.co.uk./cb",
]

REFUSED = [
    "http://127.0.0.1/cb",
    "http://127.0.0.1:8080/cb",
    "http://10.1.2.3/cb",
    "http://172.16.0.1/cb",
    "http://192.168.1.1/cb",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/cb",  # carrier-grade NAT
    "http://0.0.0.0/cb",
    "http://224.0.0.1/cb",
    "http://240.0.0.1/cb",
    "http://255.255.255.255/cb",
    "http://[::1]/cb",
    "http://[fe80::1]/cb",
    "http://[fc00::1]/cb",
    "http://[::ffff:127.0.0.1]/cb",
    "http://[::]/cb",
    "http://localhost/cb",
    "http://LOCALHOST./cb",
    "http://api.localhost/cb",
    "http://printer.local/cb",
    "http://metadata.google.internal/cb",
    "http://router.home.arpa/cb",
    "http://intranet/cb",
    "http://127.1/cb",
    "http://2130706433/cb",
    "http://0x7f.0.0.1/cb",
    "http://0177.0.0.1/cb",
    "http://1.2.3.0x7f/cb",
    "http://user:pw@m.example.com/cb",
    "http://m.example.com@127.0.0.1/cb",
    "http://127.0.0.1\\@m.example.com/cb",
    "ftp://m.example.com/cb",
    "file:///etc/passwd",
    "gopher://m.example.com/",
    "http:///cb",
    "http://m.example.com:99999/cb",
    "http://m.example.com:0/cb",
    "http://m.exa mple.com/cb",
    "http://m.example.com/\ncb",
    "http://-bad-.example.com/cb",
    "",
    "https://" + "a" * 2000 + ".com/",
]


@pytest.mark.parametrize("url", PUBLIC)
def test_public_urls_pass(url: str) -> None:
    assert check_notify_url(url) == url


@pytest.mark.parametrize("url", REFUSED)
def test_private_local_and_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(UnsafeUrl) as e:
        check_notify_url(url)
    assert e.value.reason


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/cb", "http://localhost/cb", "http://10.0.0.5/cb", "http://intranet/"]
)
def test_allow_private_accepts_local_addresses(url: str) -> None:
    assert check_notify_url(url, allow_private=True) == url


@pytest.mark.parametrize("url", ["ftp://localhost/", "http:///cb", "http://a b/", "http://x@127.0.0.1/"])
def test_allow_private_still_checks_syntax(url: str) -> None:
    with pytest.raises(UnsafeUrl):
        check_notify_url(url, allow_private=True)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("::1", False),
        ("::ffff:10.0.0.1", False),
        ("fe80::1%eth0", False),
        ("not-an-ip", False),
    ],
)
def test_is_public_ip(address: str, public: bool) -> None:
    assert is_public_ip(address) is public


def _fake_getaddrinfo(answers: dict[str, list[str]]):
    async def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        out = []
        for a in answers[host]:
            family = socket.AF_INET6 if ":" in a else socket.AF_INET
            sockaddr = (a, port or 0, 0, 0) if family == socket.AF_INET6 else (a, port or 0)
            out.append((family, socket.SOCK_STREAM, 6, "", sockaddr))
        return out

    return getaddrinfo


@pytest.fixture
async def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """No real DNS in unit tests: this test's event loop resolves from a table."""
    answers: dict[str, list[str]] = {}
    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", _fake_getaddrinfo(answers))
    return answers


async def test_resolve_and_check_accepts_public_names(dns) -> None:
    dns["m.example.com"] = ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]
    assert await guard.resolve_and_check("m.example.com") == dns["m.example.com"]  # in the resolver's order


@pytest.mark.parametrize(
    "answers",
    [["127.0.0.1"], ["10.0.0.7"], ["93.184.216.34", "192.168.0.2"], ["::1"], ["169.254.169.254"]],
)
async def test_resolve_and_check_refuses_names_resolving_to_private_addresses(dns, answers) -> None:
    dns["rebind.example.com"] = answers
    with pytest.raises(guard.UnsafeAddress):
        await guard.resolve_and_check("rebind.example.com")


async def test_resolve_and_check_unresolvable_is_a_lookup_error_not_unsafe(dns) -> None:
    with pytest.raises(LookupError):
        await guard.resolve_and_check("nowhere.example.com")


async def test_resolve_and_check_real_localhost_is_refused() -> None:
    # The real resolver on this machine: localhost is loopback everywhere.
    with pytest.raises(guard.UnsafeAddress):
        await guard.resolve_and_check("localhost")
