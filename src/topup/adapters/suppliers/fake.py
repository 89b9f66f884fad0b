"""An in-memory supplier protocol for tests: records every call and plays scripted outcomes."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from topup.domain import suppliers as port
from topup.domain.suppliers import BalanceOutcome, DispatchOutcome, QueryOutcome


@dataclass
class DispatchCall:
    channel: port.ChannelAccess
    req: port.DispatchRequest


@dataclass
class QueryCall:
    channel: port.ChannelAccess
    req: port.QueryRequest

    @property
    def ref(self) -> str:
        return self.req.supplier_ref


DispatchScript = DispatchOutcome | Callable[[DispatchCall], DispatchOutcome]
QueryScript = QueryOutcome | Callable[[QueryCall], QueryOutcome]


class FakeSupplier:
    """Stands in for any protocol (usually registered as `topup-json`). Scripted outcomes (or callables
    taking the recorded call) are used in order; then the `default_*` answer (accepted / processing)."""

    has_callbacks = True
    has_balance = True
    credential_fields: tuple[str, ...] = ("secret",)
    secret_fields: tuple[str, ...] = ("secret",)
    product_fields: tuple[str, ...] = ()
    option_fields: tuple[str, ...] = ()

    def __init__(
        self,
        dispatch_outcomes: Iterable[DispatchScript] = (),
        query_outcomes: Iterable[QueryScript] = (),
        default_dispatch: DispatchScript | None = None,
        default_query: QueryScript | None = None,
        name: str = "topup-json",
        balance: BalanceOutcome | None = None,
    ) -> None:
        self.name = name
        self.dispatch_calls: list[DispatchCall] = []
        self.query_calls: list[QueryCall] = []
        self._dispatch_script: deque[DispatchScript] = deque(dispatch_outcomes)
        self._query_script: deque[QueryScript] = deque(query_outcomes)
        self.default_dispatch: DispatchScript = default_dispatch or (
            lambda call: DispatchOutcome.accepted(f"fake-{call.req.supplier_ref}")
        )
        self.default_query: QueryScript = default_query or QueryOutcome("processing", http_status=200)
        self.balance_answer = balance or BalanceOutcome(True, 10**9, "CNY")

    def script_dispatch(self, *outcomes: DispatchScript) -> None:
        self._dispatch_script.extend(outcomes)

    def script_query(self, *outcomes: QueryScript) -> None:
        self._query_script.extend(outcomes)

    @property
    def dispatched_refs(self) -> list[str]:
        return [call.req.supplier_ref for call in self.dispatch_calls]

    def validate(
        self, credentials: Mapping[str, Any], products: Mapping[str, Any], options: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, Any]]:
        return dict(credentials), {k: dict(v) for k, v in products.items()}, dict(options)

    def serves(self, channel: port.ChannelAccess, product_code: str, business_type: str) -> bool:
        return True

    def supplier_ref(self, order_id: str, attempt_no: int) -> str:
        return f"{order_id}-{attempt_no}"

    async def dispatch(self, channel: port.ChannelAccess, req: port.DispatchRequest) -> DispatchOutcome:
        call = DispatchCall(channel, req)
        self.dispatch_calls.append(call)
        script = self._dispatch_script.popleft() if self._dispatch_script else self.default_dispatch
        return script(call) if callable(script) else script

    async def query(self, channel: port.ChannelAccess, req: port.QueryRequest) -> QueryOutcome:
        call = QueryCall(channel, req)
        self.query_calls.append(call)
        script = self._query_script.popleft() if self._query_script else self.default_query
        return script(call) if callable(script) else script

    async def balance(self, channel: port.ChannelAccess) -> BalanceOutcome:
        return self.balance_answer

    def parse_callback(
        self, channel: port.ChannelAccess, request: port.CallbackRequest, now: float
    ) -> port.CallbackData:
        raise port.CallbackRefused("unauthorized", "the fake supplier sends no callbacks")

    def ack(self, data: port.CallbackData, outcome: str = "") -> port.Ack:
        return port.Ack()
