"""Balanced postings in integer fen.

Accounts hold signed balances. Merchant accounts are positive when the platform owes the merchant;
`world:*` accounts are the outside world and go negative as money comes in. `supplier:<channel>`
holds prepayments minus costs (negative when the platform owes the supplier); `platform:cost` grows with
every successful attempt as `platform:revenue` grows with every captured price (docs/money.md).
Every transfer is a set of postings summing to zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class TransferKind(StrEnum):
    DEPOSIT = "deposit"
    """Operator credits a merchant's balance."""
    HOLD = "hold"
    """An order's price moves from available to held."""
    CAPTURE = "capture"
    """A succeeded order's price moves from held to revenue."""
    RELEASE = "release"
    """A failed/cancelled order's held price returns to where it came from."""
    BATCH_PAYMENT = "batch_payment"
    """One combined payment for every placed order of a batch."""
    COST = "cost"
    """A successful attempt's cost, owed to its supplier (one per attempt: a duplicate costs again)."""
    PREPAYMENT = "prepayment"
    """Money an operator sent to a supplier in advance."""


WORLD_DEPOSITS = "world:deposits"
WORLD_SANDBOX = "world:sandbox_gateway"
REVENUE = "platform:revenue"
SANDBOX_HELD = "platform:sandbox_held"
COST = "platform:cost"
WORLD_PREPAYMENTS = "world:prepayments"
SUPPLIER_PREFIX = "supplier:"


def available_account(merchant_id: str) -> str:
    return f"merchant:{merchant_id}:available"


def held_account(merchant_id: str) -> str:
    return f"merchant:{merchant_id}:held"


def supplier_account(channel_code: str) -> str:
    """What the platform has with a supplier: prepayments minus costs (negative: the platform owes it)."""
    return f"{SUPPLIER_PREFIX}{channel_code}"


# Accounts that may go below zero: the outside world, and suppliers (a supplier billed in arrears is owed).
MAY_GO_NEGATIVE = ("world:", SUPPLIER_PREFIX)


# Accounts that may never go below zero (checked with a conditional UPDATE at write time).
def must_stay_non_negative(account_id: str) -> bool:
    return not account_id.startswith(MAY_GO_NEGATIVE)


@dataclass(frozen=True)
class Posting:
    account: str
    amount: int


class UnbalancedTransfer(ValueError):
    """Postings of one transfer do not sum to zero."""


def transfer(debit_account: str, credit_account: str, amount: int) -> list[Posting]:
    """Move `amount` fen from one account to another: two postings summing to zero."""
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise ValueError(f"amount must be a positive integer of fen, got {amount!r}")
    return [Posting(debit_account, -amount), Posting(credit_account, amount)]


def check_balanced(postings: list[Posting]) -> None:
    if sum(p.amount for p in postings) != 0:
        raise UnbalancedTransfer(f"postings sum to {sum(p.amount for p in postings)}")


@dataclass(frozen=True)
class Funding:
    """Where an order's money sits while held, and where a refund goes."""

    held: str
    refund_to: str


def funding_for(merchant_id: str, source: str) -> Funding:
    """`balance`: the merchant's own balance; `sandbox`: money from the sandbox gateway."""
    if source == "sandbox":
        return Funding(held=SANDBOX_HELD, refund_to=WORLD_SANDBOX)
    return Funding(held=held_account(merchant_id), refund_to=available_account(merchant_id))
