"""One signed POST and its answer, for services that call an HTTP endpoint (the sandbox gateway's
notify); the httpx implementation is `topup.adapters.notify.http_post.HttpxPoster`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class PostAnswer:
    """The status and the start of the body, or `error` when no answer came (connection, timeout, URL)."""

    status_code: int | None
    text: str = ""
    error: str | None = None


class Poster(Protocol):
    async def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> PostAnswer:
        """POST `body` to `url`; never raises for the network or the receiver."""
        ...
