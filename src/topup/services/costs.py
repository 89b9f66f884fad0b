"""Money owed to suppliers: the cost of every successful attempt, prepayments, supplier accounts."""

from __future__ import annotations

from typing import Any

from topup.adapters.db.engine import Tx
from topup.domain import ledger as L
from topup.domain.costs import Cost, attempt_cost
from topup.domain.errors import IdempotencyConflict, NotFound
from topup.services import balances, ledger
from topup.services.catalog import Snapshot
from topup.services.orders import add_event


def cost_of(snap: Snapshot, order: Any, attempt: Any) -> Cost | None:
    """The member's `costs` for the product (the attempt's group, else the order's), else the channel's
    `products[code].price`, else what the supplier reported (`attempts.cost`)."""
    member_costs = None
    group = snap.groups.get(attempt.group_code or order.group_code or "")
    for m in group.members if group is not None else ():
        if m.channel == attempt.channel_code:
            member_costs = m.costs
            break
    channel = snap.channels.get(attempt.channel_code)
    products = channel.products if channel else None
    return attempt_cost(order.product_code, member_costs, products, attempt.get("cost"))


async def post_attempt_cost(tx: Tx, snap: Snapshot, order: Any, attempt: Any) -> int | None:
    """Post a successful attempt's cost to its supplier, once per attempt (a duplicate fulfilment is
    another attempt, so it costs again). Returns the fen posted; None when the cost is unknown or 0."""
    cost = cost_of(snap, order, attempt)
    if cost is None or cost.amount <= 0:
        return None
    posted = await ledger.post(
        tx,
        L.TransferKind.COST,
        attempt.ref,
        L.transfer(L.supplier_account(attempt.channel_code), L.COST, cost.amount),
        merchant_id=order.merchant_id,
        order_id=order.id,
    )
    if posted:
        detail = {"channel": attempt.channel_code, "amount": cost.amount, "source": str(cost.source)}
        await add_event(tx, order.id, attempt.no, "cost_posted", detail)
    return cost.amount


# ---- prepayments and supplier accounts -------------------------------------------------------------


def _prepayment_ref(channel_code: str, reference: str) -> str:
    return f"{channel_code}:{reference}"


async def prepay(
    tx: Tx, snap: Snapshot, channel_code: str, amount: int, reference: str
) -> tuple[dict[str, Any], bool]:
    """Record money sent to a supplier in advance, idempotent by reference: the same reference with the
    same amount is the same prepayment (created False); with another amount, IdempotencyConflict."""
    if channel_code not in snap.channels:
        raise NotFound(f"channel {channel_code} does not exist")
    key = _prepayment_ref(channel_code, reference)
    created = await ledger.post(
        tx,
        L.TransferKind.PREPAYMENT,
        key,
        L.transfer(L.WORLD_PREPAYMENTS, L.supplier_account(channel_code), amount),
    )
    row = await tx.fetchrow(
        "SELECT amount, created_at FROM transfers WHERE kind = $1 AND reference = $2",
        str(L.TransferKind.PREPAYMENT),
        key,
    )
    assert row is not None
    if not created and int(row.amount) != amount:
        raise IdempotencyConflict(
            f"prepayment reference {reference} was already used with amount {int(row.amount)}"
        )
    account = await supplier_account(tx, channel_code)
    return {
        "channel": channel_code,
        "reference": reference,
        "amount": int(row.amount),
        "created_at": float(row.created_at),
        "account": account,
    }, created


async def prepayments(tx: Tx, channel_code: str, limit: int = 100) -> list[dict[str, Any]]:
    """The channel's prepayments, newest first."""
    prefix = _prepayment_ref(channel_code, "")
    rows = await tx.fetch(
        "SELECT reference, amount, created_at FROM transfers"
        " WHERE kind = $1 AND substr(reference, 1, $2) = $3 ORDER BY created_at DESC LIMIT $4",
        str(L.TransferKind.PREPAYMENT),
        len(prefix),
        prefix,
        limit,
    )
    return [
        {"reference": r.reference[len(prefix) :], "amount": int(r.amount), "created_at": float(r.created_at)}
        for r in rows
    ]


async def supplier_account(tx: Tx, channel_code: str) -> dict[str, Any]:
    """The platform's account with one supplier (see `supplier_accounts`)."""
    return (await supplier_accounts(tx, [channel_code]))[0]


async def supplier_accounts(tx: Tx, channel_codes: list[str]) -> list[dict[str, Any]]:
    """Per channel: what was prepaid, what its successful attempts cost, the balance our books give
    (prepaid - cost; negative: owed to the supplier) and the balance the supplier last reported, with
    the difference (reported - ours, when the supplier reports in CNY)."""
    await ledger.apply_balances(tx)
    accounts = [L.supplier_account(code) for code in channel_codes]
    balance = {
        r.id: int(r.balance)
        for r in await tx.fetch("SELECT id, balance FROM ledger_accounts WHERE id LIKE 'supplier:%'")
    }
    prepaid = {
        r.account_id: int(r.amount)
        for r in await tx.fetch(
            "SELECT p.account_id, SUM(p.amount) AS amount FROM transfers t"
            " JOIN postings p ON p.transfer_id = t.id"
            " WHERE t.kind = $1 AND p.account_id LIKE 'supplier:%' GROUP BY p.account_id",
            str(L.TransferKind.PREPAYMENT),
        )
    }
    out = []
    for code, account in zip(channel_codes, accounts, strict=True):
        ours = balance.get(account, 0)
        paid = prepaid.get(account, 0)
        reported = await balances.last_balance(tx, code)
        difference = None
        if reported is not None and reported.get("currency") == "CNY" and reported.get("amount") is not None:
            difference = int(reported["amount"]) - ours
        out.append(
            {
                "channel": code,
                "account": account,
                "prepaid": paid,
                "cost": paid - ours,
                "balance": ours,
                "owed": max(0, -ours),
                "reported": reported,
                "difference": difference,
            }
        )
    return out
