"""The webhook retry schedule: pure arithmetic on delays, no clock, no I/O.

A delivery is tried at once; after the n-th failed try it waits `retry_delay(n)`: 2 s, 5 s, 15 s, 30 s,
1, 2, 5, 10, 20 and 30 min, then hourly, until `GIVE_UP_AFTER_S` (25 h) after the delivery was created
(or an operator re-queued it). `scale` multiplies every delay and the window, so tests run in milliseconds.
"""

from __future__ import annotations

RETRY_DELAYS_S: tuple[float, ...] = (2, 5, 15, 30, 60, 120, 300, 600, 1200, 1800)
HOURLY_S = 3600.0
GIVE_UP_AFTER_S = 25 * 3600.0


def retry_delay(failures: int, scale: float = 1.0) -> float:
    """Seconds to wait after the `failures`-th failed try (1-based)."""
    if failures < 1:
        return 0.0
    base = RETRY_DELAYS_S[failures - 1] if failures <= len(RETRY_DELAYS_S) else HOURLY_S
    return float(base) * scale


def next_try_at(window_start: float, now: float, failures: int, scale: float = 1.0) -> float | None:
    """When to try again after `failures` failed tries, or None when the retry window is over."""
    at = now + retry_delay(failures, scale)
    if at > window_start + GIVE_UP_AFTER_S * scale:
        return None
    return at


def schedule(scale: float = 1.0) -> list[float]:
    """Offsets from the first try of every try a never-answering endpoint gets (for docs and tests)."""
    offsets = [0.0]
    failures = 0
    while True:
        failures += 1
        nxt = next_try_at(0.0, offsets[-1], failures, scale)
        if nxt is None:
            return offsets
        offsets.append(nxt)
