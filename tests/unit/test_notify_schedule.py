"""The webhook retry schedule is plain arithmetic."""

from __future__ import annotations

import pytest

from topup.domain.notifications import GIVE_UP_AFTER_S, next_try_at, retry_delay, schedule


def test_delays_grow_from_seconds_to_hourly() -> None:
    delays = [retry_delay(n) for n in range(1, 15)]
    assert delays[:10] == [2, 5, 15, 30, 60, 120, 300, 600, 1200, 1800]
    assert delays[10:] == [3600] * 4
    assert delays == sorted(delays)
    assert retry_delay(0) == 0


def test_first_retry_within_five_seconds() -> None:
    assert next_try_at(0.0, 0.0, 1) is not None
    assert next_try_at(0.0, 0.0, 1) <= 5  # type: ignore[operator]


def test_retries_cover_at_least_24_hours_and_stop_by_25() -> None:
    offsets = schedule()
    assert offsets[0] == 0
    assert 24 * 3600 <= offsets[-1] <= GIVE_UP_AFTER_S
    assert len(offsets) == len(set(offsets)) > 30


def test_gives_up_when_the_next_try_would_fall_outside_the_window() -> None:
    assert next_try_at(0.0, GIVE_UP_AFTER_S - 3600, 20) == GIVE_UP_AFTER_S
    assert next_try_at(0.0, GIVE_UP_AFTER_S - 3599, 20) is None
    # A window opened later (an operator's retry) starts the count again.
    assert next_try_at(100_000.0, 100_000.0, 1) == 100_002.0


@pytest.mark.parametrize("scale", [0.001, 0.5, 2.0])
def test_scale_multiplies_delays_and_window(scale: float) -> None:
    assert retry_delay(3, scale) == pytest.approx(15 * scale)
    assert schedule(scale) == pytest.approx([o * scale for o in schedule()])
