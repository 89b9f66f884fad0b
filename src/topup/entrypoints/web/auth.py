"""Merchant sessions for the pages: signed HttpOnly SameSite cookie, CSRF on every POST, login throttle."""

from __future__ import annotations

import asyncio
import functools
import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from topup.domain.errors import Forbidden, Unauthorized
from topup.entrypoints.site import site_of
from topup.entrypoints.websession import Session, SiteAuth, csrf_ok
from topup.services import merchants

COOKIE = "topup_merchant"
LOGIN_CSRF_COOKIE = "topup_login_csrf"


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the merchant id is unknown, so both paths cost one argon2 check."""
    return merchants.hash_password(secrets.token_urlsafe(16))


@dataclass
class WebAuth(SiteAuth):
    @classmethod
    def for_container(cls, c: Any) -> WebAuth:
        return cls.from_settings(c.settings, COOKIE, "merchant")

    async def check_password(self, c: Any, merchant_id: str, password: str) -> bool:
        async with c.db.transaction() as tx:
            row = await merchants.get_merchant(tx, merchant_id)
        stored = row.password_hash if row is not None and row.password_hash else _dummy_hash()
        ok = await asyncio.to_thread(merchants.verify_password, stored, password)
        return ok and row is not None and bool(row.password_hash)


def web_auth(request: Request) -> WebAuth:
    return site_of(request).web_auth


def current(request: Request) -> Session | None:
    return web_auth(request).sessions.read(request)


def api_session(request: Request) -> Session:
    """JSON endpoints: a session is required (401); a POST must echo the CSRF token (403)."""
    session = current(request)
    if session is None:
        raise Unauthorized("log in first")
    if request.method not in ("GET", "HEAD") and not csrf_ok(session, request.headers.get("x-csrf-token")):
        raise Forbidden("missing or wrong CSRF token")
    return session
