"""Delivery-time SSRF guard: a merchant's notify host must resolve only to public addresses.

`domain.urls.check_notify_url` refuses private IP literals and local-only names when an order is
placed; a DNS name can still resolve to a private address (or change to one later), so the webhook
sender calls `resolve_and_check` right before each delivery to a merchant-supplied URL.
"""

from __future__ import annotations

import asyncio
import socket

from topup.domain.urls import UnsafeUrl, is_public_ip


class UnsafeAddress(UnsafeUrl):
    """The host resolves to (at least one) non-public address; the delivery must not be sent."""


async def resolve_and_check(host: str, port: int | None = None, timeout_s: float = 5.0) -> list[str]:
    """Resolve `host` and return its addresses in the resolver's order; raise UnsafeAddress if any of
    them is not public.

    Every address must be public: a resolver may hand the HTTP client any of them. A name that does
    not resolve raises LookupError (a transient failure: retry later, unlike UnsafeAddress).
    """
    name = host.strip("[]").rstrip(".")
    if not name:
        raise UnsafeAddress("no host")
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout_s):
            infos = await loop.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError) as e:
        raise LookupError(f"cannot resolve {name}: {e}") from None
    # The resolver's order (address-family preference), without repeats.
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise LookupError(f"cannot resolve {name}: no addresses")
    bad = [a for a in addresses if not is_public_ip(a)]
    if bad:
        raise UnsafeAddress(f"host {name} resolves to a non-public address ({', '.join(bad)})")
    return addresses
