"""Per-channel dispatch slots: only a stuck channel is held back, and a healthy one never is."""

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
    # A fresh burst: many in flight, none old yet.
    burst = [slots.try_take("A") for _ in range(10)]
    assert all(s is not None for s in burst) and slots.in_flight("A") == 10
    assert not slots.stuck("A")


def test_a_channel_is_stuck_when_its_dispatches_stop_coming_back() -> None:
    clock = FakeTime()
    slots = ChannelSlots(2, slow_after_s=1.0, now=clock)
    a1, a2 = slots.try_take("A"), slots.try_take("A")
    assert a1 is not None and a2 is not None
    clock.t += 0.9
    assert not slots.stuck("A") and slots.try_take("A") is not None  # not old enough yet
    clock.t += 0.2  # the oldest has been out 1.1 s and nothing came back
    assert slots.stuck("A")
    assert slots.try_take("A") is None
    assert slots.try_take("B") is not None  # other channels are not affected
    # Below the limit a channel is never stuck, however slow.
    lone = ChannelSlots(5, slow_after_s=1.0, now=clock)
    assert lone.try_take("A") is not None
    clock.t += 60
    assert not lone.stuck("A") and lone.try_take("A") is not None


def test_a_quick_answer_unsticks_a_channel_and_a_slow_one_does_not() -> None:
    clock = FakeTime()
    slots = ChannelSlots(2, slow_after_s=1.0, now=clock)
    hung = [slots.try_take("A") for _ in range(3)]
    clock.t += 5
    assert slots.stuck("A")
    # A dispatch that took 5 s and finally ended is no sign of health.
    slow = hung.pop()
    assert slow is not None
    slots.release(slow)
    assert slots.stuck("A")
    # One that came back quickly is: new dispatches go out again, while two are still hanging.
    quick = slots.try_take("B")  # (another channel, unaffected)
    assert quick is not None
    probe = ChannelSlots(2, slow_after_s=1.0, now=clock)
    long_one = probe.try_take("A")
    assert long_one is not None
    clock.t += 5
    for _ in range(3):  # quick dispatches keep turning over next to the long one
        s = probe.try_take("A")
        assert s is not None
        clock.t += 0.1
        probe.release(s)
    assert probe.try_take("A") is not None and probe.try_take("A") is not None
    assert probe.in_flight("A") == 3 and not probe.stuck("A")
    clock.t += 1.5  # then nothing quick for 1.5 s, three out, the oldest for 6.8 s
    assert probe.stuck("A") and probe.try_take("A") is None


def test_no_limit_when_limit_is_zero() -> None:
    clock = FakeTime()
    slots = ChannelSlots(0, slow_after_s=1.0, now=clock)
    assert all(slots.try_take("A") is not None for _ in range(50))
    clock.t += 60
    assert not slots.stuck("A") and slots.try_take("A") is not None


def test_releasing_twice_frees_one_slot_and_free_in_counts_to_the_oldest_timeout() -> None:
    clock = FakeTime()
    slots = ChannelSlots(1, slow_after_s=1.0, now=clock)
    first = slots.try_take("A")
    clock.t += 2
    second = slots.try_take("A")
    assert first is not None and second is None  # stuck after 2 s
    assert slots.free_in("A", timeout_s=10.0) == 8.0
    slots.release(first)
    slots.release(first)
    assert slots.in_flight("A") == 0 and slots.free_in("A", 10.0) == 0.0
    assert slots.try_take("A") is not None and slots.in_flight("A") == 1


def test_defer_delay_backs_off_but_not_past_the_oldest_dispatch_timeout() -> None:
    assert defer_delay(1, 60) == DEFER_BASE_S
    assert defer_delay(2, 60) == 2 * DEFER_BASE_S
    assert defer_delay(30, 600) == DEFER_MAX_S
    assert defer_delay(30, 3.0) == 3.0
    assert defer_delay(5, 0.0) == DEFER_BASE_S  # never a busy loop


def test_a_suspect_channel_stays_limited_until_it_answers_quickly() -> None:
    clock = FakeTime()
    slots = ChannelSlots(2, slow_after_s=1.0, now=clock)
    hung = [slots.try_take("A") for _ in range(4)]  # the first second of going silent: a burst gets in
    clock.t += 2
    assert slots.try_take("A") is None and slots.suspect("A")
    for slot in hung:  # they time out one after another: slow endings
        assert slot is not None
        slots.release(slot)
    # Now empty, but still suspect: no new burst, at most `limit` in flight.
    again = [slots.try_take("A") for _ in range(3)]
    assert again[0] is not None and again[1] is not None and again[2] is None
    assert slots.suspect("A")
    # One of them answers at once: the supplier is back, the channel is no longer limited.
    assert again[0] is not None
    slots.release(again[0])
    assert not slots.suspect("A")
    assert all(slots.try_take("A") is not None for _ in range(5))
