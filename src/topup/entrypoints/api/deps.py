"""Request dependencies: the container, merchant signatures, operator bearer tokens."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from fastapi import Request

from topup import signing
from topup.adapters.db.queries.merchant_views import MerchantKey, merchant_key
from topup.bootstrap import Container
from topup.domain.errors import Unauthorized


def app_container(request: Request) -> Container:
    return request.app.state.container  # type: ignore[no-any-return]


async def container(request: Request) -> Container:
    """The `Depends` form: async, so FastAPI calls it inline instead of in its thread pool."""
    return request.app.state.container  # type: ignore[no-any-return]


def request_target(request: Request) -> str:
    """The path with query exactly as sent, which is what a signature covers."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    qs = request.scope.get("query_string") or b""
    target = raw.decode("latin-1")
    if qs:
        target += "?" + qs.decode("latin-1")
    return target


@dataclass(frozen=True)
class MerchantCtx:
    id: str
    secret: str
    notify_url: str | None


async def load_merchant(c: Container, merchant_id: str) -> MerchantKey | None:
    row: MerchantKey | None = c.merchants.get(merchant_id)
    if row is None:
        async with c.db.transaction() as tx:
            row = await merchant_key(tx, merchant_id)
        if row is not None:
            c.merchants.put(merchant_id, row)
    return row


async def merchant_auth(request: Request) -> MerchantCtx:
    """Signature first: a missing header, stale timestamp or wrong signature is 401 and changes nothing."""
    c = app_container(request)
    merchant_id = request.headers.get(signing.MERCHANT_HEADER)
    if not merchant_id or len(merchant_id) > 64:
        raise Unauthorized("missing X-Merchant-Id header")
    body = await request.body()
    row = await load_merchant(c, merchant_id)
    if row is None:
        raise Unauthorized("unknown merchant or bad signature")
    try:
        signing.verify(
            row.secret, request.headers, request.method, request_target(request), body, c.clock.now()
        )
    except signing.SignatureError as e:
        raise Unauthorized(str(e)) from None
    return MerchantCtx(row.id, row.secret, row.notify_url)


def bearer_matches(request: Request, expected: str) -> bool:
    """Does the request carry `Authorization: Bearer <expected>`? (constant-time comparison)"""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected.encode())


# The operator API's guard lives with the roles (admin token or operator API token, role checked).
from topup.entrypoints.api.roles import admin_auth as admin_auth  # noqa: E402
