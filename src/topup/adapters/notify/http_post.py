"""`Poster` over httpx (see `topup.services.ports.http_post`)."""

from __future__ import annotations

import httpx

from topup.services.ports.http_post import PostAnswer


class HttpxPoster:
    __slots__ = ("http",)

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> PostAnswer:
        try:
            r = await self.http.post(url, content=body, headers=headers, timeout=timeout_s)
        except (httpx.HTTPError, httpx.InvalidURL) as e:
            return PostAnswer(None, error=f"{type(e).__name__}: {e}")
        return PostAnswer(r.status_code, r.text[:200])
