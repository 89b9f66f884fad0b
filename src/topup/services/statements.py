"""Statement reconciliation (SPEC section 8): a supplier's statement against the attempts of its channel.

Built for big files: the rows are parsed in one pass, our side is fetched with two bulk statements
(the attempts the rows name, and the attempts of the period) with their posted costs, matched in
memory (`domain.statements.reconcile`), and the discrepancies are written with one `executemany`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import orjson

from topup.clock import rfc3339
from topup.domain import ledger as L
from topup.domain import statement_files as F
from topup.domain import statements as S
from topup.domain.errors import NotFound
from topup.domain.roles import Actor
from topup.services import audit
from topup.services import statement_views as views
from topup.services.catalog import ConfigCache
from topup.services.orders import add_event
from topup.services.ports.supplier_ops import NewException, NewStatement
from topup.services.uow import Transactions, UnitOfWork

STATEMENT_EXCEPTION = views.STATEMENT_EXCEPTION


async def our_attempts(
    uow: UnitOfWork, channel_code: str, refs: Sequence[str], start: float, end: float
) -> dict[str, S.OurAttempt]:
    """The channel's attempts dispatched in [start, end), plus those the statement names outside it:
    two bulk reads with the posted costs, as plain tuples."""
    cost = str(L.TransferKind.COST)
    rows = await uow.supplier_ops.attempts_in_period(channel_code, cost, start, end)
    seen = {r[0] for r in rows}
    elsewhere = [ref for ref in refs if ref not in seen]
    if elsewhere:
        rows += await uow.supplier_ops.attempts_by_supplier_ref(channel_code, cost, elsewhere)
    make, outcome = S.OurAttempt, S.OUTCOMES.get
    return {
        supplier_ref or ref: make(
            supplier_ref or ref,
            ref,
            order_id,
            status,
            int(amount or 0),
            start <= at < end,
            at,
            outcome(status, "pending"),
        )
        for supplier_ref, ref, order_id, status, at, amount in rows
    }


def digest_of(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


async def reconcile_statement(
    db: Transactions,
    cache: ConfigCache,
    channel_code: str,
    start: float,
    end: float,
    body: bytes,
    fmt: str = "csv",
    actor: Actor | None = None,
) -> tuple[dict[str, Any], bool]:
    """Reconcile a statement file; (statement view, created). The same file for the same channel and
    period is the same statement (created False). Raises InvalidRequest for a file that cannot be read
    (nothing stored), NotFound for an unknown channel. A new statement goes into the audit log as the
    `actor`'s, in the same transaction."""
    by = actor.name if actor is not None else None
    digest = digest_of(body)
    async with db.reads() as tx:
        existing = await _find(tx, channel_code, start, end, digest)
    if existing is not None:
        return await views.read(db, existing), False
    rows = F.parse(body, fmt)
    async with db.transaction() as tx:
        if channel_code not in (await cache.get(tx)).channels:
            raise NotFound(f"channel {channel_code} does not exist")
        ours = await our_attempts(tx, channel_code, [r.supplier_ref for r in rows], start, end)
        result = S.reconcile(rows, ours)
        statement_id, created_at = tx.supplier_ops.new_statement_id(), tx.now
        summary = _summary(result, rows, ours)
        inserted = await tx.supplier_ops.add_statement(
            NewStatement(
                statement_id,
                channel_code,
                start,
                end,
                digest,
                fmt,
                result.rows,
                result.matched,
                orjson.dumps(summary).decode(),
                by,
            )
        )
        if inserted:
            await tx.supplier_ops.add_discrepancies(
                [
                    (
                        statement_id,
                        i,
                        d.supplier_ref,
                        str(d.kind),
                        None if d.ours is None else orjson.dumps(d.ours).decode(),
                        None if d.theirs is None else orjson.dumps(d.theirs).decode(),
                        d.at_stake,
                    )
                    for i, d in enumerate(result.discrepancies)
                ],
            )
            await _raise_exceptions(tx, statement_id, channel_code, start, end, result)
            if actor is not None:
                after = {
                    "channel": channel_code,
                    "from": rfc3339(start),
                    "to": rfc3339(end),
                    "rows": result.rows,
                }
                after.update(matched=result.matched, counts=summary["counts"], at_stake=summary["at_stake"])
                await audit.record(tx, actor, "statement.reconcile", f"statement:{statement_id}", None, after)
    if not inserted:  # the same file, posted at the same moment: the other request stored it
        async with db.reads() as tx:
            statement_id = await _find(tx, channel_code, start, end, digest) or statement_id
        return await views.read(db, statement_id), False
    return views.view(
        statement_id, channel_code, start, end, digest, fmt, result, summary, by, created_at
    ), True


