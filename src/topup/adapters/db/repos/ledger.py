"""Every statement the ledger services run (implements `services.ports.ledger`)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update

from topup.adapters.db import tables as t
from topup.adapters.db.helpers import insert_ignore, new_id
from topup.domain import ledger as L
from topup.domain.costs import MarginBy
from topup.domain.errors import InsufficientBalance
from topup.services.ports.ledger import (
    BooksTotals,
    CostLine,
    Mismatch,
    Prepayment,
    RevenueLine,
    TransferMade,
)

if TYPE_CHECKING:
    from topup.adapters.db.engine import Tx


class SqlLedger:
    __slots__ = ("tx", "_deltas")

    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        # The transaction's pending balance changes: account -> [delta, owner merchant].
        self._deltas: dict[str, list[Any]] = {}

    async def ensure_account(self, account_id: str, merchant_id: str | None = None) -> None:
        await insert_ignore(
            self.tx, t.ledger_accounts, {"id": account_id, "merchant_id": merchant_id, "balance": 0}, ["id"]
        )

    async def add_transfer(
        self,
        kind: L.TransferKind,
        reference: str,
        postings: list[L.Posting],
        amount: int,
        merchant_id: str | None,
        order_id: str | None,
        payment_id: str | None,
    ) -> bool:
        tx = self.tx
        transfer_id = new_id("trf", tx.now)
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
        return True

    def change_balances(self, changes: list[tuple[str, int, str | None]]) -> None:
        # Balances change as the transaction's last statements (see `apply_balances`).
        deltas = self._deltas
        if not deltas:
            self.tx.before_commit(lambda: self._apply(commit=self.tx.is_postgres), last=True)
        for account, amount, owner in changes:
            deltas.setdefault(account, [0, owner])[0] += amount

    async def apply_balances(self) -> None:
        await self._apply()

    async def _apply(self, commit: bool = False) -> None:
        """Apply the transaction's pending balance changes, guarded so no balance goes below zero.

        Balance rows are the hottest rows there are (every order of a merchant moves its `held` account,
        every success moves `platform:revenue`). Changing them last, in one account order for every
        transaction, keeps their row locks for only these statements and the commit, and two transactions
        can never wait on each other in a cycle. Raises InsufficientBalance, and the transaction rolls back.

        With `commit` (PostgreSQL, as the transaction's last step) the changes go into the transaction's
        tail and reach the server with the COMMIT in one message, so a balance row is locked for no client
        round trip at all.
        """
        tx = self.tx
        deltas, self._deltas = self._deltas, {}
        if commit and deltas:
            _apply_and_commit_pg(tx, deltas)
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
            await self.ensure_account(account, owner)
            await tx.conn.execute(
                update(t.ledger_accounts)
                .where(t.ledger_accounts.c.id == account)
                .values(balance=t.ledger_accounts.c.balance + amount)
            )

    async def balances(self, account_ids: list[str]) -> dict[str, int]:
        rows = (
            await self.tx.conn.execute(
                select(t.ledger_accounts.c.id, t.ledger_accounts.c.balance).where(
                    t.ledger_accounts.c.id.in_(account_ids)
                )
            )
        ).all()
        return {r.id: int(r.balance) for r in rows}

    async def supplier_balances(self) -> dict[str, int]:
        return {
            r.id: int(r.balance)
            for r in await self.tx.fetch("SELECT id, balance FROM ledger_accounts WHERE id LIKE 'supplier:%'")
        }

    async def prepaid_by_supplier(self) -> dict[str, int]:
        return {
            r.account_id: int(r.amount)
            for r in await self.tx.fetch(
                "SELECT p.account_id, SUM(p.amount) AS amount FROM transfers t"
                " JOIN postings p ON p.transfer_id = t.id"
                " WHERE t.kind = $1 AND p.account_id LIKE 'supplier:%' GROUP BY p.account_id",
                str(L.TransferKind.PREPAYMENT),
            )
        }

    async def transfer_amount(self, kind: L.TransferKind, reference: str) -> int:
        row = (
            await self.tx.conn.execute(
                select(t.transfers.c.amount).where(
                    t.transfers.c.kind == str(kind),
                    t.transfers.c.reference == reference,
                )
            )
        ).one()
        return int(row.amount)

    async def transfer_made(self, kind: L.TransferKind, reference: str) -> TransferMade | None:
        row = await self.tx.fetchrow(
            "SELECT amount, created_at FROM transfers WHERE kind = $1 AND reference = $2",
            str(kind),
            reference,
        )
        return None if row is None else TransferMade(int(row.amount), float(row.created_at))

    async def prepayments(self, prefix: str, limit: int) -> list[Prepayment]:
        rows = await self.tx.fetch(
            "SELECT reference, amount, created_at FROM transfers"
            " WHERE kind = $1 AND substr(reference, 1, $2) = $3 ORDER BY created_at DESC LIMIT $4",
            str(L.TransferKind.PREPAYMENT),
            len(prefix),
            prefix,
            limit,
        )
        return [Prepayment(r.reference, int(r.amount), float(r.created_at)) for r in rows]

    async def books_totals(self) -> BooksTotals:
        conn = self.tx.conn
        total = (await conn.execute(select(func.coalesce(func.sum(t.postings.c.amount), 0)))).scalar_one()
        unbalanced = (
            await conn.execute(
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
            await conn.execute(
                select(t.ledger_accounts.c.id, t.ledger_accounts.c.balance, sums.c.s)
                .select_from(t.ledger_accounts.outerjoin(sums, sums.c.account_id == t.ledger_accounts.c.id))
                .where(t.ledger_accounts.c.balance != func.coalesce(sums.c.s, 0))
            )
        ).all()
        negative = (
            await conn.execute(
                select(t.ledger_accounts.c.id).where(
                    t.ledger_accounts.c.balance < 0,
                    *[~t.ledger_accounts.c.id.like(f"{prefix}%") for prefix in L.MAY_GO_NEGATIVE],
                )
            )
        ).all()
        transfers = (await conn.execute(select(func.count()).select_from(t.transfers))).scalar_one()
        return BooksTotals(
            postings_sum=int(total),
            unbalanced_transfers=int(unbalanced),
            mismatched=[Mismatch(r.id, int(r.balance), int(r.s or 0)) for r in mismatched],
            negative_accounts=[r.id for r in negative],
            transfers=int(transfers),
        )

    async def margin_lines(
        self, start: float, end: float, by: MarginBy
    ) -> tuple[list[RevenueLine], list[CostLine]]:
        key = _MARGIN_KEY[by]
        revenue = await self.tx.fetch(
            f"SELECT {key} AS key, COUNT(*) AS orders, SUM(o.price) AS revenue,"
            " SUM(CASE WHEN c.id IS NULL THEN 1 ELSE 0 END) AS uncosted"
            " FROM orders o LEFT JOIN attempts a ON a.ref = o.succeeded_ref"
            " LEFT JOIN transfers c ON c.kind = $3 AND c.reference = o.succeeded_ref"
            " WHERE o.status = $4 AND o.completed_at >= $1 AND o.completed_at < $2"
            f" GROUP BY {key}",
            start,
            end,
            str(L.TransferKind.COST),
            "succeeded",
        )
        costs = await self.tx.fetch(
            f"SELECT {key} AS key, SUM(c.amount) AS cost, COUNT(*) AS fulfilments"
            " FROM transfers c JOIN attempts a ON a.ref = c.reference JOIN orders o ON o.id = a.order_id"
            " WHERE c.kind = $3 AND c.created_at >= $1 AND c.created_at < $2"
            f" GROUP BY {key}",
            start,
            end,
            str(L.TransferKind.COST),
        )
        return (
            [
                RevenueLine(str(r.key), int(r.orders), int(r.revenue or 0), int(r.uncosted or 0))
                for r in revenue
            ],
            [CostLine(str(r.key), int(r.cost or 0), int(r.fulfilments)) for r in costs],
        )


_INSERT_TRANSFER = (
    "INSERT INTO transfers (id, kind, reference, merchant_id, order_id, payment_id, amount, created_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (kind, reference) DO NOTHING"
)
_INSERT_POSTING = "INSERT INTO postings (transfer_id, account_id, amount) VALUES ($1, $2, $3)"

# The key of a margin line: the channel of the attempt that succeeded (revenue) or that cost (costs).
_MARGIN_KEY = {
    MarginBy.CHANNEL: "COALESCE(a.channel_code, '')",
    MarginBy.PRODUCT: "o.product_code",
    MarginBy.MERCHANT: "o.merchant_id",
}


@functools.lru_cache(maxsize=8)
def _post_sql(n: int) -> str:
    """PostgreSQL: insert a transfer and, only if it was new, its `n` postings ($9.. account, amount)."""
    values = ", ".join(f"(${9 + 2 * i}::text, ${10 + 2 * i}::bigint)" for i in range(n))
    return (
        f"WITH t AS ({_INSERT_TRANSFER} RETURNING id)"
        " INSERT INTO postings (transfer_id, account_id, amount)"
        f" SELECT t.id, p.account_id, p.amount FROM t, (VALUES {values}) AS p(account_id, amount)"
    )


_INSUFFICIENT = "topup_insufficient_balance"


def _apply_and_commit_pg(tx: Tx, deltas: dict[str, list[Any]]) -> None:
    """`apply_balances` as one PL/pgSQL block in the transaction's tail: the engine sends it with the
    COMMIT in a single simple-query message."""
    from topup.adapters.db.engine import sql_literal

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
