"""The only place that reads the wall clock; tests pass a fake clock."""

from __future__ import annotations

import time
from datetime import UTC, datetime


class Clock:
    """Wall clock. `now()` is unix seconds as a float."""

    def now(self) -> float:
        return time.time()

    def utcnow(self) -> datetime:
        return datetime.fromtimestamp(self.now(), UTC)


class FakeClock(Clock):
    """A clock that only moves when told to."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds


def to_datetime(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def rfc3339(ts: float | None) -> str | None:
    """Unix seconds -> RFC 3339 UTC string with milliseconds."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
