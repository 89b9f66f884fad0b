"""Ledger use cases: post balanced transfers exactly once, read balances, prove the books balance."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import func, select, update

from topup.adapters.db import tables as t
from topup.adapters.db.engine import Tx, sql_literal
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
    head = (transfer_id, str(kind), reference, merchant_id, order_id, payment_id, amount, tx.now)
    if tx.is_postgres and postings:
        # The transfer and its postings in one statement: no postings when the transfer already exists.
        args = [x for p in postings for x in (p.account, p.amount)]
        if await tx.exec(_post_sql(len(postings)), *head, *args) == 0:
            return False
    else:
        if await tx.exec(_INSERT_TRANSFER, *head) == 0:
            return False
        await tx.executemany(_INSERT_POSTING, [(transfer_id, p.account, p.amount) for p in postings])
    # Balances change as the transaction's last statements (see `apply_balances`).
    deltas: dict[str, list[Any]] = tx.pending.setdefault("ledger", {})
    if not deltas:
        tx.before_commit(lambda: apply_balances(tx, commit=tx.is_postgres), last=True)
    for p in postings:
        owner = merchant_id if p.account.startswith("merchant:") else None
        deltas.setdefault(p.account, [0, owner])[0] += p.amount
    return True


_INSERT_TRANSFER = (
    "INSERT INTO transfers (id, kind, reference, merchant_id, order_id, payment_id, amount, created_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (kind, reference) DO NOTHING"
)
_INSERT_POSTING = "INSERT INTO postings (transfer_id, account_id, amount) VALUES ($1, $2, $3)"


@functools.lru_cache(maxsize=8)
def _post_sql(n: int) -> str:
    """PostgreSQL: insert a transfer and, only if it was new, its `n` postings ($9.. account, amount)."""
    values = ", ".join(f"(${9 + 2 * i}::text, ${10 + 2 * i}::bigint)" for i in range(n))
    return (
        f"WITH t AS ({_INSERT_TRANSFER} RETURNING id)"
        " INSERT INTO postings (transfer_id, account_id, amount)"
        f" SELECT t.id, p.account_id, p.amount FROM t, (VALUES {values}) AS p(account_id, amount)"
    )


async def apply_balances(tx: Tx, commit: bool = False) -> None:
    """Apply the transaction's pending balance changes, guarded so no balance goes below zero.

    Balance rows are the hottest rows there are (every order of a merchant moves its `held` account,
    every success moves `platform:revenue`). Changing them last, in one account order for every
    transaction, keeps their row locks for only these statements and the commit, and two transactions
    can never wait on each other in a cycle. Raises InsufficientBalance, and the transaction rolls back.

    With `commit` (PostgreSQL, as the transaction's last step) the changes go into the transaction's
    tail and reach the server with the COMMIT in one message, so a balance row is locked for no client
    round trip at all.
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


async def _apply_and_commit_pg(tx: Tx, deltas: dict[str, list[Any]]) -> None:
    """`apply_balances` as one PL/pgSQL block in the transaction's tail: the engine sends it with the
    COMMIT in a single simple-query message."""
    steps = []
    for account in sorted(deltas):
        amount, owner = int(deltas[account][0]), deltas[account][1]
        acc = sql_literal(account)
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
                f" VALUES ({acc}, {sql_literal(owner)}, {amount}) ON CONFLICT (id) DO UPDATE"
                " SET balance = ledger_accounts.balance + EXCLUDED.balance; END IF;"
            )
    tx.tail.append("DO $topup$ BEGIN " + " ".join(steps) + " END $topup$")
    tx.commit_errors.append(_insufficient)


def _insufficient(error: BaseException) -> BaseException | None:
    """The balance block's RAISE, as the InsufficientBalance the caller expects."""
    message = str(error)
    if not message.startswith(_INSUFFICIENT):
        return None
    required = int(message.rsplit(":", 1)[1])
    return InsufficientBalance("available balance is lower than the amount", {"required": required})


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
    """Postings sum to zero overall and per transfer; every cached balance equals its postings; no
    merchant or platform account is negative (world and supplier accounts may be)."""
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
                t.ledger_accounts.c.balance < 0,
                *[~t.ledger_accounts.c.id.like(f"{prefix}%") for prefix in L.MAY_GO_NEGATIVE],
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
