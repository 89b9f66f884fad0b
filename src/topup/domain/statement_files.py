"""Supplier statement files: read the SPEC's CSV (and any format a protocol registers), the period
parameters, and the CSV files the platform writes (statements, discrepancies)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from topup.domain.errors import InvalidRequest
from topup.domain.statements import STATUSES, Discrepancy, StatementRow

HEADER = ("supplier_ref", "status", "amount")
MAX_REF = 200
MAX_ERRORS = 20

# ---- reading statements ---------------------------------------------------------------------------

Parser = Callable[[bytes], list[StatementRow]]


def _invalid(errors: list[str]) -> InvalidRequest:
    more = "" if len(errors) <= MAX_ERRORS else f" (and more: {len(errors) - MAX_ERRORS} not shown)"
    return InvalidRequest(f"the statement is not valid: {errors[0]}{more}", {"errors": errors[:MAX_ERRORS]})


def parse_csv(body: bytes) -> list[StatementRow]:
    """The SPEC's CSV: header `supplier_ref,status,amount` (any column order, other columns ignored),
    status `success|failed`, amount integer fen (may be empty on a failed row). Blank lines are skipped.
    Raises InvalidRequest listing the first problems with their line numbers; nothing is half-read."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidRequest("the statement must be UTF-8 text (CSV)") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[StatementRow] = []
    errors: list[str] = []
    at: list[int] = []
    try:
        for fields in reader:
            if not at:
                if not fields or all(not f.strip() for f in fields):
                    continue
                at = _header(reader.line_num, fields)
                continue
            # The common case first: exactly the three columns, clean values.
            try:
                ref, status, amount = (fields[at[0]], fields[at[1]], fields[at[2]])
            except IndexError:
                if all(not f.strip() for f in fields):
                    continue
                ref, status, amount = (fields[i] if i < len(fields) else "" for i in at)
            if (
                ref
                and len(ref) <= MAX_REF
                and (status == "success" or status == "failed")
                and ref == ref.strip()
            ):
                if amount.isdigit() and amount.isascii() and len(amount) <= 15:
                    rows.append(StatementRow(reader.line_num, ref, status, int(amount)))
                    continue
                if not amount and status == "failed":
                    rows.append(StatementRow(reader.line_num, ref, status, None))
                    continue
            if not (ref or status or amount) and all(not f.strip() for f in fields):
                continue
            row = _row(reader.line_num, ref, status, amount, errors)
            if row is not None:
                rows.append(row)
    except csv.Error as e:
        errors.append(f"line {reader.line_num}: {e}")
    if not at and not errors:
        raise InvalidRequest(
            f"the statement is empty: it needs the header {','.join(HEADER)}",
            {"errors": ["line 1: missing header"]},
        )
    if errors:
        raise _invalid(errors)
    return rows


def _header(line: int, fields: list[str]) -> list[int]:
    header = [f.strip().lower() for f in fields]
    missing = [h for h in HEADER if h not in header]
    if missing:
        raise InvalidRequest(
            f"line {line}: the header must name the columns {','.join(HEADER)}",
            {"errors": [f"line {line}: missing column {', '.join(missing)}"]},
        )
    return [header.index(h) for h in HEADER]


def _row(line: int, ref: str, status: str, amount_text: str, errors: list[str]) -> StatementRow | None:
    """The careful path for a row the fast path did not take: trimmed values, or errors."""
    ref, status, amount_text = ref.strip(), status.strip().lower(), amount_text.strip()
    before = len(errors)
    if not ref or len(ref) > MAX_REF:
        errors.append(f"line {line}: supplier_ref must be 1-{MAX_REF} characters")
    if status not in STATUSES:
        errors.append(f"line {line}: status must be success or failed, not {status[:20]!r}")
    amount: int | None = None
    if amount_text:
        if amount_text.isascii() and amount_text.isdigit() and len(amount_text) <= 15:
            amount = int(amount_text)
        else:
            errors.append(f"line {line}: amount must be a whole number of fen, not {amount_text[:20]!r}")
    elif status == "success":
        errors.append(f"line {line}: a success needs its amount (fen)")
    if len(errors) != before:
        return None
    return StatementRow(line, ref, status, amount)


# Statement formats by name: `csv` (the SPEC's) for every channel; a protocol may register its supplier's
# own export format under the protocol's name (`register_format`), chosen with `?format=<name>`.
PARSERS: dict[str, Parser] = {"csv": parse_csv}


def register_format(name: str, parser: Parser) -> None:
    PARSERS[name] = parser


def parse(body: bytes, fmt: str = "csv") -> list[StatementRow]:
    parser = PARSERS.get(fmt)
    if parser is None:
        raise InvalidRequest(f"format: one of {', '.join(sorted(PARSERS))}, not {fmt[:40]!r}")
    return parser(body)


def parse_time(value: str, name: str) -> float:
    """An RFC 3339 time (`2024-05-01T00:00:00Z`; without an offset: UTC) or a date (`2024-05-01`, its
    midnight UTC) -> unix seconds."""
    text = (value or "").strip()
    try:
        when = datetime.fromisoformat(text.replace("z", "Z")) if text else None
    except ValueError:
        when = None
    if when is None:
        raise InvalidRequest(f"{name}: an RFC 3339 time such as 2024-05-01T00:00:00Z, or a date")
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def period(start: str, end: str) -> tuple[float, float]:
    t0, t1 = parse_time(start, "from"), parse_time(end, "to")
    if t1 <= t0:
        raise InvalidRequest("to must be later than from")
    return t0, t1


# ---- writing statements -----------------------------------------------------------------------------


def render_csv(rows: Iterable[tuple[str, str, int | None]]) -> str:
    """A statement in the SPEC's CSV."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(HEADER)
    for ref, status, amount in rows:
        w.writerow((ref, status, "" if amount is None else amount))
    return out.getvalue()


DISCREPANCY_COLUMNS = (
    "supplier_ref",
    "kind",
    "our_status",
    "our_amount",
    "their_status",
    "their_amount",
    "at_stake",
    "ref",
    "order_id",
    "line",
)


def discrepancy_csv_row(d: Discrepancy) -> list[Any]:
    ours, theirs = d.ours or {}, d.theirs or {}
    return [
        d.supplier_ref,
        str(d.kind),
        ours.get("status", ""),
        "" if ours.get("amount") is None else ours["amount"],
        theirs.get("status", ""),
        "" if theirs.get("amount") is None else theirs["amount"],
        d.at_stake,
        ours.get("ref", ""),
        ours.get("order_id", ""),
        theirs.get("line", ""),
    ]
