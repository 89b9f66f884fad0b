"""Batches: row parsing, the per-row order id, the body fingerprint, status rules and results.csv."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from topup.domain.orders import OrderStatus

MAX_ROWS = 10_000


class BatchStatus(StrEnum):
    PLACING = "placing"
    """Rows are being validated and placed (inside the creating transaction; never seen committed)."""
    AWAITING_PAYMENT = "awaiting_payment"
    """Placed; waits for the combined payment (a sandbox payment may be pending)."""
    PROCESSING = "processing"
    """Paid; orders are being fulfilled."""
    COMPLETED = "completed"
    """Every order is final (or no row was valid)."""
    CANCELLED = "cancelled"
    """Cancelled by the merchant, or its payment was declined or expired."""


class RowStatus(StrEnum):
    PLACED = "placed"
    """The row became an order."""
    INVALID = "invalid"
    """The row failed validation and was not placed."""


NON_FINAL = (str(OrderStatus.PENDING_PAYMENT), str(OrderStatus.PROCESSING))
COUNT_KEYS = [str(s) for s in OrderStatus]


def row_order_id(batch_id: str, row: int) -> str:
    """The merchant_order_id of a batch row: `<batch_id>-<row>` (at most 33 characters, always unique)."""
    return f"{batch_id}-{row}"


@dataclass(frozen=True)
class RawRow:
    row: int
    product_code: str
    account: str
    problem: str | None = None


def parse_row(n: int, raw: Any) -> RawRow:
    """Shape check of one row; a malformed row is reported on its own, not the whole batch."""
    if not isinstance(raw, Mapping):
        return RawRow(n, "", "", "row must be an object with product_code and account")
    pc, acct = raw.get("product_code"), raw.get("account")
    shown_pc = pc if isinstance(pc, str) else ("" if pc is None else str(pc))
    shown_acct = acct if isinstance(acct, str) else ("" if acct is None else str(acct))
    if not isinstance(pc, str) or not 1 <= len(pc) <= 64:
        return RawRow(n, shown_pc[:64], shown_acct[:254], "product_code: required, 1-64 characters")
    if not isinstance(acct, str) or not 1 <= len(acct) <= 254:
        return RawRow(n, pc, shown_acct[:254], "account: required, 1-254 characters")
    return RawRow(n, pc, acct)


def fingerprint(merchant_batch_id: str, rows: Iterable[Any], notify_url: str | None) -> str:
    """Same merchant_batch_id, rows and notify_url -> same fingerprint."""
    canonical = {"merchant_batch_id": merchant_batch_id, "rows": list(rows), "notify_url": notify_url}
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()


def empty_counts() -> dict[str, int]:
    return dict.fromkeys(COUNT_KEYS, 0)


RESULT_COLUMNS = [
    "row",
    "product_code",
    "account",
    "order_id",
    "status",
    "price",
    "error_code",
    "error_message",
]


def _cell(value: Any) -> str:
    """Spreadsheets run cells starting with = + - @ as formulas; quote them so they stay text."""
    s = "" if value is None else str(value)
    if s and s[0] in "=+-@\t\r":
        return "'" + s
    return s


def results_csv(rows: list[Mapping[str, Any]], orders: Mapping[str, Mapping[str, Any]]) -> str:
    """Header, then one line per row: its order's status (and failure reason) or its validation error."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(RESULT_COLUMNS)
    for r in rows:
        order = orders.get(r.get("order_id") or "")
        err = r.get("error") or {}
        if order is not None:
            status = order["status"]
            price = order["price"]
            code = "order_failed" if order.get("failure_reason") else ""
            message = order.get("failure_reason") or ""
        else:
            status, price = RowStatus.INVALID, ""
            code, message = err.get("code", ""), err.get("message", "")
        w.writerow(
            [
                r["row"],
                _cell(r.get("product_code")),
                _cell(r.get("account")),
                r.get("order_id") or "",
                status,
                price,
                code,
                _cell(message),
            ]
        )
    return out.getvalue()
