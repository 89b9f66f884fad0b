"""Structured JSON logs (structlog); secrets are never logged."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator, MutableMapping
from typing import Any

import structlog

from topup.config import Settings

_SECRET_KEYS = {"secret", "password", "signature", "x-signature", "authorization", "token", "admin_token"}
# Any key ending like these is a secret too: channel_secret, merchant_password, session_token, ...
_SECRET_SUFFIXES = ("secret", "password", "password_hash", "token", "signature", "authorization", "cookie")
REDACTED = "[redacted]"


def is_secret_key(key: str) -> bool:
    """True for field names whose values must never be logged or shown (also used by the console)."""
    k = key.lower().replace("-", "_")
    return k in _SECRET_KEYS or k.endswith(_SECRET_SUFFIXES)


def redact(value: Any, depth: int = 0) -> Any:
    """A copy of `value` with secret-named fields replaced, looking into nested dicts and lists."""
    if depth > 8:
        return value
    if isinstance(value, dict):
        return {
            k: REDACTED if isinstance(k, str) and is_secret_key(k) else redact(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v, depth + 1) for v in value]
    return value


def _redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for k in list(event):
        if is_secret_key(k):
            event[k] = REDACTED
        elif isinstance(event[k], dict | list | tuple):
            event[k] = redact(event[k])
    return event


@contextlib.contextmanager
def order_context(
    order_id: str | None, attempt_no: int | None = None, ref: str | None = None, **extra: Any
) -> Iterator[None]:
    """Every log line inside the block carries the order (and attempt) it is about.

    Use around a job or a callback: `with logs.order_context(order_id, attempt_no=no, ref=ref): ...`.
    Context variables, so concurrent tasks keep their own ids.
    """
    fields: dict[str, Any] = {"order_id": order_id, **extra}
    if attempt_no is not None:
        fields["attempt_no"] = attempt_no
    if ref is not None:
        fields["attempt_ref"] = ref
    with structlog.contextvars.bound_contextvars(**{k: v for k, v in fields.items() if v is not None}):
        yield


# Libraries whose DEBUG/INFO output carries raw SQL, statement parameters, URLs or frames (secrets
# included), or is one line per request: they only say what is a warning or worse.
_RAW_DATA_LOGGERS = (
    "aiosqlite",
    "asyncpg",
    "sqlalchemy",
    "httpcore",
    "httpx",
    "websockets",
    "hpack",
    "alembic",
)


def configure(settings: Settings) -> None:
    level = getattr(logging, settings.log_level.upper(), logging.INFO)
    logging.basicConfig(stream=sys.stderr, level=level, format="%(message)s")
    for name in _RAW_DATA_LOGGERS:
        # They bypass the redaction below.
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    renderer: Any = (
        structlog.processors.JSONRenderer() if settings.log_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
