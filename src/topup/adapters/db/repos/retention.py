"""Every statement retention runs (implements `services.ports.retention`): for each prunable kind of row,
one SELECT of the primary keys that may go; a batch deletes `WHERE pk IN (that SELECT ... LIMIT n)`,
which works the same on SQLite and PostgreSQL and holds its row locks for one short transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING

from topup.domain.orders import FINAL_STATUSES
from topup.services.ports.retention import Prunable

if TYPE_CHECKING:
    from topup.adapters.db.engine import Tx

_FINAL_ORDER = "(" + ", ".join(f"'{s}'" for s in sorted(FINAL_STATUSES)) + ")"
_FINAL_DELIVERY = "('delivered', 'gave_up')"

# (table, primary key, SELECT of the prunable keys); $1 is the cutoff (epoch seconds).
_CANDIDATES: dict[Prunable, tuple[str, str, str]] = {
    # Every try of a finished delivery goes with it (also a try after the cutoff: no orphans).
    Prunable.DELIVERY_ATTEMPTS: (
        "delivery_attempts",
        "id",
        "SELECT a.id FROM delivery_attempts a JOIN deliveries d ON d.event_id = a.event_id"
        f" WHERE d.status IN {_FINAL_DELIVERY} AND d.created_at < $1",
    ),
    Prunable.DELIVERIES: (
        "deliveries",
        "event_id",
        f"SELECT d.event_id FROM deliveries d WHERE d.status IN {_FINAL_DELIVERY} AND d.created_at < $1",
    ),
    # An event still being delivered stays, however old (an operator may have requeued it).
    Prunable.EVENTS: (
        "events",
        "seq",
        "SELECT e.seq FROM events e WHERE e.created_at < $1 AND NOT EXISTS"
        " (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.status = 'pending')",
    ),
    # Only attempts of final orders: a callback of an open order is still the idempotency record.
    Prunable.CALLBACKS: (
        "callbacks",
        "id",
        "SELECT c.id FROM callbacks c JOIN attempts a ON a.ref = c.ref JOIN orders o ON o.id = a.order_id"
        f" WHERE c.received_at < $1 AND o.status IN {_FINAL_ORDER} AND o.completed_at < $1",
    ),
    Prunable.ORDER_EVENTS: (
        "order_events",
        "id",
        "SELECT e.id FROM order_events e JOIN orders o ON o.id = e.order_id"
        f" WHERE e.at < $1 AND o.status IN {_FINAL_ORDER} AND o.completed_at < $1",
    ),
    # Gone only when a newer check of the channel exists, and a newer good one if this one was good:
    # the pause rules and the console read the latest check and the latest good balance.
    Prunable.CHANNEL_BALANCES: (
        "channel_balances",
        "id",
        "SELECT b.id FROM channel_balances b WHERE b.checked_at < $1 AND EXISTS"
        " (SELECT 1 FROM channel_balances n WHERE n.channel_code = b.channel_code"
        " AND (n.checked_at > b.checked_at OR (n.checked_at = b.checked_at AND n.id > b.id))"
        " AND (n.ok OR NOT b.ok))",
    ),
    Prunable.GROUP_SWITCHES: ("group_switches", "id", "SELECT s.id FROM group_switches s WHERE s.at < $1"),
}


class SqlRetention:
    __slots__ = ("tx",)

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def count(self, kind: Prunable, cutoff: float) -> int:
        _table, _pk, candidates = _CANDIDATES[kind]
        row = await self.tx.fetchrow(f"SELECT count(*) AS n FROM ({candidates}) x", cutoff)
        return int(row.n) if row is not None else 0

    async def prune(self, kind: Prunable, cutoff: float, limit: int) -> int:
        table, pk, candidates = _CANDIDATES[kind]
        return await self.tx.exec(f"DELETE FROM {table} WHERE {pk} IN ({candidates} LIMIT $2)", cutoff, limit)
