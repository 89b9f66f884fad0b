"""Ledger use cases: post balanced transfers exactly once, read balances, prove the books balance."""

from __future__ import annotations

from typing import Any

from topup.domain import ledger as L
from topup.services.uow import UnitOfWork


async def ensure_account(uow: UnitOfWork, account_id: str, merchant_id: str | None = None) -> None:
    await uow.ledger.ensure_account(account_id, merchant_id)


async def post(
    uow: UnitOfWork,
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
    amount = sum(p.amount for p in postings if p.amount > 0)
    if not await uow.ledger.add_transfer(
        kind, reference, postings, amount, merchant_id, order_id, payment_id
    ):
        return False
    uow.ledger.change_balances(
        [(p.account, p.amount, merchant_id if p.account.startswith("merchant:") else None) for p in postings]
    )
    return True


async def apply_balances(uow: UnitOfWork) -> None:
    """Apply the transaction's pending balance changes now (before reading balances in it)."""
    await uow.ledger.apply_balances()


async def balance(uow: UnitOfWork, merchant_id: str) -> dict[str, Any]:
    await uow.ledger.apply_balances()
    by_id = await uow.ledger.balances([L.available_account(merchant_id), L.held_account(merchant_id)])
    return {
        "available": by_id.get(L.available_account(merchant_id), 0),
        "held": by_id.get(L.held_account(merchant_id), 0),
        "currency": "CNY",
    }


async def check(uow: UnitOfWork) -> dict[str, Any]:
    """Postings sum to zero overall and per transfer; every cached balance equals its postings; no
    merchant or platform account is negative (world and supplier accounts may be)."""
    await uow.ledger.apply_balances()
    books = await uow.ledger.books_totals()
    balanced = (
        books.postings_sum == 0
        and books.unbalanced_transfers == 0
        and not books.mismatched
        and not books.negative_accounts
    )
    return {
        "balanced": balanced,
        "postings_sum": books.postings_sum,
        "transfers": books.transfers,
        "unbalanced_transfers": books.unbalanced_transfers,
        "mismatched_accounts": [
            {"account": m.account, "balance": m.balance, "postings": m.postings} for m in books.mismatched
        ],
        "negative_accounts": books.negative_accounts,
    }
