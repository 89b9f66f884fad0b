"""`Order` and `Attempt`: every status change goes through the transition tables."""

from __future__ import annotations

import itertools

import pytest

from topup.domain.orders import (
    ATTEMPT_TRANSITIONS,
    ORDER_TRANSITIONS,
    Attempt,
    AttemptStatus,
    ForbiddenTransition,
    Order,
    OrderStatus,
    attempt_sources,
)


def order(status: OrderStatus) -> Order:
    return Order(
        id="ord_1",
        merchant_id="m",
        merchant_order_id="O-1",
        request_hash="h",
        business_type="mobile_airtime",
        product_code="airtime.50",
        account="13800138000",
        face_value=5000,
        price=4980,
        status=status,
        funding="balance",
        created_at=1.0,
        updated_at=1.0,
    )


def attempt(status: AttemptStatus) -> Attempt:
    return Attempt(
        id=1,
        order_id="ord_1",
        no=1,
        ref="ord_1-1",
        channel_code="supA",
        status=status,
        dispatch_state="accepted",
        started_at=1.0,
    )


@pytest.mark.parametrize(("cur", "tgt"), list(itertools.product(OrderStatus, OrderStatus)), ids=str)
def test_an_order_moves_as_the_table_says(cur: OrderStatus, tgt: OrderStatus) -> None:
    o = order(cur)
    if tgt in ORDER_TRANSITIONS[cur]:
        assert o.move_to(tgt, 5.0) is cur
        assert (o.status, o.updated_at) == (tgt, 5.0)
        assert o.completed_at == (5.0 if tgt is not OrderStatus.PROCESSING else None)
    else:
        with pytest.raises(ForbiddenTransition):
            o.move_to(tgt, 5.0)
        assert (o.status, o.updated_at, o.completed_at) == (cur, 1.0, None)


def test_a_final_move_records_why() -> None:
    failed = order(OrderStatus.PROCESSING)
    failed.move_to(OrderStatus.FAILED, 2.0, failure_reason="x" * 600)
    assert failed.failure_reason == "x" * 500
    done = order(OrderStatus.PROCESSING)
    done.move_to(OrderStatus.SUCCEEDED, 2.0, succeeded_ref="ord_1-2")
    assert (done.succeeded_ref, done.failure_reason) == ("ord_1-2", None)


@pytest.mark.parametrize(("cur", "tgt"), list(itertools.product(AttemptStatus, AttemptStatus)), ids=str)
def test_an_attempt_moves_as_the_table_says(cur: AttemptStatus, tgt: AttemptStatus) -> None:
    a = attempt(cur)
    if tgt in ATTEMPT_TRANSITIONS[cur]:
        assert a.move_to(tgt, 3.0, "why") is cur
        assert (a.status, a.finished_at, a.reason) == (tgt, 3.0, "why")
    else:
        with pytest.raises(ForbiddenTransition):
            a.move_to(tgt, 3.0)
        assert (a.status, a.finished_at) == (cur, None)


def test_the_sources_of_a_move_come_from_the_table() -> None:
    assert attempt_sources(AttemptStatus.SUCCEEDED) == {AttemptStatus.PENDING, AttemptStatus.ABANDONED}
    assert attempt_sources(AttemptStatus.FAILED) == {AttemptStatus.PENDING}
    assert attempt_sources(AttemptStatus.ABANDONED) == {AttemptStatus.PENDING}
    assert attempt_sources(AttemptStatus.PENDING) == frozenset()
