"""In-memory fakes of the other areas, as far as the order path uses them: the catalog's
configuration and group routing state, the ledger's transfers and balances, the refunds of payments,
the merchants' default notify URL and the outbox. Anything else raises `NotFaked`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from topup.domain import ledger as L
from topup.domain.errors import InsufficientBalance
from topup.domain.routing import GroupState
from topup.services.ports.catalog import CatalogRows
from topup.services.ports.notifications import NewDelivery, NewEvent

if TYPE_CHECKING:
    from topup.adapters.db.memory.uow import MemoryUnitOfWork


class NotFaked(NotImplementedError):
    """A repository method the in-memory fakes do not provide (the order path never calls it)."""


class Partial:
    """A fake of part of an area: the methods it lacks raise `NotFaked` when called."""

    area = "?"

    def __init__(self, uow: MemoryUnitOfWork) -> None:
        self.uow = uow

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)

        def missing(*_args: Any, **_kw: Any) -> Any:
            raise NotFaked(f"{self.area}.{name} is not faked in memory")

        return missing


class MemoryCatalog(Partial):
    area = "catalog"

    async def load(self) -> CatalogRows:
        s = self.uow.state
        return CatalogRows(
            list(s.products.values()), list(s.channels.values()), list(s.members), list(s.groups.values())
        )

    async def group_state(self, code: str, for_update: bool = False) -> GroupState | None:
        s = self.uow.state
        group = s.groups.get(code)
        if group is None:
            return None
        state = s.group_states.get(code, GroupState())
        return replace(state, sticky=bool(group.sticky), recovery_s=group.recovery_s)

    async def save_group_state(self, code: str, state: GroupState) -> None:
        self.uow.state.group_states[code] = replace(state)

    async def record_switch(
        self, group: str, from_ch: str | None, to_ch: str, reason: str, order_id: str | None
    ) -> None:
        self.uow.state.switches.append(
            {
                "group_code": group,
                "from_channel": from_ch,
                "to_channel": to_ch,
                "reason": reason,
                "order_id": order_id,
                "at": self.uow.now,
            }
        )


class MemoryLedger(Partial):
    area = "ledger"

    def __init__(self, uow: MemoryUnitOfWork) -> None:
        super().__init__(uow)
        self._deltas: dict[str, int] = {}

    async def ensure_account(self, account_id: str, merchant_id: str | None = None) -> None:
        self.uow.state.balances.setdefault(account_id, 0)

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
        key = (str(kind), reference)
        if key in self.uow.state.transfers:
            return False
        self.uow.state.transfers[key] = {
            "kind": str(kind),
            "reference": reference,
            "postings": [(p.account, p.amount) for p in postings],
            "amount": amount,
            "merchant_id": merchant_id,
            "order_id": order_id,
            "payment_id": payment_id,
        }
        return True

    def change_balances(self, changes: list[tuple[str, int, str | None]]) -> None:
        if not self._deltas:
            self.uow.before_commit(self.apply_balances, last=True)
        for account, amount, _owner in changes:
            self._deltas[account] = self._deltas.get(account, 0) + amount

    async def apply_balances(self) -> None:
        balances = self.uow.state.balances
        deltas, self._deltas = self._deltas, {}
        for account in sorted(deltas):
            amount = deltas[account]
            if amount < 0 and L.must_stay_non_negative(account) and balances.get(account, 0) < -amount:
                raise InsufficientBalance("available balance is lower than the amount", {"required": -amount})
            balances[account] = balances.get(account, 0) + amount

    async def balances(self, account_ids: list[str]) -> dict[str, int]:
        found = self.uow.state.balances
        return {a: found[a] for a in account_ids if a in found}


class MemoryPayments(Partial):
    area = "payments"

    async def add_refund(self, payment_id: str, order_id: str, amount: int) -> None:
        self.uow.state.refunds.append({"payment_id": payment_id, "order_id": order_id, "amount": amount})

    async def add_refunded(self, payment_id: str, amount: int) -> None:
        refunded = self.uow.state.refunded
        refunded[payment_id] = refunded.get(payment_id, 0) + amount


class MemoryMerchants(Partial):
    area = "merchants"

    async def default_notify_url(self, merchant_id: str) -> str | None:
        return self.uow.state.notify_urls.get(merchant_id)


class MemoryNotifications(Partial):
    area = "notifications"

    async def order_rows(self, order_ids: Sequence[str]) -> list[Any]:
        orders = self.uow.state.orders
        return [replace(orders[oid]) for oid in order_ids if oid in orders]

    async def add_events(self, events: list[NewEvent], deliveries: list[NewDelivery]) -> None:
        self.uow.state.outbox.extend(e._asdict() for e in events)
        self.uow.state.deliveries.extend(d._asdict() for d in deliveries)

    def announce(self, merchant_ids: Iterable[str]) -> None:
        pass


class MemorySupplierOps(Partial):
    area = "supplier_ops"


class MemoryRetention(Partial):
    area = "retention"


class MemoryOperators(Partial):
    area = "operators"
