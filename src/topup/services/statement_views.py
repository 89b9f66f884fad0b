"""Reading reconciled statements back: as POST answered, their discrepancies (CSV too), the exceptions
they raised, lists of them."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from topup.clock import rfc3339
from topup.domain import statement_files as F
from topup.domain import statements as S
from topup.domain.errors import NotFound
from topup.services.ports.supplier_ops import StatementRow
from topup.services.uow import Transactions, UnitOfWork

# The statement-level exception when money is at stake beyond the late successes / duplicates.
STATEMENT_EXCEPTION = "statement_discrepancies"


def json_value(value: Any) -> Any:
    """A JSON column as read by a raw statement (text on both databases)."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def view(
    statement_id: str,
    channel_code: str,
    start: float,
    end: float,
    digest: str,
    fmt: str,
    result: S.Reconciliation,
    summary: dict[str, Any],
    by: str | None,
    created_at: float,
) -> dict[str, Any]:
    return {
        "statement_id": statement_id,
        "channel": channel_code,
        "from": rfc3339(start),
        "to": rfc3339(end),
        "rows": result.rows,
        "matched": result.matched,
        "discrepancies": [{**d.public(), "at_stake": d.at_stake} for d in result.discrepancies],
        **summary,
        "format": fmt,
        "digest": digest,
        "created_by": by,
        "created_at": rfc3339(created_at),
    }


async def read_header(uow: UnitOfWork, statement_id: str) -> StatementRow:
    row = await uow.supplier_ops.statement(statement_id)
    if row is None:
        raise NotFound(f"statement {statement_id} not found")
    return row


async def discrepancies(
    uow: UnitOfWork, statement_id: str, kind: str | None = None, limit: int | None = None
) -> list[S.Discrepancy]:
    """A statement's discrepancies in their order (optionally one kind, the first `limit`)."""
    kinds = {str(k): k for k in S.DiscrepancyKind}
    return [
        S.Discrepancy(ref, kinds[kind], json_value(ours), json_value(theirs))
        for ref, kind, ours, theirs in await uow.supplier_ops.discrepancies(statement_id, kind, limit)
    ]


async def exceptions_of(
    uow: UnitOfWork, statement_id: str, found: Sequence[S.Discrepancy]
) -> dict[str, dict[str, Any]]:
    """The operator exceptions behind a statement: by attempt ref (late successes, duplicate
    fulfilments) and under the statement's id (everything else at stake)."""
    refs = {str(d.ours["ref"]) for d in found if d.unrecorded_success and d.ours}
    refs.add(statement_id)
    rows = await uow.supplier_ops.exceptions_by_ref(
        refs, ["late_success", "duplicate_fulfilment", STATEMENT_EXCEPTION]
    )
    return {
        r.ref: {
            "id": r.id,
            "kind": r.kind,
            "resolved_at": r.resolved_at,
            "resolved_by": r.resolved_by,
            "resolution_note": r.resolution_note,
        }
        for r in rows
    }


async def read(db: Transactions, statement_id: str) -> dict[str, Any]:
    """A stored statement as POST answered it."""
    async with db.reads() as tx:
        head = await read_header(tx, statement_id)
        found = await discrepancies(tx, statement_id)
    result = S.Reconciliation(int(head.rows), int(head.matched), found)
    return view(
        head.id,
        head.channel_code,
        float(head.period_from),
        float(head.period_to),
        head.digest,
        head.format,
        result,
        dict(json_value(head.summary)),
        head.created_by,
        float(head.created_at),
    )


def discrepancies_csv(found: Sequence[S.Discrepancy]) -> Iterator[str]:
    """The discrepancies as CSV lines (header first)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(F.DISCREPANCY_COLUMNS)
    for i, d in enumerate(found):
        w.writerow(F.discrepancy_csv_row(d))
        if i % 1000 == 999:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def _listed(r: StatementRow) -> dict[str, Any]:
    summary = dict(json_value(r.summary))
    return {
        "statement_id": r.id,
        "channel": r.channel_code,
        "from": rfc3339(float(r.period_from)),
        "to": rfc3339(float(r.period_to)),
        "rows": int(r.rows),
        "matched": int(r.matched),
        "discrepancy_count": sum(summary.get("counts", {}).values()),
        **summary,
        "format": r.format,
        "digest": r.digest,
        "created_by": r.created_by,
        "created_at": rfc3339(float(r.created_at)),
    }


async def list_statements(
    uow: UnitOfWork, channel_code: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """Statements newest first (without their discrepancies)."""
    return [_listed(r) for r in await uow.supplier_ops.statements(channel_code, limit)]


async def summary(uow: UnitOfWork, statement_id: str) -> dict[str, Any]:
    """One statement without its discrepancies."""
    return _listed(await read_header(uow, statement_id))
