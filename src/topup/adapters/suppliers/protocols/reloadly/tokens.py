"""Reloadly access tokens: one per (auth_url, client_id, audience), requested by one caller while the
others wait, reused until shortly before `expires_in`, refreshed when a 401 refuses it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import orjson

from topup.adapters.suppliers.transport import NoReply, build, join, json_object, raw_text, send
from topup.domain import suppliers as port

DEFAULT_AUTH_URL = "https://auth.reloadly.com"
TOKEN_MARGIN_S = 60.0
"""A token is refreshed this long before it expires, or 10 % of its lifetime when that is shorter."""
TOKEN_MARGIN_SHARE = 0.1
DEFAULT_TOKEN_LIFETIME_S = 300.0
"""Assumed when a token reply has no usable `expires_in` (a 401 refreshes it earlier anyway)."""


class TokenError(Exception):
    """No access token could be had; the call it was for was not sent."""

    def __init__(self, message: str, http_status: int | None = None, raw: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.raw = raw


@dataclass
class _Slot:
    """The token of one (auth_url, client_id, audience) and the lock that lets one caller refresh it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    token: str | None = None
    refresh_at: float = 0.0
    answered: int = 0
    """Token requests finished so far: a caller that saw fewer before it waited shares the last answer."""
    error: TokenError | None = None


def token_margin_s(lifetime_s: float) -> float:
    return min(TOKEN_MARGIN_S, TOKEN_MARGIN_SHARE * lifetime_s)


class TokenCache:
    """Access tokens per (auth_url, client_id, audience), each requested by one caller at a time."""

    def __init__(self, client: httpx.AsyncClient, now: Callable[[], float]) -> None:
        self._client = client
        self._now = now
        self._slots: dict[tuple[str, str, str], _Slot] = {}
        self.requests = 0
        """Token requests sent, for tests and diagnostics."""

    async def get(self, channel: port.ChannelAccess, stale: str | None = None) -> str:
        """A usable token other than `stale` (the one a 401 just refused); raises `TokenError`."""
        auth_url, client_id, audience = token_target(channel)
        slot = self._slots.setdefault((auth_url, client_id, audience), _Slot())
        if (token := self._usable(slot, stale)) is not None:
            return token
        seen = slot.answered
        async with slot.lock:
            if (token := self._usable(slot, stale)) is not None:
                return token  # another caller refreshed it while we waited
            if slot.answered != seen and slot.error is not None:
                # The request made while we waited failed: share its answer instead of asking again.
                raise TokenError(slot.error.message, slot.error.http_status, slot.error.raw)
            if stale is not None and slot.token == stale:
                slot.token = None  # refused by a 401: never hand it out again
            self.requests += 1
            asked_at, slot.error = self._now(), None
            try:
                token, lifetime = await self._request(channel, auth_url, audience)
            except TokenError as exc:
                slot.error, slot.answered = exc, slot.answered + 1
                raise
            # (A request cancelled by its caller's timeout answers nothing; the next waiter asks anew.)
            slot.token, slot.answered = token, slot.answered + 1
            slot.refresh_at = asked_at + lifetime - token_margin_s(lifetime)
            return token

    def _usable(self, slot: _Slot, stale: str | None) -> str | None:
        if slot.token is None or slot.token == stale or self._now() >= slot.refresh_at:
            return None
        return slot.token

    async def _request(self, channel: port.ChannelAccess, auth_url: str, audience: str) -> tuple[str, float]:
        body = orjson.dumps(
            {
                "client_id": str(channel.credentials.get("client_id", "")),
                "client_secret": str(channel.credentials.get("client_secret", "")),
                "grant_type": "client_credentials",
                "audience": audience,
            }
        )
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        try:
            request = build(
                self._client, "POST", join(auth_url, "/oauth/token"), channel.timeout_s, content=body
            )
            request.headers.update(headers)
            response = await send(self._client, request, channel.timeout_s)
        except NoReply as exc:
            raise TokenError(f"token request: {exc.code}: {exc.message}") from None
        data = json_object(response.content)
        if response.status_code != 200 or data is None:
            said = [str(data[k]) for k in ("errorCode", "message") if data and data.get(k)]
            message = " ".join([f"token request answered HTTP {response.status_code}", *said])
            raise TokenError(message, response.status_code, raw_text(response))
        token, lifetime = data.get("access_token"), data.get("expires_in")
        if not isinstance(token, str) or not token:
            raise TokenError("token reply has no access_token", 200, raw_text(response))
        if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
            lifetime = DEFAULT_TOKEN_LIFETIME_S
        return token, float(lifetime)


def token_target(channel: port.ChannelAccess) -> tuple[str, str, str]:
    auth_url = str(channel.credentials.get("auth_url") or DEFAULT_AUTH_URL).rstrip("/")
    return auth_url, str(channel.credentials.get("client_id", "")), channel.base_url.rstrip("/")
