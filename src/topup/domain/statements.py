"""Supplier statements: reconcile one against our attempts, describe what differs (SPEC section 8).

Pure: a statement is a list of rows, our side a mapping supplier_ref -> attempt; `reconcile` is one pass
over the rows and then over our attempts of the period that no row named. Reading and writing the files
is in `statement_files`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

STATUSES: tuple[str, ...] = ("success", "failed")


class DiscrepancyKind(StrEnum):
    """How a statement and our attempts differ for one supplier ref."""

    MISSING_HERE = "missing_here"
    """The supplier lists it; we have no such attempt on that channel."""
    MISSING_THERE = "missing_there"
    """Our attempt of the period is not in the statement."""
    STATUS_MISMATCH = "status_mismatch"
    """Both have it with different outcomes (takes precedence over the amount)."""
    AMOUNT_MISMATCH = "amount_mismatch"
    """Both say success; the supplier's amount is not the cost we posted."""
    DUPLICATE_ROW = "duplicate_row"
    """The statement lists the same supplier ref again (the later row; a supplier billing twice)."""


class StatementRow(NamedTuple):
    line: int
    supplier_ref: str
    status: str
    """success | failed"""
    amount: int | None
    """Fen; may be empty on a failed row."""

    def view(self) -> dict[str, Any]:
        return {"status": self.status, "amount": self.amount, "line": self.line}


class OurAttempt(NamedTuple):
    """An attempt as reconciliation sees it: its outcome and the cost we posted for it."""

    supplier_ref: str
    ref: str
    order_id: str
    status: str
    """The attempt's status: pending | succeeded | failed | abandoned."""
    cost: int
    """The cost posted for it (0 when none)."""
    in_period: bool
    """Dispatched in the statement's [from, to): it must appear in the statement."""
    dispatched_at: float
    outcome: str
    """The status in the statement's words: success | failed | pending (not final yet)."""

    @classmethod
    def of(
        cls,
        supplier_ref: str,
        ref: str,
        order_id: str,
        status: str,
        cost: int,
        in_period: bool,
        at: float = 0.0,
    ) -> OurAttempt:
        return cls(supplier_ref, ref, order_id, status, cost, in_period, at, statement_status(status))

    def view(self) -> dict[str, Any]:
        return {
            "status": self.outcome,
            "amount": self.cost,
            "ref": self.ref,
            "order_id": self.order_id,
            "attempt_status": self.status,
        }


OUTCOMES = {"succeeded": "success", "failed": "failed", "abandoned": "failed"}


def statement_status(attempt_status: str) -> str:
    """An attempt's status in a statement's words; `pending` while it is not final."""
    return OUTCOMES.get(attempt_status, "pending")


@dataclass(frozen=True)
class Discrepancy:
    supplier_ref: str
    kind: DiscrepancyKind
    ours: dict[str, Any] | None
    theirs: dict[str, Any] | None

    def public(self) -> dict[str, Any]:
        return {
            "supplier_ref": self.supplier_ref,
            "kind": str(self.kind),
            "ours": self.ours,
            "theirs": self.theirs,
        }

    @property
    def unrecorded_success(self) -> bool:
        """The supplier says success for an attempt we recorded as failed or abandoned: a `late_success`
        or `duplicate_fulfilment` for operators (SPEC section 8)."""
        return (
            self.kind is DiscrepancyKind.STATUS_MISMATCH
            and (self.theirs or {}).get("status") == "success"
            and (self.ours or {}).get("attempt_status") in ("failed", "abandoned")
        )

    @property
    def at_stake(self) -> int:
        """Fen that may be paid wrongly if nobody looks: what the supplier bills that we did not book,
        or what we booked that the supplier does not bill. 0: no money at stake."""
        theirs = (self.theirs or {}).get("amount") or 0
        ours = (self.ours or {}).get("amount") or 0
        their_status = (self.theirs or {}).get("status")
        our_status = (self.ours or {}).get("status")
        if self.kind is DiscrepancyKind.AMOUNT_MISMATCH:
            return abs(theirs - ours)
        if self.kind in (DiscrepancyKind.MISSING_HERE, DiscrepancyKind.DUPLICATE_ROW):
            return theirs if their_status == "success" else 0
        if self.kind is DiscrepancyKind.MISSING_THERE:
            return ours if our_status == "success" else 0
        if their_status == "success" and our_status == "failed":
            return theirs
        if their_status == "failed" and our_status == "success":
            return ours
        return 0


