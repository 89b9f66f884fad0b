"""Shared by the merchant pages and the operator console: signed session cookies, CSRF, login throttling."""

from __future__ import annotations

import hmac
import secrets
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any, Self

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from topup import keys

SESSION_MAX_AGE_S = 12 * 3600


@dataclass(frozen=True)
class Session:
    subject: str  # merchant id, or "operator:<name>"
    kind: str  # "merchant" | "operator"
    csrf: str


class Sessions:
    """Stateless sessions in an HttpOnly, SameSite=Lax cookie signed with the server's session key."""

    def __init__(self, secret: str | list[str], cookie: str, kind: str, secure: bool = False) -> None:
        # A list of keys, oldest first: the last signs, every one verifies (a master key rotation).
        self.serializer = URLSafeTimedSerializer(secret, salt=f"topup-{kind}-session")
        self.cookie = cookie
        self.kind = kind
        self.secure = secure

    def login(self, response: Response, subject: str) -> Session:
        session = Session(subject, self.kind, secrets.token_urlsafe(24))
        token = self.serializer.dumps({"s": subject, "c": session.csrf})
        response.set_cookie(
            self.cookie,
            token,
            max_age=SESSION_MAX_AGE_S,
            httponly=True,
            samesite="lax",
            secure=self.secure,
            path="/",
        )
        return session

    def logout(self, response: Response) -> None:
        response.delete_cookie(self.cookie, path="/")

    def read(self, request: Request) -> Session | None:
        token = request.cookies.get(self.cookie)
        if not token:
            return None
        try:
            data: Any = self.serializer.loads(token, max_age=SESSION_MAX_AGE_S)
        except BadSignature:
            return None
        if not isinstance(data, dict) or "s" not in data or "c" not in data:
            return None
        return Session(str(data["s"]), self.kind, str(data["c"]))


def csrf_ok(session: Session, submitted: str | None) -> bool:
    """Forms and fetch() calls echo the session's CSRF token (form field `csrf` or header X-CSRF-Token)."""
    return bool(submitted) and hmac.compare_digest(session.csrf, str(submitted))


def session_key(settings: Any) -> list[str]:
    """The cookie signing keys: TOPUP_SESSION_SECRET, else derived from the master key (never from the
    admin token, which can then be rotated without signing anyone out); old master keys still verify."""
    return keys.session_keys(settings.secret_key, settings.old_secret_key_list(), settings.session_secret)


class LoginThrottle:
    """Repeated failed logins are slowed down: after 5 failures in 5 minutes, wait grows per failure."""

    def __init__(self, free_failures: int = 5, window_s: float = 300.0) -> None:
        self.free = free_failures
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures[key]
        while q and now - q[0] > self.window_s:
            q.popleft()
        return q

    def retry_after(self, key: str, now: float | None = None) -> float:
        """Seconds the caller must wait before another attempt (0 when free to try)."""
        now = time.monotonic() if now is None else now
        q = self._recent(key, now)
        if len(q) < self.free:
            return 0.0
        wait = min(2.0 ** (len(q) - self.free), 300.0)
        return max(0.0, q[-1] + wait - now)

    def failed(self, key: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._recent(key, now).append(now)

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)


@dataclass
class SiteAuth:
    """A site's signed sessions (its own cookie and kind) and its login throttle."""

    sessions: Sessions
    throttle: LoginThrottle

    @classmethod
    def from_settings(cls, settings: Any, cookie: str, kind: str) -> Self:
        """Cookies are Secure when the published URL is https; the key comes from `session_key`."""
        secure = (settings.public_url or "").startswith("https://")
        key = session_key(settings)
        return cls(Sessions(key, cookie, kind, secure=secure), LoginThrottle())
