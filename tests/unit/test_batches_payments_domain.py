"""Pure batch and payment rules: row shapes, fingerprints, results.csv, payment transitions, notify bodies."""

from __future__ import annotations

import csv
import io

import pytest

from topup.domain import batches as B
from topup.domain.errors import InvalidRequest, InvalidState
from topup.domain.orders import MERCHANT_ORDER_ID
from topup.domain.payments import PaymentStatus, check_payment_transition, parse_method, parse_notify


def test_row_order_id_fits_the_merchant_order_id_pattern() -> None:
    oid = B.row_order_id("bat_18c2f0a1b2c" + "d" * 12, B.MAX_ROWS)
    assert MERCHANT_ORDER_ID.match(oid)
    assert len(oid) <= 64


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"product_code": "airtime.50", "account": "13800138000"}, None),
        ({"product_code": "airtime.50"}, "account"),
        ({"account": "13800138000"}, "product_code"),
        ({"product_code": 5, "account": "1"}, "product_code"),
        ({"product_code": "a", "account": 138}, "account"),
        ("airtime.50,138", "row must be an object"),
        (None, "row must be an object"),
    ],
)
def test_parse_row_reports_malformed_rows_one_by_one(raw: object, problem: str | None) -> None:
    r = B.parse_row(3, raw)
    assert r.row == 3
    if problem is None:
        assert r.problem is None
    else:
        assert r.problem is not None and r.problem.startswith(problem)


def test_fingerprint_depends_on_every_field() -> None:
    rows = [{"product_code": "a", "account": "1"}]
    base = B.fingerprint("B-1", rows, None)
    assert base == B.fingerprint("B-1", [{"account": "1", "product_code": "a"}], None)
    assert base != B.fingerprint("B-2", rows, None)
    assert base != B.fingerprint("B-1", rows, "https://m.example/cb")
    assert base != B.fingerprint("B-1", [*rows, *rows], None)


def test_results_csv_lines_and_formula_guard() -> None:
    rows = [
        {
            "row": 1,
            "status": "placed",
            "order_id": "ord_1",
            "error": None,
            "product_code": "p",
            "account": "1",
        },
        {
            "row": 2,
            "status": "invalid",
            "order_id": None,
            "error": {"code": "invalid_account", "message": "bad"},
            "product_code": "p",
            "account": "=HYPERLINK(1)",
        },
    ]
    orders = {"ord_1": {"status": "failed", "price": 4980, "failure_reason": "all_channels_failed: x"}}
    out = list(csv.reader(io.StringIO(B.results_csv(rows, orders))))
    assert out[0] == B.RESULT_COLUMNS
    assert out[1] == ["1", "p", "1", "ord_1", "failed", "4980", "order_failed", "all_channels_failed: x"]
    assert out[2] == ["2", "p", "'=HYPERLINK(1)", "", "invalid", "", "invalid_account", "bad"]


def test_payment_transitions() -> None:
    assert check_payment_transition("pending", "paid") is PaymentStatus.PAID
    for final in ("paid", "declined", "expired"):
        with pytest.raises(InvalidState):
            check_payment_transition(final, "pending")
    with pytest.raises(InvalidState):
        check_payment_transition("declined", "paid")


def test_parse_method_and_notify() -> None:
    assert parse_method("balance") == "balance"
    with pytest.raises(InvalidRequest):
        parse_method("card")
    assert parse_notify({"payment_id": "pay_1", "status": "paid", "amount": 10}) == ("pay_1", "paid", 10)
    for bad in (
        [],
        {"payment_id": "pay_1", "status": "refunded", "amount": 10},
        {"payment_id": "pay_1", "status": "paid", "amount": 0},
        {"payment_id": "pay_1", "status": "paid", "amount": True},
        {"payment_id": "", "status": "paid", "amount": 1},
    ):
        with pytest.raises(InvalidRequest):
            parse_notify(bad)
