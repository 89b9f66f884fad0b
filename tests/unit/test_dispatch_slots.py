"""Per-channel dispatch slots: the limit, hand-over in arrival order, and giving up on a stuck channel."""

from __future__ import annotations

import asyncio

from topup.services.dispatch_slots import ChannelSlots


class FakeTime:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_channel_gets_at_most_limit_slots_and_others_are_not_affected() -> None:
    slots = ChannelSlots(2)
    a1, a2 = slots.try_take("A"), slots.try_take("A")
    assert a1 is not None and a2 is not None
    assert slots.try_take("A") is None
    assert slots.in_flight("A") == 2
    assert slots.try_take("B") is not None  # another channel has its own slots
    slots.release(a1)
    assert slots.in_flight("A") == 1
    assert slots.try_take("A") is not None


def test_no_limit_when_limit_is_zero() -> None:
    slots = ChannelSlots(0)
    assert all(slots.try_take("A") is not None for _ in range(100))
    assert slots.in_flight("A") == 100


def test_releasing_twice_frees_one_slot() -> None:
    slots = ChannelSlots(1)
    a = slots.try_take("A")
    assert a is not None
    slots.release(a)
    slots.release(a)
    assert slots.in_flight("A") == 0
    assert slots.try_take("A") is not None and slots.try_take("A") is None


async def test_waiters_get_released_slots_in_arrival_order_and_newcomers_queue_behind() -> None:
    slots = ChannelSlots(1, slow_after_s=30.0)
    held = slots.try_take("A")
    assert held is not None
    order: list[str] = []

    async def waiter(name: str) -> None:
        slot = await slots.wait("A")
        assert slot is not None
        order.append(name)
        slots.release(slot)

    first = asyncio.create_task(waiter("first"))
    await asyncio.sleep(0)
    second = asyncio.create_task(waiter("second"))
    await asyncio.sleep(0)
    assert slots.waiting("A") == 2
    # A newcomer does not take the slot from under the queued waiters.
    slots.release(held)
    assert slots.try_take("A") is None
    await asyncio.gather(first, second)
    assert order == ["first", "second"]
    assert slots.in_flight("A") == 0 and slots.waiting("A") == 0


async def test_wait_gives_up_at_once_when_the_channel_is_stuck() -> None:
    clock = FakeTime()
    slots = ChannelSlots(1, slow_after_s=1.0, now=clock)
    assert slots.try_take("A") is not None
    clock.t += 0.5
    assert not slots.slow("A")
    clock.t += 1.0  # the dispatch in flight has been out 1.5 s
    assert slots.slow("A")
    assert await asyncio.wait_for(slots.wait("A", timeout_s=30.0), timeout=1.0) is None
    assert slots.waiting("A") == 0


async def test_a_waiter_that_times_out_or_is_cancelled_leaves_no_slot_behind() -> None:
    slots = ChannelSlots(1, slow_after_s=30.0)
    held = slots.try_take("A")
    assert held is not None
    assert await slots.wait("A", timeout_s=0.01) is None
    cancelled = asyncio.create_task(slots.wait("A"))
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    assert slots.waiting("A") == 0
    slots.release(held)
    # Nobody kept the slot: the channel is free again.
    assert slots.in_flight("A") == 0
    assert slots.try_take("A") is not None