def _summary(
    result: S.Reconciliation, rows: Sequence[S.StatementRow], ours: dict[str, S.OurAttempt]
) -> dict[str, Any]:
    return {
        "agreed": result.agreed,
        "counts": result.counts(),
        "at_stake": sum(d.at_stake for d in result.discrepancies),
        "their_amount": sum(r.amount or 0 for r in rows if r.status == "success"),
        "our_cost": sum(a.cost for a in ours.values() if a.in_period),
        "attempts": sum(1 for a in ours.values() if a.in_period),
    }


async def _raise_exceptions(
    uow: UnitOfWork, statement_id: str, channel_code: str, start: float, end: float, result: S.Reconciliation
) -> None:
    """Money at stake becomes work for operators: a supplier success we recorded as failed is a
    `late_success` (the order failed, or is still being retried elsewhere) or a `duplicate_fulfilment`
    (the order succeeded through another attempt); anything else at stake, one
    `statement_discrepancies` exception for the statement."""
    raised: list[NewException] = []
    unrecorded = [d for d in result.discrepancies if d.unrecorded_success]
    if unrecorded:
        ids = {str((d.ours or {})["order_id"]) for d in unrecorded}
        orders = await uow.supplier_ops.order_statuses(ids)
        for d in unrecorded:
            ours, theirs = d.ours or {}, d.theirs or {}
            status = orders.get(ours["order_id"])
            detail = {
                "source": "statement",
                "statement_id": statement_id,
                "supplier_ref": d.supplier_ref,
                "order_status": status,
                "attempt_status": ours.get("attempt_status"),
                "amount": theirs.get("amount"),
            }
            kind = "duplicate_fulfilment" if status == "succeeded" else "late_success"
            raised.append(NewException(kind, str(ours["order_id"]), str(ours["ref"]), detail))
    others = [d for d in result.discrepancies if d.at_stake and not d.unrecorded_success]
    if others:
        counts: dict[str, int] = {}
        for d in others:
            counts[str(d.kind)] = counts.get(str(d.kind), 0) + 1
        detail = {
            "source": "statement",
            "statement_id": statement_id,
            "from": rfc3339(start),
            "to": rfc3339(end),
            "discrepancies": len(others),
            "counts": counts,
            "at_stake": sum(d.at_stake for d in others),
        }
        raised.append(NewException(STATEMENT_EXCEPTION, None, statement_id, detail))
    await record_exceptions(uow, channel_code, raised)


async def record_exceptions(uow: UnitOfWork, channel_code: str, items: Sequence[NewException]) -> None:
    """`fulfilment.record_exception` for many at once: one per (kind, ref), the new ones on their
    order's timeline; a big statement may raise thousands."""
    if not items:
        return
    for kind, order_id, ref, _ in await uow.supplier_ops.add_exceptions(channel_code, items):
        if order_id:
            await add_event(uow, order_id, None, "exception", {"kind": kind, "ref": ref})


async def _find(uow: UnitOfWork, channel_code: str, start: float, end: float, digest: str) -> str | None:
    return await uow.supplier_ops.find_statement(channel_code, start, end, digest)


async def sample(
    uow: UnitOfWork,
    channel_code: str,
    start: float,
    end: float,
    *,
    with_discrepancies: bool = False,
    seed: int = 0,
) -> str:
    """The statement the channel's supplier would send for [start, end) if it agreed with us (its final
    attempts, amounts = our posted costs), optionally with one discrepancy of each kind planted."""
    ours = await our_attempts(uow, channel_code, [], start, end)
    rows = S.sample(list(ours.values()), with_discrepancies=with_discrepancies, seed=seed)
    return F.render_csv(rows)
