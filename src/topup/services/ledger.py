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
    would go negative: at the latest when the transaction commits (balances change last).
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
    await tx.conn.execute(
        t.postings.insert(),
        [{"transfer_id": transfer_id, "account_id": p.account, "amount": p.amount} for p in postings],
    )
    # Balances change as the transaction's last statements (see `apply_balances`).
    deltas: dict[str, list[Any]] = tx.pending.setdefault("ledger", {})
    if not deltas:
        tx.before_commit(lambda: apply_balances(tx, commit=tx.is_postgres), last=True)
    for p in postings:
        owner = merchant_id if p.account.startswith("merchant:") else None
        deltas.setdefault(p.account, [0, owner])[0] += p.amount
    return True


async def apply_balances(tx: Tx, commit: bool = False) -> None:
    """Apply the transaction's pending balance changes, guarded so no balance goes below zero.

    Balance rows are the hottest rows there are (every order of a merchant moves its `held` account,
    every success moves `platform:revenue`). Changing them last, in one account order for every
    transaction, keeps their row locks for only these statements and the commit, and two transactions
    can never wait on each other in a cycle. Raises InsufficientBalance, and the transaction rolls back.

    With `commit` (PostgreSQL, as the transaction's last step) the changes and the COMMIT go to the
    server as one message, so a balance row is locked for no client round trip at all.
    """
    deltas: dict[str, list[Any]] = tx.pending.pop("ledger", None) or {}
    if commit and deltas:
        await _apply_and_commit_pg(tx, deltas)
        return
    for account in sorted(deltas):
        amount, owner = deltas[account]
        guarded = amount < 0 and L.must_stay_non_negative(account)
        stmt = update(t.ledger_accounts).where(t.ledger_accounts.c.id == account)
        if guarded:
            stmt = stmt.where(t.ledger_accounts.c.balance >= -amount)
        res = await tx.conn.execute(stmt.values(balance=t.ledger_accounts.c.balance + amount))
        if res.rowcount == 1:
            continue
        if guarded:
            raise InsufficientBalance("available balance is lower than the amount", {"required": -amount})
        await ensure_account(tx, account, owner)
        await tx.conn.execute(
            update(t.ledger_accounts)
            .where(t.ledger_accounts.c.id == account)
            .values(balance=t.ledger_accounts.c.balance + amount)
        )


_INSUFFICIENT = "topup_insufficient_balance"


def _literal(value: str | None) -> str:
    """A SQL string literal (standard_conforming_strings is on: only quotes need doubling)."""
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


async def _apply_and_commit_pg(tx: Tx, deltas: dict[str, list[Any]]) -> None:
    """`apply_balances` as one PL/pgSQL block followed by COMMIT, sent in a single simple query."""
    import asyncpg

    steps = []
    for account in sorted(deltas):
        amount, owner = int(deltas[account][0]), deltas[account][1]
        acc = _literal(account)
        if amount < 0 and L.must_stay_non_negative(account):
            steps.append(
                f"UPDATE ledger_accounts SET balance = balance + {amount}"
                f" WHERE id = {acc} AND balance >= {-amount};"
                f" IF NOT FOUND THEN RAISE EXCEPTION '{_INSUFFICIENT}:{-amount}'; END IF;"
            )
        else:
            steps.append(
                f"UPDATE ledger_accounts SET balance = balance + {amount} WHERE id = {acc};"
                " IF NOT FOUND THEN INSERT INTO ledger_accounts (id, merchant_id, balance)"
                f" VALUES ({acc}, {_literal(owner)}, {amount}) ON CONFLICT (id) DO UPDATE"
                " SET balance = ledger_accounts.balance + EXCLUDED.balance; END IF;"
            )
    sql = "DO $topup$ BEGIN " + " ".join(steps) + " END $topup$; COMMIT;"
    raw = (await tx.conn.get_raw_connection()).driver_connection
    assert raw is not None
    try:
        await raw.execute(sql)
    except asyncpg.RaiseError as e:
        message = str(e)
        if message.startswith(_INSUFFICIENT):
            required = int(message.rsplit(":", 1)[1])
            raise InsufficientBalance(
                "available balance is lower than the amount", {"required": required}
            ) from None
        raise
    # Committed: SQLAlchemy's own COMMIT that follows is a harmless no-op.


async def balance(tx: Tx, merchant_id: str) -> dict[str, Any]:
    await apply_balances(tx)
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
    await apply_balances(tx)
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
