"""Supplier statements without a database: reading the CSV, every kind of discrepancy and its precedence,
and properties (a statement made from our own attempts reconciles cleanly; planted ones are found)."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from topup.domain.errors import InvalidRequest
from topup.domain.statement_files import parse, parse_csv, parse_time, period, render_csv
from topup.domain.statements import DiscrepancyKind, OurAttempt, StatementRow, reconcile, sample

K = DiscrepancyKind


def attempt(
    ref: str, status: str = "succeeded", cost: int = 4900, in_period: bool = True, at: float = 0.0
) -> OurAttempt:
    return OurAttempt.of(ref, f"{ref}-ref", f"ord-{ref}", status, cost, in_period, at)


def ours(*attempts: OurAttempt) -> dict[str, OurAttempt]:
    return {a.supplier_ref: a for a in attempts}


def rows(*spec: tuple[str, str, int | None]) -> list[StatementRow]:
    return [StatementRow(i + 2, ref, status, amount) for i, (ref, status, amount) in enumerate(spec)]


# ---- reading ---------------------------------------------------------------------------------------


def test_reads_the_spec_csv() -> None:
    body = b"supplier_ref,status,amount\nA1,success,4900\nA2,failed,\nA3,failed,0\n"
    assert parse_csv(body) == [
        StatementRow(2, "A1", "success", 4900),
        StatementRow(3, "A2", "failed", None),
        StatementRow(4, "A3", "failed", 0),
    ]


def test_reads_columns_in_any_order_with_extras_bom_crlf_blank_lines_and_spaces() -> None:
    body = "\ufeffAmount, Status ,note,SUPPLIER_REF\r\n\r\n4900, Success ,x,A1\r\n,failed,,A2\r\n,,,\r\n"
    body = body.encode()
    assert parse_csv(body) == [StatementRow(3, "A1", "success", 4900), StatementRow(4, "A2", "failed", None)]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"", "the statement is empty"),
        (b"\n\n", "the statement is empty"),
        (b"ref,status,amount\nA1,success,1\n", "the header must name the columns"),
        (b"supplier_ref,status,amount\nA1,ok,4900\n", "line 2: status must be success or failed"),
        (b"supplier_ref,status,amount\nA1,success,-1\n", "line 2: amount must be a whole number"),
        (b"supplier_ref,status,amount\nA1,success,49.00\n", "line 2: amount must be a whole number"),
        (b"supplier_ref,status,amount\nA1,success,\n", "line 2: a success needs its amount"),
        (b"supplier_ref,status,amount\n,success,1\n", "line 2: supplier_ref must be 1-200 characters"),
        (b"supplier_ref,status,amount\n" + b"x" * 201 + b",success,1\n", "supplier_ref must be 1-200"),
        (b"supplier_ref,status,amount\nA1,success,\xff\n", "must be UTF-8"),
        (b"supplier_ref,status,amount\nA1,success,1\nA2,success,\xd9\xa3\n", "line 3: amount"),
    ],
)
def test_a_file_it_cannot_read_is_refused_with_the_line(body: bytes, needle: str) -> None:
    with pytest.raises(InvalidRequest) as e:
        parse_csv(body)
    assert needle in e.value.message


def test_lists_at_most_twenty_problems_and_says_there_were_more() -> None:
    body = b"supplier_ref,status,amount\n" + b"".join(b"A%d,maybe,1\n" % i for i in range(30))
    with pytest.raises(InvalidRequest) as e:
        parse_csv(body)
    assert len(e.value.details["errors"]) == 20
    assert e.value.details["errors"][0].startswith("line 2:")
    assert "10 not shown" in e.value.message


def test_unknown_format_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="format: one of csv"):
        parse(b"supplier_ref,status,amount\n", "juhe-xls")


def test_times_and_periods() -> None:
    assert parse_time("2024-05-01", "from") == 1_714_521_600.0
    assert parse_time("2024-05-01T08:00:00+08:00", "from") == 1_714_521_600.0
    assert parse_time("2024-05-01T00:00:00Z", "from") == parse_time("2024-05-01T00:00:00", "from")
    assert period("2024-05-01", "2024-05-02") == (1_714_521_600.0, 1_714_608_000.0)
    for bad in ("", "yesterday", "2024-13-01"):
        with pytest.raises(InvalidRequest, match="from: an RFC 3339 time"):
            parse_time(bad, "from")
    with pytest.raises(InvalidRequest, match="to must be later than from"):
        period("2024-05-02", "2024-05-01")


# ---- reconciling -----------------------------------------------------------------------------------


def test_a_statement_that_agrees_has_no_discrepancies() -> None:
    us = ours(attempt("A1"), attempt("A2", "failed", 0), attempt("A3", "abandoned", 0))
    r = reconcile(rows(("A1", "success", 4900), ("A2", "failed", None), ("A3", "failed", 123)), us)
    assert (r.rows, r.matched, r.agreed, r.discrepancies) == (3, 3, 3, [])


def test_every_kind_of_discrepancy() -> None:
    us = ours(
        attempt("OK"),
        attempt("THERE"),  # not in the statement
        attempt("STATUS", "succeeded"),  # they say failed
        attempt("LATE", "failed", 0),  # they say success: money at stake
        attempt("AMOUNT", cost=4900),  # they bill 4910
        attempt("BOTH", cost=4900),  # they say failed with another amount: status wins
        attempt("OLD", in_period=False),  # outside the period, named by a row: matched as usual
        attempt("OLDER", in_period=False),  # outside the period, not named: not required
        attempt("PENDING", "pending", 0),
    )
    statement = rows(
        ("OK", "success", 4900),
        ("HERE", "success", 4900),
        ("STATUS", "failed", None),
        ("LATE", "success", 4900),
        ("AMOUNT", "success", 4910),
        ("BOTH", "failed", 1),
        ("OLD", "success", 4900),
        ("PENDING", "success", 4900),
        ("OK", "success", 4900),
    )
    r = reconcile(statement, us)
    found = [(d.supplier_ref, d.kind) for d in r.discrepancies]
    assert found == [
        ("HERE", K.MISSING_HERE),
        ("STATUS", K.STATUS_MISMATCH),
        ("LATE", K.STATUS_MISMATCH),
        ("AMOUNT", K.AMOUNT_MISMATCH),
        ("BOTH", K.STATUS_MISMATCH),
        ("PENDING", K.STATUS_MISMATCH),
        ("OK", K.DUPLICATE_ROW),
        ("THERE", K.MISSING_THERE),
    ]
    assert (r.rows, r.matched, r.agreed) == (9, 7, 2)
    by = {(d.supplier_ref, d.kind): d for d in r.discrepancies}
    late = by["LATE", K.STATUS_MISMATCH]
    assert late.ours == {
        "status": "failed",
        "amount": 0,
        "ref": "LATE-ref",
        "order_id": "ord-LATE",
        "attempt_status": "failed",
    }
    assert late.theirs == {"status": "success", "amount": 4900, "line": 5}
    assert late.unrecorded_success and late.at_stake == 4900
    assert by["HERE", K.MISSING_HERE].ours is None and by["HERE", K.MISSING_HERE].at_stake == 4900
    assert by["THERE", K.MISSING_THERE].theirs is None and by["THERE", K.MISSING_THERE].at_stake == 4900
    assert by["AMOUNT", K.AMOUNT_MISMATCH].at_stake == 10
    assert (
        by["STATUS", K.STATUS_MISMATCH].at_stake == 4900
        and not by["STATUS", K.STATUS_MISMATCH].unrecorded_success
    )
    assert (
        by["PENDING", K.STATUS_MISMATCH].at_stake == 0
        and not by["PENDING", K.STATUS_MISMATCH].unrecorded_success
    )
    assert by["OK", K.DUPLICATE_ROW].at_stake == 4900
    assert r.counts() == {
        "missing_here": 1,
        "missing_there": 1,
        "status_mismatch": 4,
        "amount_mismatch": 1,
        "duplicate_row": 1,
    }


def test_failed_rows_are_not_compared_on_amount_and_an_abandoned_success_is_unrecorded() -> None:
    us = ours(attempt("F", "failed", 0), attempt("A", "abandoned", 0))
    r = reconcile(rows(("F", "failed", 999), ("A", "success", 4900)), us)
    assert [(d.supplier_ref, d.kind, d.unrecorded_success) for d in r.discrepancies] == [
        ("A", K.STATUS_MISMATCH, True)
    ]


def test_missing_there_in_dispatch_order() -> None:
    us = ours(attempt("B", at=2.0), attempt("A", at=3.0), attempt("C", at=1.0))
    assert [d.supplier_ref for d in reconcile([], us).discrepancies] == ["C", "B", "A"]


# ---- properties --------------------------------------------------------------------------------------

statuses = st.sampled_from(["succeeded", "failed", "abandoned", "pending"])
refs = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789-_", min_size=1, max_size=24)


@st.composite
def our_attempts(draw: st.DrawFn, pending: bool = True) -> dict[str, OurAttempt]:
    names = draw(st.lists(refs, unique=True, max_size=30))
    out = {}
    for i, ref in enumerate(names):
        status = draw(statuses if pending else statuses.filter(lambda s: s != "pending"))
        cost = draw(st.integers(min_value=0, max_value=10**7)) if status == "succeeded" else 0
        out[ref] = attempt(ref, status, cost, draw(st.booleans()), at=float(i))
    return out


@given(our_attempts(pending=False))
def test_a_statement_made_from_our_own_final_attempts_reconciles_cleanly(us: dict[str, OurAttempt]) -> None:
    body = render_csv(sample(list(us.values()))).encode()
    r = reconcile(parse_csv(body), us)
    assert r.discrepancies == []
    assert r.rows == r.matched == r.agreed == len(us)


@given(our_attempts())
def test_attempts_not_final_yet_are_all_that_is_missing(us: dict[str, OurAttempt]) -> None:
    r = reconcile(parse_csv(render_csv(sample(list(us.values()))).encode()), us)
    assert {(d.supplier_ref, d.kind) for d in r.discrepancies} == {
        (a.supplier_ref, K.MISSING_THERE) for a in us.values() if a.status == "pending" and a.in_period
    }


@given(our_attempts(pending=False), st.integers(min_value=0, max_value=1000))
def test_planted_discrepancies_are_found(us: dict[str, OurAttempt], seed: int) -> None:
    planted = sample(list(us.values()), with_discrepancies=True, seed=seed)
    r = reconcile(parse_csv(render_csv(planted).encode()), us)
    counts = Counter(d.kind for d in r.discrepancies)
    successes = sum(1 for a in us.values() if a.status == "succeeded")
    failures = len(us) - successes
    assert counts[K.MISSING_HERE] == 1
    assert counts[K.AMOUNT_MISMATCH] == (1 if successes >= 2 else 0)
    assert counts[K.STATUS_MISMATCH] == (1 if failures else 0)
    assert all(d.unrecorded_success for d in r.discrepancies if d.kind is K.STATUS_MISMATCH)
    dropped = 1 if successes >= 1 or failures >= 2 else 0
    # A dropped row is missing there only when its attempt belongs to the period.
    assert counts[K.MISSING_THERE] <= dropped
    assert r.rows == len(us) - dropped + 1


@given(
    our_attempts(),
    st.lists(
        st.tuples(refs, st.sampled_from(["success", "failed"]), st.integers(min_value=0, max_value=10**6)),
        max_size=40,
    ),
)
def test_every_row_and_every_attempt_of_the_period_is_accounted_for(
    us: dict[str, OurAttempt], spec: list[tuple[str, str, int]]
) -> None:
    r = reconcile(rows(*spec), us)
    counts = Counter(d.kind for d in r.discrepancies)
    assert r.rows == len(spec) == r.matched + counts[K.MISSING_HERE] + counts[K.DUPLICATE_ROW]
    named = {ref for ref, _, _ in spec}
    assert {d.supplier_ref for d in r.discrepancies if d.kind is K.MISSING_THERE} == {
        a.supplier_ref for a in us.values() if a.in_period and a.supplier_ref not in named
    }
    assert 0 <= r.agreed <= r.matched
    for d in r.discrepancies:
        assert d.at_stake >= 0
        assert (d.ours is None) == (
            d.kind is K.MISSING_HERE or (d.kind is K.DUPLICATE_ROW and d.supplier_ref not in us)
        )
        assert (d.theirs is None) == (d.kind is K.MISSING_THERE)


@given(st.lists(st.tuples(refs, st.sampled_from(["success", "failed"]), st.integers(0, 10**12)), max_size=30))
def test_render_then_parse_is_the_same_statement(spec: list[tuple[str, str, int]]) -> None:
    written = [(ref, status, amount if status == "success" else None) for ref, status, amount in spec]
    back = parse_csv(render_csv(written).encode())
    assert [(r.supplier_ref, r.status, r.amount) for r in back] == written
