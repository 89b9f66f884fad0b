"""Configuration and money in the in-memory state, as an operator would have set them up."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from topup.adapters.db.memory.state import State
from topup.domain import ledger as L
from topup.domain.routing import GroupState
from topup.services.ports.catalog import ChannelRow, GroupRow, MemberRow, ProductRow


def add_product(
    state: State,
    code: str,
    *,
    business_type: str = "mobile_airtime",
    face_value: int = 5000,
    price: int = 4980,
) -> None:
    state.products[code] = ProductRow(code, business_type, None, code, face_value, price, True)


def add_channel(
    state: State,
    code: str,
    *,
    protocol: str = "topup-json",
    timeout_s: float = 0.5,
    max_wait_s: float = 1.5,
    supports_query: bool = True,
    enabled: bool = True,
    rate_limit_per_s: int | None = None,
) -> None:
    state.channels[code] = ChannelRow(
        code=code,
        name=code,
        protocol=protocol,
        base_url=f"http://{code}.invalid",
        secret="secret",
        timeout_s=timeout_s,
        max_wait_s=max_wait_s,
        supports_query=supports_query,
        enabled=enabled,
        credentials="",
        products={},
        options={},
        min_balance=None,
        balance_check_s=300.0,
        rate_limit_per_s=rate_limit_per_s,
        paused=None,
        paused_at=None,
    )


def add_group(
    state: State,
    code: str,
    members: Sequence[str],
    *,
    business_type: str = "mobile_airtime",
    strategy: str = "priority",
    sticky: bool = True,
    recovery_s: float = 300.0,
    active_channel: str | None = None,
    costs: Mapping[str, Mapping[str, int]] | None = None,
) -> None:
    """A group of `members` in priority order (`costs`: channel -> product -> fen)."""
    state.groups[code] = GroupRow(code, business_type, None, strategy, sticky, recovery_s)
    state.members = [m for m in state.members if m.group_code != code]
    for i, channel in enumerate(members):
        cost = dict((costs or {}).get(channel, {}))
        state.members.append(MemberRow(code, channel, i + 1, 1, cost, None, None))
    state.group_states[code] = GroupState(sticky, recovery_s, active_channel)


def credit(state: State, merchant_id: str, amount: int) -> None:
    """Put `amount` on the merchant's available balance (from the world, as a deposit would)."""
    balances = state.balances
    account = L.available_account(merchant_id)
    balances[account] = balances.get(account, 0) + amount
    balances[L.WORLD_DEPOSITS] = balances.get(L.WORLD_DEPOSITS, 0) - amount
