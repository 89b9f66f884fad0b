"""The order and attempt state machines, and attempt references."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from topup.domain.errors import InvalidState
from topup.domain.orders import (
    ATTEMPT_TRANSITIONS,
    FINAL_STATUSES,
    MERCHANT_ORDER_ID,
    ORDER_TRANSITIONS,
    AttemptStatus,
    ForbiddenTransition,
    OrderStatus,
    attempt_ref,
    check_attempt_transition,
    check_order_transition,
    is_final,
    parse_ref,
)

OS = OrderStatus
AS = AttemptStatus

ORDER_ALLOWED = {
    (OS.PENDING_PAYMENT, OS.PROCESSING),
    (OS.PENDING_PAYMENT, OS.CANCELLED),
    (OS.PROCESSING, OS.SUCCEEDED),
    (OS.PROCESSING, OS.FAILED),
}
ATTEMPT_ALLOWED = {
    (AS.PENDING, AS.SUCCEEDED),
    (AS.PENDING, AS.FAILED),
    (AS.PENDING, AS.ABANDONED),
    (AS.ABANDONED, AS.SUCCEEDED),  # a late success is still recorded
}


def test_status_values_match_the_spec() -> None:
    assert {s.value for s in OS} == {"pending_payment", "processing", "succeeded", "failed", "cancelled"}
    assert {s.value for s in AS} == {"pending", "succeeded", "failed", "abandoned"}


def test_tables_cover_every_status() -> None:
    assert set(ORDER_TRANSITIONS) == set(OS)
    assert set(ATTEMPT_TRANSITIONS) == set(AS)


@pytest.mark.parametrize(("cur", "tgt"), list(itertools.product(OS, OS)), ids=lambda s: str(s))
def test_order_transition(cur: OrderStatus, tgt: OrderStatus) -> None:
    if (cur, tgt) in ORDER_ALLOWED:
        assert check_order_transition(cur.value, tgt.value) is tgt
    else:
        with pytest.raises(ForbiddenTransition) as e:
            check_order_transition(cur.value, tgt.value)
        assert isinstance(e.value, InvalidState)
        assert e.value.code == "invalid_state" and e.value.status == 409
        assert str(cur) in e.value.message and str(tgt) in e.value.message


@pytest.mark.parametrize(("cur", "tgt"), list(itertools.product(AS, AS)), ids=lambda s: str(s))
def test_attempt_transition(cur: AttemptStatus, tgt: AttemptStatus) -> None:
    if (cur, tgt) in ATTEMPT_ALLOWED:
        assert check_attempt_transition(cur.value, tgt.value) is tgt
    else:
        with pytest.raises(ForbiddenTransition):
            check_attempt_transition(cur.value, tgt.value)


def test_final_statuses_have_no_way_out() -> None:
    assert {OS.SUCCEEDED, OS.FAILED, OS.CANCELLED} == FINAL_STATUSES
    for s in OS:
        assert is_final(s.value) is (s in FINAL_STATUSES)
        assert (ORDER_TRANSITIONS[s] == frozenset()) is (s in FINAL_STATUSES)
    assert is_final("nonsense") is False


def test_unknown_status_is_rejected() -> None:
    with pytest.raises(ValueError):
        check_order_transition("processing", "refunded")
    with pytest.raises(ValueError):
        check_attempt_transition("running", "failed")


@pytest.mark.parametrize(
    ("order_id", "no"),
    [("ord_01HZX", 1), ("ord_01HZX", 12), ("ord-with-dashes", 3), ("x", 0)],
)
def test_attempt_ref_round_trips(order_id: str, no: int) -> None:
    ref = attempt_ref(order_id, no)
    assert ref == f"{order_id}-{no}"
    assert parse_ref(ref) == (order_id, no)


@pytest.mark.parametrize(
    "ref", ["", "-", "ord_1", "ord_1-", "-3", "ord_1-x", "ord_1-1a", "ord_1--", "ord_1- 1", "ord_1-²"]
)
def test_parse_ref_rejects_garbage(ref: str) -> None:
    assert parse_ref(ref) is None


@given(order_id=st.text(min_size=1, max_size=40), no=st.integers(0, 10**6))
def test_parse_ref_inverts_attempt_ref(order_id: str, no: int) -> None:
    assert parse_ref(attempt_ref(order_id, no)) == (order_id, no)


@given(st.text(max_size=80))
def test_parse_ref_never_raises(ref: str) -> None:
    out = parse_ref(ref)
    if out is not None:
        order_id, no = out
        assert ref.startswith(f"{order_id}-") and no >= 0
        assert int(ref[len(order_id) + 1 :]) == no


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("A-1001", True),
        ("a.b_c-9", True),
        ("x" * 64, True),
        ("x" * 65, False),
        ("", False),
        ("A 1", False),
        ("A/1", False),
        ("订单1", False),
        ("A-1\n", False),
    ],
)
def test_merchant_order_id_format(value: str, ok: bool) -> None:
    assert bool(MERCHANT_ORDER_ID.match(value)) is ok
