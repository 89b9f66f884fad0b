"""Ledger rules: balanced transfers in integer fen, funding sources, and a model of the posting service."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from topup.domain import ledger as L
from topup.domain.orders import ForbiddenTransition, OrderStatus, check_order_transition

# --- transfer / check_balanced / funding ------------------------------------------------------------


def test_transfer_is_two_postings_summing_to_zero() -> None:
    ps = L.transfer("a", "b", 4980)
    assert ps == [L.Posting("a", -4980), L.Posting("b", 4980)]
    L.check_balanced(ps)


@pytest.mark.parametrize("amount", [0, -1, 1.5, 10.0, True, False, "10", None])
def test_transfer_needs_a_positive_integer(amount: object) -> None:
    with pytest.raises(ValueError):
        L.transfer("a", "b", amount)  # type: ignore[arg-type]


def test_check_balanced() -> None:
    L.check_balanced([])
    L.check_balanced([L.Posting("a", -3), L.Posting("b", 1), L.Posting("c", 2)])
    with pytest.raises(L.UnbalancedTransfer):
        L.check_balanced([L.Posting("a", -3), L.Posting("b", 2)])
    with pytest.raises(L.UnbalancedTransfer):
        L.check_balanced([L.Posting("a", 1)])
    assert issubclass(L.UnbalancedTransfer, ValueError)


def test_account_names() -> None:
    assert L.available_account("m1") == "merchant:m1:available"
    assert L.held_account("m1") == "merchant:m1:held"


@pytest.mark.parametrize(
    ("account", "guarded"),
    [
        (L.WORLD_DEPOSITS, False),
        (L.WORLD_SANDBOX, False),
        (L.REVENUE, True),
        (L.SANDBOX_HELD, True),
        ("merchant:m1:available", True),
        ("merchant:m1:held", True),
        ("merchant:world:held", True),  # a merchant named "world" is still a merchant
    ],
)
def test_only_world_accounts_may_go_negative(account: str, guarded: bool) -> None:
    assert L.must_stay_non_negative(account) is guarded


def test_funding_for_balance_and_sandbox() -> None:
    assert L.funding_for("m1", "balance") == L.Funding(
        held="merchant:m1:held", refund_to="merchant:m1:available"
    )
    assert L.funding_for("m1", "sandbox") == L.Funding(held=L.SANDBOX_HELD, refund_to=L.WORLD_SANDBOX)


# --- a model of services/ledger.py ------------------------------------------------------------------


class Rejected(Exception):
    """The model's InsufficientBalance: the whole transaction rolls back."""


class Books:
    """In-memory twin of services.ledger.post: exactly once per (kind, reference), debits guarded."""

    def __init__(self) -> None:
        self.balances: dict[str, int] = defaultdict(int)
        self.transfers: dict[tuple[str, str], list[L.Posting]] = {}

    def post(self, kind: L.TransferKind, reference: str, postings: list[L.Posting]) -> bool:
        L.check_balanced(postings)
        if (kind, reference) in self.transfers:
            return False
        # Check every guarded debit before touching anything: the service's rollback has the same effect.
        for p in postings:
            if (
                p.amount < 0
                and L.must_stay_non_negative(p.account)
                and self.balances.get(p.account, 0) < -p.amount
            ):
                raise Rejected(p.account)
        for p in postings:
            self.balances[p.account] += p.amount
        self.transfers[(kind, reference)] = postings
        return True

    def posting_sums(self) -> dict[str, int]:
        sums: dict[str, int] = defaultdict(int)
        for ps in self.transfers.values():
            for p in ps:
                sums[p.account] += p.amount
        return sums


@dataclass
class ModelOrder:
    id: str
    merchant: str
    price: int
    funding: str
    status: OrderStatus
    batch: str | None = None


MERCHANTS = ["m1", "m2"]
PRICES = st.sampled_from([1, 980, 4980, 9960, 100_000])


