"""Per-channel dispatch slots: a channel is held back by its dispatches that stay out, never by young ones."""

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


def test_a_channel_is_stuck_while_limit_dispatches_stay_out() -> None:
    clock = FakeTime()
    slots = ChannelSlots(2, slow_after_s=1.0, now=clock)
    a1, a2 = slots.try_take("A"), slots.try_take("A")
    assert a1 is not None and a2 is not None
    clock.t += 0.9
    assert not slots.stuck("A") and slots.try_take("A") is not None  # not out long enough yet
    clock.t += 0.2  # two have been out 1.1 s
    assert slots.old("A") == 2 and slots.stuck("A")
    assert slots.try_take("A") is None
    assert slots.try_take("B") is not None  # other channels are not affected
    slots.release(a1)  # one ends (however late): the channel may send again
    assert not slots.stuck("A") and slots.try_take("A") is not None


def test_a_supplier_that_hangs_on_some_orders_is_held_back_by_those() -> None:
    # 30 % of dispatches hang; the rest answer in 0.1 s. Quick answers do not let hung ones pile up.
    clock = FakeTime()
    slots = ChannelSlots(3, slow_after_s=1.0, now=clock)
    hung = 0
    for i in range(200):
        slot = slots.try_take("A")
        if slot is None:
            continue
        if i % 10 < 3:
            hung += 1  # never released
        else:
            clock.t += 0.05
            slots.release(slot)
        clock.t += 0.05
    # Held back once `limit` hung ones were old: `limit` plus those sent in the second before that
    # (here 3 + 3), out of the 60 that would have hung without it.
    assert slots.old("A") == 3 and slots.stuck("A")
    assert hung == slots.in_flight("A") == 6


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