@dataclass(frozen=True)
class Reconciliation:
    rows: int
    matched: int
    """Rows whose supplier ref is one of our attempts on the channel (first occurrence)."""
    discrepancies: list[Discrepancy]

    @property
    def agreed(self) -> int:
        """Matched rows with no discrepancy."""
        differing = sum(
            1
            for d in self.discrepancies
            if d.kind in (DiscrepancyKind.STATUS_MISMATCH, DiscrepancyKind.AMOUNT_MISMATCH)
        )
        return self.matched - differing

    def counts(self) -> dict[str, int]:
        out = {str(k): 0 for k in DiscrepancyKind}
        for d in self.discrepancies:
            out[str(d.kind)] += 1
        return out


def reconcile(rows: Sequence[StatementRow], ours: Mapping[str, OurAttempt]) -> Reconciliation:
    """Match rows to our attempts by supplier ref whatever their time; then every attempt of the period
    that no row named is `missing_there` (in dispatch order)."""
    seen: set[str] = set()
    found: list[Discrepancy] = []
    matched = 0
    for row in rows:
        ref = row.supplier_ref
        attempt = ours.get(ref)
        if ref in seen:
            found.append(
                Discrepancy(
                    ref, DiscrepancyKind.DUPLICATE_ROW, attempt.view() if attempt else None, row.view()
                )
            )
            continue
        seen.add(ref)
        if attempt is None:
            found.append(Discrepancy(ref, DiscrepancyKind.MISSING_HERE, None, row.view()))
            continue
        matched += 1
        if attempt.outcome != row.status:
            found.append(Discrepancy(ref, DiscrepancyKind.STATUS_MISMATCH, attempt.view(), row.view()))
        elif row.status == "success" and (row.amount or 0) != attempt.cost:
            found.append(Discrepancy(ref, DiscrepancyKind.AMOUNT_MISMATCH, attempt.view(), row.view()))
    missing = [a for a in ours.values() if a.in_period and a.supplier_ref not in seen]
    missing.sort(key=lambda a: (a.dispatched_at, a.ref))
    found.extend(Discrepancy(a.supplier_ref, DiscrepancyKind.MISSING_THERE, a.view(), None) for a in missing)
    return Reconciliation(len(rows), matched, found)


def sample(
    attempts: Sequence[OurAttempt], *, with_discrepancies: bool = False, seed: int = 0
) -> list[tuple[str, str, int | None]]:
    """The statement a supplier that agrees with us would send for these attempts (final ones only, in
    dispatch order); `with_discrepancies` plants one of each kind where the attempts allow it: a row
    dropped (missing_there), an unknown ref billed (missing_here), a failed attempt billed as a
    success (status_mismatch and a late_success / duplicate_fulfilment), a success billed 10 fen more
    (amount_mismatch)."""
    final = sorted((a for a in attempts if a.outcome != "pending"), key=lambda a: (a.dispatched_at, a.ref))
    rows: list[tuple[str, str, int | None]] = [
        (a.supplier_ref, a.outcome, a.cost if a.outcome == "success" else None) for a in final
    ]
    if not with_discrepancies:
        return rows
    rng = random.Random(seed)
    successes = [i for i, r in enumerate(rows) if r[1] == "success"]
    failures = [i for i, r in enumerate(rows) if r[1] == "failed"]
    typical = rows[successes[0]][2] if successes else 100
    if len(successes) >= 2:
        i = successes.pop(rng.randrange(len(successes)))
        ref, status, amount = rows[i]
        rows[i] = (ref, status, (amount or 0) + 10)
    if failures:
        i = failures.pop(rng.randrange(len(failures)))
        rows[i] = (rows[i][0], "success", typical)
    dropped = successes or failures
    if dropped:
        del rows[dropped[rng.randrange(len(dropped))]]
    known = {a.supplier_ref for a in attempts}
    n = rng.randrange(10**6)
    while f"X{n:06d}UNKNOWN" in known:
        n += 1
    rows.append((f"X{n:06d}UNKNOWN", "success", typical))
    return rows