class LedgerMachine(RuleBasedStateMachine):
    """Deposits, order holds, batch payments, captures, releases, replays and overdraft attempts."""

    orders = Bundle("orders")
    refs = Bundle("refs")

    def __init__(self) -> None:
        super().__init__()
        self.books = Books()
        self.orders_by_id: dict[str, ModelOrder] = {}
        self.deposit_amounts: dict[str, int] = {}
        self.n = 0

    def _new_id(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}_{self.n}"

    @rule(
        target=refs,
        merchant=st.sampled_from(MERCHANTS),
        amount=st.integers(1, 50_000),
        ref=st.text("ab", max_size=2),
    )
    def deposit(self, merchant: str, amount: int, ref: str) -> str:
        key = f"{merchant}:{ref}"
        posted = self.books.post(
            L.TransferKind.DEPOSIT, key, L.transfer(L.WORLD_DEPOSITS, L.available_account(merchant), amount)
        )
        if posted:
            self.deposit_amounts[key] = amount
        else:
            assert key in self.deposit_amounts  # the same reference credits once
        return key

    @rule(ref=refs)
    def replay_deposit(self, ref: str) -> None:
        before = dict(self.books.balances)
        amount = self.deposit_amounts[ref]
        merchant = ref.split(":", 1)[0]
        assert not self.books.post(
            L.TransferKind.DEPOSIT, ref, L.transfer(L.WORLD_DEPOSITS, L.available_account(merchant), amount)
        )
        assert dict(self.books.balances) == before

    @rule(target=orders, merchant=st.sampled_from(MERCHANTS), price=PRICES)
    def place_order(self, merchant: str, price: int) -> str:
        order_id = self._new_id("ord")
        try:
            self.books.post(
                L.TransferKind.HOLD,
                order_id,
                L.transfer(L.available_account(merchant), L.held_account(merchant), price),
            )
        except Rejected:
            return order_id  # insufficient_balance: no order was created
        self.orders_by_id[order_id] = ModelOrder(order_id, merchant, price, "balance", OrderStatus.PROCESSING)
        return order_id

    @rule(target=orders, merchant=st.sampled_from(MERCHANTS), prices=st.lists(PRICES, min_size=1, max_size=4))
    def place_batch(self, merchant: str, prices: list[int]) -> str:
        batch = self._new_id("bat")
        for price in prices:
            oid = self._new_id("ord")
            self.orders_by_id[oid] = ModelOrder(
                oid, merchant, price, "sandbox", OrderStatus.PENDING_PAYMENT, batch
            )
        return batch

    def _batch_orders(self, batch: str) -> list[ModelOrder]:
        return [
            o
            for o in self.orders_by_id.values()
            if o.batch == batch and o.status is OrderStatus.PENDING_PAYMENT
        ]

    @rule(batch=orders)
    def pay_batch(self, batch: str) -> None:
        pending = self._batch_orders(batch)
        if not pending:
            return
        total = sum(o.price for o in pending)
        assert self.books.post(
            L.TransferKind.BATCH_PAYMENT, batch, L.transfer(L.WORLD_SANDBOX, L.SANDBOX_HELD, total)
        )
        for o in pending:
            o.status = check_order_transition(o.status, OrderStatus.PROCESSING)

    @rule(batch=orders)
    def cancel_batch(self, batch: str) -> None:
        for o in self._batch_orders(batch):
            o.status = check_order_transition(o.status, OrderStatus.CANCELLED)

    def _finish(self, order_id: str, target: OrderStatus) -> None:
        o = self.orders_by_id.get(order_id)
        if o is None:
            return
        try:
            check_order_transition(o.status, target)
        except ForbiddenTransition:
            return
        funding = L.funding_for(o.merchant, o.funding)
        if target is OrderStatus.SUCCEEDED:
            kind, postings = L.TransferKind.CAPTURE, L.transfer(funding.held, L.REVENUE, o.price)
        else:
            kind, postings = L.TransferKind.RELEASE, L.transfer(funding.held, funding.refund_to, o.price)
        # A processing order's price is held, so the capture / release can never be refused.
        assert self.books.post(kind, o.id, postings)
        o.status = target

    @rule(order_id=orders)
    def capture(self, order_id: str) -> None:
        self._finish(order_id, OrderStatus.SUCCEEDED)

    @rule(order_id=orders)
    def release(self, order_id: str) -> None:
        self._finish(order_id, OrderStatus.FAILED)

    @rule(order_id=orders, kind=st.sampled_from([L.TransferKind.CAPTURE, L.TransferKind.RELEASE]))
    def racing_second_finish(self, order_id: str, kind: L.TransferKind) -> None:
        """A second worker posts a finishing transfer again: (kind, reference) makes it a no-op."""
        o = self.orders_by_id.get(order_id)
        if o is None or (kind, order_id) not in self.books.transfers:
            return
        before = dict(self.books.balances)
        funding = L.funding_for(o.merchant, o.funding)
        assert not self.books.post(kind, order_id, L.transfer(funding.held, L.REVENUE, o.price))
        assert dict(self.books.balances) == before

    @rule(
        account=st.sampled_from(
            [*(L.available_account(m) for m in MERCHANTS), *(L.held_account(m) for m in MERCHANTS), L.REVENUE]
        ),
        amount=st.integers(1, 200_000),
    )
    def overdraw_attempt(self, account: str, amount: int) -> None:
        """Moving money out of a guarded account succeeds only when it is there."""
        before = dict(self.books.balances)
        try:
            self.books.post(
                L.TransferKind.DEPOSIT, self._new_id("payout"), L.transfer(account, "world:payouts", amount)
            )
        except Rejected:
            assert before.get(account, 0) < amount
            assert dict(self.books.balances) == before
        else:
            assert before.get(account, 0) >= amount
            # Put it back so the order invariants below keep describing held money.
            self.books.post(
                L.TransferKind.DEPOSIT, self._new_id("refund"), L.transfer("world:payouts", account, amount)
            )

    @invariant()
    def sums_to_zero(self) -> None:
        assert sum(self.books.balances.values()) == 0
        for ps in self.books.transfers.values():
            assert sum(p.amount for p in ps) == 0

    @invariant()
    def nothing_guarded_is_negative(self) -> None:
        for account, bal in self.books.balances.items():
            if L.must_stay_non_negative(account):
                assert bal >= 0, (account, bal)

    @invariant()
    def balances_equal_postings(self) -> None:
        sums = self.books.posting_sums()
        for account in set(sums) | set(self.books.balances):
            assert sums.get(account, 0) == self.books.balances.get(account, 0)

    @invariant()
    def held_money_matches_open_orders(self) -> None:
        open_orders = [o for o in self.orders_by_id.values() if o.status is OrderStatus.PROCESSING]
        for m in MERCHANTS:
            expected = sum(o.price for o in open_orders if o.merchant == m and o.funding == "balance")
            assert self.books.balances.get(L.held_account(m), 0) == expected
        sandbox = sum(o.price for o in open_orders if o.funding == "sandbox")
        assert self.books.balances.get(L.SANDBOX_HELD, 0) == sandbox
        revenue = sum(o.price for o in self.orders_by_id.values() if o.status is OrderStatus.SUCCEEDED)
        assert self.books.balances.get(L.REVENUE, 0) == revenue

    @invariant()
    def merchants_keep_what_they_did_not_spend(self) -> None:
        for m in MERCHANTS:
            deposited = sum(a for k, a in self.deposit_amounts.items() if k.split(":", 1)[0] == m)
            spent = sum(
                o.price
                for o in self.orders_by_id.values()
                if o.merchant == m and o.funding == "balance" and o.status is OrderStatus.SUCCEEDED
            )
            owned = self.books.balances.get(L.available_account(m), 0) + self.books.balances.get(
                L.held_account(m), 0
            )
            assert owned == deposited - spent


LedgerMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestLedgerModel = LedgerMachine.TestCase
