"""Per-channel dispatch slots: a slow channel gets at most `limit`, a quick one is never limited."""

from __future__ import annotations

from topup.services.dispatch_slots import ChannelSlots
from topup.services.fulfilment import DEFER_BASE_S, DEFER_MAX_S, defer_delay


class FakeTime:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_burst_on_a_healthy_channel_is_not_limited() -> None:
    clock = FakeTime()
    slots = ChannelSlots(2, slow_after_s=1.0, now=clock)
    for _ in range(20):  # quick dispatches, many at once: none has been out long
        burst = [slots.try_take("A") for _ in range(10)]
        assert all(s is not None for s in burst) and not slots.stuck("A")
        clock.t += 0.3
        for s in burst:
            assert s is not None
            slots.release(s)
    assert slots.in_flight("A") == 0


def test_a_slow_channel_gets_at_most_limit_dispatches() -> None:
    clock = FakeTime()
    slots = ChannelSlots(2, slow_after_s=1.0, now=clock)
    a1, a2, a3 = slots.try_take("A"), slots.try_take("A"), slots.try_take("A")
    assert a1 is not None and a2 is not None and a3 is not None  # a burst: nothing is slow yet
    clock.t += 1.1  # all three have been out 1.1 s
    assert slots.slow("A") and slots.stuck("A")
    assert slots.try_take("A") is None
    assert slots.try_take("B") is not None  # other channels are not affected
    slots.release(a1)  # a slow ending: still slow, and still two in flight
    assert slots.try_take("A") is None
    slots.release(a2)  # one in flight: one more may go
    assert slots.try_take("A") is not None and slots.try_take("A") is None


def test_a_hanging_supplier_stays_at_limit_through_its_timeouts() -> None:
    # Dispatches hang; they time out together and the deferred backlog comes back at once.
    clock = FakeTime()
    slots = ChannelSlots(8, slow_after_s=2.0, now=clock)
    for cycle in range(3):
        taken = [h for h in (slots.try_take("A") for _ in range(1000)) if h is not None]
        # The first cycle is a burst (nothing slow yet); after it, never more than the limit.
        assert len(taken) == (1000 if cycle == 0 else 8)
        clock.t += 30  # the channel's timeout: all of them end, slowly
        for h in taken:
            slots.release(h)
        assert slots.slow("A")
    # A quiet spell longer than slow_after_s with nothing out forgets it.
    clock.t += 2.5
    assert not slots.slow("A") and all(slots.try_take("A") is not None for _ in range(20))


def test_a_supplier_that_hangs_on_some_orders_is_held_to_the_limit() -> None:
    # 30 % of dispatches hang; the rest answer in 0.05 s. Once a hung dispatch is old the channel gets
    # nothing while `limit` or more are out: it keeps the six that hung in the first second and never
    # grows (without the limit, 120 would hang here).
    clock = FakeTime()
    slots = ChannelSlots(3, slow_after_s=1.0, now=clock)
    start, peak_after_warmup = clock.t, 0
    for i in range(400):
        slot = slots.try_take("A")
        if slot is not None and i % 10 >= 3:
            clock.t += 0.05
            slots.release(slot)
        clock.t += 0.05
        if clock.t - start > 1.5:
            peak_after_warmup = max(peak_after_warmup, slots.in_flight("A"))
    assert slots.stuck("A")
    assert peak_after_warmup == slots.in_flight("A") == 3 + 3


def test_no_limit_when_limit_is_zero_and_double_release_is_harmless() -> None:
    clock = FakeTime()
    unlimited = ChannelSlots(0, slow_after_s=1.0, now=clock)
    assert all(unlimited.try_take("A") is not None for _ in range(50))
    clock.t += 60
    assert not unlimited.stuck("A") and unlimited.try_take("A") is not None
    slots = ChannelSlots(1, slow_after_s=1.0, now=clock)
    a = slots.try_take("A")
    assert a is not None
    slots.release(a)
    slots.release(a)
    assert slots.in_flight("A") == 0


def test_defer_delay_backs_off_to_a_cap() -> None:
    assert defer_delay(1) == DEFER_BASE_S
    assert defer_delay(2) == 2 * DEFER_BASE_S
    assert defer_delay(0) == DEFER_BASE_S
    assert defer_delay(50) == DEFER_MAX_S
