"""Money owed to suppliers: the cost of every successful attempt, prepayments, supplier accounts."""

from __future__ import annotations

from typing import Any

from topup.domain import ledger as L
from topup.domain.costs import Cost, attempt_cost
from topup.domain.errors import IdempotencyConflict, NotFound
from topup.services import balances, ledger
from topup.services.catalog import Snapshot
from topup.services.orders import add_event
from topup.services.uow import UnitOfWork


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
    return attempt_cost(order.product_code, member_costs, products, attempt.cost)


async def post_attempt_cost(uow: UnitOfWork, snap: Snapshot, order: Any, attempt: Any) -> int | None:
    """Post a successful attempt's cost to its supplier, once per attempt (a duplicate fulfilment is
    another attempt, so it costs again). Returns the fen posted; None when the cost is unknown or 0."""
    cost = cost_of(snap, order, attempt)
    if cost is None or cost.amount <= 0:
        return None
    posted = await ledger.post(
        uow,
        L.TransferKind.COST,
        attempt.ref,
        L.transfer(L.supplier_account(attempt.channel_code), L.COST, cost.amount),
        merchant_id=order.merchant_id,
        order_id=order.id,
    )
    if posted:
        detail = {"channel": attempt.channel_code, "amount": cost.amount, "source": str(cost.source)}
        await add_event(uow, order.id, attempt.no, "cost_posted", detail)
    return cost.amount


# ---- prepayments and supplier accounts -------------------------------------------------------------


def _prepayment_ref(channel_code: str, reference: str) -> str:
    return f"{channel_code}:{reference}"


async def prepay(
    uow: UnitOfWork, snap: Snapshot, channel_code: str, amount: int, reference: str
) -> tuple[dict[str, Any], bool]:
    """Record money sent to a supplier in advance, idempotent by reference: the same reference with the
    same amount is the same prepayment (created False); with another amount, IdempotencyConflict."""
    if channel_code not in snap.channels:
        raise NotFound(f"channel {channel_code} does not exist")
    key = _prepayment_ref(channel_code, reference)
    created = await ledger.post(
        uow,
        L.TransferKind.PREPAYMENT,
        key,
        L.transfer(L.WORLD_PREPAYMENTS, L.supplier_account(channel_code), amount),
    )
    row = await uow.ledger.transfer_made(L.TransferKind.PREPAYMENT, key)
    assert row is not None
    if not created and row.amount != amount:
        raise IdempotencyConflict(
            f"prepayment reference {reference} was already used with amount {row.amount}"
        )
    account = await supplier_account(uow, channel_code)
    return {
        "channel": channel_code,
        "reference": reference,
        "amount": row.amount,
        "created_at": row.created_at,
        "account": account,
    }, created


async def prepayments(uow: UnitOfWork, channel_code: str, limit: int = 100) -> list[dict[str, Any]]:
    """The channel's prepayments, newest first."""
    prefix = _prepayment_ref(channel_code, "")
    return [
        {"reference": r.reference[len(prefix) :], "amount": r.amount, "created_at": r.created_at}
        for r in await uow.ledger.prepayments(prefix, limit)
    ]


async def supplier_account(uow: UnitOfWork, channel_code: str) -> dict[str, Any]:
    """The platform's account with one supplier (see `supplier_accounts`)."""
    return (await supplier_accounts(uow, [channel_code]))[0]


async def supplier_accounts(uow: UnitOfWork, channel_codes: list[str]) -> list[dict[str, Any]]:
    """Per channel: what was prepaid, what its successful attempts cost, the balance our books give
    (prepaid - cost; negative: owed to the supplier) and the balance the supplier last reported, with
    the difference (reported - ours, when the supplier reports in CNY)."""
    await ledger.apply_balances(uow)
    accounts = [L.supplier_account(code) for code in channel_codes]
    balance = await uow.ledger.supplier_balances()
    prepaid = await uow.ledger.prepaid_by_supplier()
    out = []
    for code, account in zip(channel_codes, accounts, strict=True):
        ours = balance.get(account, 0)
        paid = prepaid.get(account, 0)
        reported = await balances.last_balance(uow, code)
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
