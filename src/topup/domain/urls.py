"""Merchant-supplied URLs: refuse ones that point into the platform's own network (SSRF).

A per-order `notify_url` comes from a merchant's request and the platform will POST to it, so it
must not name loopback, private, link-local or otherwise non-public addresses. This module checks
what the URL itself says (scheme, host syntax, IP literals, local-only names); a DNS name that
later resolves to a private address is caught at delivery time by `adapters.notify.guard`.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

# Names that only ever mean "this machine" or "this site's network".
_LOCAL_NAMES = frozenset(
    {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", "broadcasthost"}
)
_LOCAL_SUFFIXES = (".localhost", ".localdomain", ".local", ".internal", ".home.arpa", ".lan", ".intranet")
# Label syntax after IDNA: letters, digits, hyphens (underscores tolerated, they occur in practice).
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
# A final label like "1", "0x7f" or "017" makes resolvers read the host as a (non-canonical) IPv4 number.
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")


class UnsafeUrl(ValueError):
    """The URL is malformed or points at a non-public address; `reason` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def is_public_ip(address: str) -> bool:
    """True only for globally routable unicast addresses (IPv4-mapped IPv6 judged as its IPv4)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (
        ip.is_multicast or ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved
    )


def check_notify_url(url: str, *, allow_private: bool = False) -> str:
    """Return `url` if the platform may POST to it; raise UnsafeUrl with the reason otherwise.

    With `allow_private` (tests, demos) only the syntax is checked.
    """
    if not url or len(url) > 2000:
        raise UnsafeUrl("must be 1-2000 characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F or ch == "\\" for ch in url):
        # Backslashes and control characters are read differently by different URL parsers.
        raise UnsafeUrl("contains whitespace, control characters or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise UnsafeUrl(f"not a valid URL ({e})") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise UnsafeUrl("must be an http or https URL")
    if "@" in parts.netloc:
        raise UnsafeUrl("must not carry user information (user@host)")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise UnsafeUrl("has no host")
    if port == 0:
        raise UnsafeUrl("port 0 is not a valid port")
    if allow_private:
        return url
    _check_host(host)
    return url


def _check_host(host: str) -> None:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    else:
        if not is_public_ip(host):
            raise UnsafeUrl(f"host {host} is a loopback, private, link-local or reserved address")
        return
    if ":" in host:
        raise UnsafeUrl(f"host {host} is not a valid address")
    if host in _LOCAL_NAMES or host.endswith(_LOCAL_SUFFIXES):
        raise UnsafeUrl(f"host {host} is a local-only name")
    labels = host.split(".")
    if len(labels) < 2:
        raise UnsafeUrl(f"host {host} is a single-label (intranet) name")
    if _NUMERIC_LABEL.match(labels[-1]):
        # 127.1, 2130706433, 0x7f.0.0.1, 0177.0.0.1: IPv4 in a form ipaddress rejects but resolvers accept.
        raise UnsafeUrl(f"host {host} is a non-canonical numeric address")
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise UnsafeUrl(f"host {host} is not a valid domain name") from None
    if not all(_LABEL.match(label) for label in ascii_host.split(".")):
        raise UnsafeUrl(f"host {host} is not a valid domain name")
