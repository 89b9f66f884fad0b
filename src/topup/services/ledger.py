"""Ledger use cases: post balanced transfers exactly once, read balances, prove the books balance."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update

from topup.adapters.db import tables as t
from topup.adapters.db.engine import Tx
from topup.adapters.db.helpers import insert_ignore, new_id
from topup.domain import ledger as L
from topup.domain.errors import InsufficientBalance


async def ensure_account(tx: Tx, account_id: str, merchant_id: str | None = None) -> None:
    await insert_ignore(
        tx, t.ledger_accounts, {"id": account_id, "merchant_id": merchant_id, "balance": 0}, ["id"]
    )


async def post(
    tx: Tx,
    kind: L.TransferKind,
    reference: str,
    postings: list[L.Posting],
    *,
    merchant_id: str | None = None,
    order_id: str | None = None,
    payment_id: str | None = None,
) -> bool:
    """Apply one balanced transfer once per (kind, reference). False if it was already posted.

    Raises InsufficientBalance (and the caller's transaction rolls back) when a non-world account
    would go negative.
    """
    L.check_balanced(postings)
    transfer_id = new_id("trf", tx.now)
    amount = sum(p.amount for p in postings if p.amount > 0)
    inserted = await insert_ignore(
        tx,
        t.transfers,
        {
            "id": transfer_id,
            "kind": str(kind),
            "reference": reference,
            "merchant_id": merchant_id,
            "order_id": order_id,
            "payment_id": payment_id,
            "amount": amount,
            "created_at": tx.now,
        },
        ["kind", "reference"],
    )
    if not inserted:
        return False
    # Debits first, each guarded so a balance can never go below zero, even under concurrency.
    for p in sorted(postings, key=lambda p: p.amount):
        stmt = update(t.ledger_accounts).where(t.ledger_accounts.c.id == p.account)
        if p.amount < 0 and L.must_stay_non_negative(p.account):
            stmt = stmt.where(t.ledger_accounts.c.balance >= -p.amount)
        res = await tx.conn.execute(stmt.values(balance=t.ledger_accounts.c.balance + p.amount))
        if res.rowcount != 1:
            if p.amount < 0 and L.must_stay_non_negative(p.account):
                raise InsufficientBalance(
                    "available balance is lower than the amount", {"required": -p.amount}
                )
            await ensure_account(tx, p.account, merchant_id if p.account.startswith("merchant:") else None)
            await tx.conn.execute(
                update(t.ledger_accounts)
                .where(t.ledger_accounts.c.id == p.account)
                .values(balance=t.ledger_accounts.c.balance + p.amount)
            )
    await tx.conn.execute(
        t.postings.insert(),
        [{"transfer_id": transfer_id, "account_id": p.account, "amount": p.amount} for p in postings],
    )
    return True


async def balance(tx: Tx, merchant_id: str) -> dict[str, Any]:
    rows = (
        await tx.conn.execute(
            select(t.ledger_accounts.c.id, t.ledger_accounts.c.balance).where(
                t.ledger_accounts.c.id.in_([L.available_account(merchant_id), L.held_account(merchant_id)])
            )
        )
    ).all()
    by_id = {r.id: int(r.balance) for r in rows}
    return {
        "available": by_id.get(L.available_account(merchant_id), 0),
        "held": by_id.get(L.held_account(merchant_id), 0),
        "currency": "CNY",
    }


async def check(tx: Tx) -> dict[str, Any]:
    """Postings sum to zero overall and per transfer; every cached balance equals its postings."""
    total = (await tx.conn.execute(select(func.coalesce(func.sum(t.postings.c.amount), 0)))).scalar_one()
    unbalanced = (
        await tx.conn.execute(
            select(func.count()).select_from(
                select(t.postings.c.transfer_id)
                .group_by(t.postings.c.transfer_id)
                .having(func.sum(t.postings.c.amount) != 0)
                .subquery()
            )
        )
    ).scalar_one()
    sums = (
        select(t.postings.c.account_id, func.sum(t.postings.c.amount).label("s"))
        .group_by(t.postings.c.account_id)
        .subquery()
    )
    mismatched = (
        await tx.conn.execute(
            select(t.ledger_accounts.c.id, t.ledger_accounts.c.balance, sums.c.s)
            .select_from(t.ledger_accounts.outerjoin(sums, sums.c.account_id == t.ledger_accounts.c.id))
            .where(t.ledger_accounts.c.balance != func.coalesce(sums.c.s, 0))
        )
    ).all()
    negative = (
        await tx.conn.execute(
            select(t.ledger_accounts.c.id).where(
                t.ledger_accounts.c.balance < 0, ~t.ledger_accounts.c.id.like("world:%")
            )
        )
    ).all()
    transfers = (await tx.conn.execute(select(func.count()).select_from(t.transfers))).scalar_one()
    balanced = total == 0 and unbalanced == 0 and not mismatched and not negative
    return {
        "balanced": balanced,
        "postings_sum": int(total),
        "transfers": int(transfers),
        "unbalanced_transfers": int(unbalanced),
        "mismatched_accounts": [
            {"account": r.id, "balance": int(r.balance), "postings": int(r.s or 0)} for r in mismatched
        ],
        "negative_accounts": [r.id for r in negative],
    }
