"""Simulator state: channels, simulated orders, stats and the delayed callbacks they send."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx

from topup.adapters.http_transport import AiohttpTransport

from .behaviour import ChannelBehaviour, Outcome, QueryStatus, channel_rng, decide
from .modes import mode_for

log = logging.getLogger(__name__)

CALLBACK_TIMEOUT_S = 5.0


@dataclass
class SimOrder:
    """One order a channel took. Times are on the event loop's monotonic clock."""

    ref: str
    supplier_order_id: str
    account: str
    callback_url: str
    outcome: Outcome
    created_at: float
    settles_at: float | None  # when the success/failure callback is due
    late_success_at: float | None  # silent orders only
    reply: dict[str, Any]  # the dispatch answer, repeated for a duplicate ref
    callbacks_sent: list[dict[str, Any]] = field(default_factory=list)
    amount: int = 0  # what the order took from the channel's balance (minor units)
    request: dict[str, Any] = field(default_factory=dict)  # the dispatch as the mode parsed it


@dataclass
class Channel:
    code: str
    behaviour: ChannelBehaviour
    rng: Any
    orders: dict[str, SimOrder] = field(default_factory=dict)
    dispatches: Counter[str] = field(default_factory=Counter)
    queries: Counter[str] = field(default_factory=Counter)
    state: dict[str, Any] = field(default_factory=dict)  # a mode's own per-channel state (tokens, ...)

    def stats(self) -> dict[str, Any]:
        return {
            "dispatches": dict(self.dispatches),
            "dispatch_total": sum(self.dispatches.values()),
            "queries": dict(self.queries),
            "orders": {ref: order.outcome.value for ref, order in self.orders.items()},
            "callbacks": {
                ref: sum(1 for c in order.callbacks_sent if c["delivered"])
                for ref, order in self.orders.items()
                if order.callbacks_sent
            },
        }


class Simulator:
    """Many simulated topup-json channels in one process.

    Config: {"seed": ..., "defaults": {behaviour}, "channels": {code: {behaviour}},
    "callback_retries": 3, "callback_retry_backoff_s": 0.1}.
    """

    def __init__(
        self,
        config: dict[str, Any],
        now: Callable[[], float],
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._config = config
        self._now = now
        self._transport = transport
        self.callback_retries = int(config.get("callback_retries", 3))
        self.callback_retry_backoff_s = float(config.get("callback_retry_backoff_s", 0.1))
        self.channels: dict[str, Channel] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)
        self._http: httpx.AsyncClient | None = None
        self._load_channels()

    @property
    def defaults(self) -> dict[str, Any]:
        """Behaviour fields every channel starts from (config `defaults`)."""
        return dict(self._config.get("defaults") or {})

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        transport = self._transport or AiohttpTransport()
        self._http = httpx.AsyncClient(transport=transport, timeout=CALLBACK_TIMEOUT_S, trust_env=False)

    async def stop(self) -> None:
        await self._cancel_tasks()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def reset(self) -> None:
        """Forget every order and count and restore the start-up behaviours."""
        await self._cancel_tasks()
        self._load_channels()

    async def _cancel_tasks(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    def _load_channels(self) -> None:
        defaults = ChannelBehaviour.model_validate(self.defaults)
        self.channels = {}
        for code, fields in (self._config.get("channels") or {}).items():
            self.configure(code, defaults.merged(fields or {}))

    # -- channels --------------------------------------------------------------------------------

    def configure(self, code: str, behaviour: ChannelBehaviour) -> bool:
        """Install a behaviour for `code`; True when the channel is new. Orders and stats are kept."""
        channel = self.channels.get(code)
        if channel is None:
            seed = behaviour.seed if behaviour.seed is not None else self._config.get("seed")
            self.channels[code] = Channel(code, behaviour, channel_rng(seed, code))
            return True
        if behaviour.seed is not None and behaviour.seed != channel.behaviour.seed:
            channel.rng = channel_rng(behaviour.seed, code)
        channel.behaviour = behaviour
        return False

    # -- dispatch and query ----------------------------------------------------------------------

    def take_order(self, channel: Channel, payload: dict[str, Any]) -> tuple[SimOrder, bool]:
        """The order for this ref, creating it on first sight; True when it is new.

        Synchronous on purpose: no await between the lookup and the insert, so a ref is taken once.
        """
        ref = str(payload["ref"])
        existing = channel.orders.get(ref)
        if existing is not None:
            return existing, False
        behaviour = channel.behaviour
        account = str(payload.get("account") or "")
        outcome = decide(behaviour, account, channel.rng)
        amount = int(payload.get("amount") or 0)
        if outcome in (Outcome.SUCCESS, Outcome.SILENT) and behaviour.balance is not None:
            # Only orders that will not fail take the money (a failed top-up is refunded at once).
            if amount > behaviour.balance:
                outcome = Outcome.INSUFFICIENT
            else:
                behaviour.balance -= amount
        supplier_order_id = f"{channel.code}-{next(self._ids):06d}"
        now = self._loop_time()
        if outcome is Outcome.INSUFFICIENT:
            reply: dict[str, Any] = {
                "result": "rejected",
                "code": "insufficient_balance",
                "message": "simulated supplier balance too low",
            }
        elif outcome is Outcome.REJECTED:
            reply = {
                "result": "rejected",
                "code": behaviour.reject_code,
                "message": "simulated rejection",
            }
        else:
            reply = {"result": "accepted", "supplier_order_id": supplier_order_id}
        settles = outcome in (Outcome.SUCCESS, Outcome.FAILED)
        delay = 0.0 if behaviour.callback_before_reply else behaviour.callback_delay_s
        late = behaviour.late_success_after_s if outcome is Outcome.SILENT else None
        order = SimOrder(
            ref=ref,
            supplier_order_id=supplier_order_id,
            account=account,
            callback_url=str(payload.get("callback_url") or behaviour.callback_url or ""),
            outcome=outcome,
            created_at=now,
            settles_at=now + delay if settles else None,
            late_success_at=now + late if late is not None else None,
            reply=reply,
            amount=amount if outcome in (Outcome.SUCCESS, Outcome.SILENT) else 0,
            request=dict(payload),
        )
        channel.orders[ref] = order
        return order, True

    async def start_callbacks(self, channel: Channel, order: SimOrder) -> None:
        """Send (or schedule) the callbacks a new order is due."""
        behaviour = channel.behaviour
        copies = behaviour.duplicate_callbacks
        if order.outcome in (Outcome.SUCCESS, Outcome.FAILED):
            status = order.outcome.value
            if behaviour.callback_before_reply:
                await self._send_callbacks(channel, order, status, copies)
            else:
                self._spawn(self._later(behaviour.callback_delay_s, channel, order, status, copies))
        elif order.late_success_at is not None and behaviour.late_success_after_s is not None:
            self._spawn(self._later(behaviour.late_success_after_s, channel, order, "success", copies))

    def query_status(self, channel: Channel, ref: str) -> tuple[QueryStatus, SimOrder | None]:
        """Count a status query and answer it in protocol-neutral terms."""
        channel.queries[ref] += 1
        order = channel.orders.get(ref)
        return self._query_status(channel, order), order

    def answer_query(self, channel: Channel, ref: str) -> dict[str, Any]:
        """A topup-json query answer."""
        status, order = self.query_status(channel, ref)
        answer: dict[str, Any] = {"ref": ref, "status": status}
        if order is not None:
            answer["supplier_order_id"] = order.supplier_order_id
        if status == "failed":
            code = channel.behaviour.reject_code if order and order.outcome is Outcome.REJECTED else None
            answer.update(code=code or channel.behaviour.failure_code, message="simulated failure")
        return answer

    def _query_status(self, channel: Channel, order: SimOrder | None) -> QueryStatus:
        behaviour = channel.behaviour
        if behaviour.query_answer is not None:
            return behaviour.query_answer
        if order is None:
            return "not_found"
        now = self._loop_time()
        if order.outcome in (Outcome.REJECTED, Outcome.INSUFFICIENT):
            return "failed"
        if order.outcome is Outcome.SILENT:
            if order.late_success_at is not None and now >= order.late_success_at:
                return "success"
            return behaviour.silent_query
        if order.settles_at is not None and now < order.settles_at:
            return "processing"
        return "success" if order.outcome is Outcome.SUCCESS else "failed"

    # -- callbacks -------------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _later(self, delay: float, channel: Channel, order: SimOrder, status: str, copies: int) -> None:
        await asyncio.sleep(delay)
        await self._send_callbacks(channel, order, status, copies)

    async def _send_callbacks(self, channel: Channel, order: SimOrder, status: str, copies: int) -> None:
        mode = mode_for(channel.behaviour.protocol)
        for _ in range(copies):
            message = mode.callback(channel, order, status, self._now())
            if message is None:
                return  # this protocol has no callbacks: the query carries the order
            body, headers = message
            order.callbacks_sent.append(await self._deliver(channel, order.callback_url, body, headers))

    async def _deliver(
        self, channel: Channel, url: str, body: bytes, headers: dict[str, str]
    ) -> dict[str, Any]:
        """POST one callback, retrying with a doubling backoff until a 200 or the retries run out."""
        assert self._http is not None, "simulator not started"
        record: dict[str, Any] = {"delivered": False, "attempts": 0, "http_status": None, "error": None}
        retries = channel.behaviour.callback_retries
        if retries is None:
            retries = getattr(mode_for(channel.behaviour.protocol), "CALLBACK_RETRIES", None)
        for attempt in range((self.callback_retries if retries is None else retries) + 1):
            if attempt:
                await asyncio.sleep(self.callback_retry_backoff_s * 2 ** (attempt - 1))
            record["attempts"] = attempt + 1
            try:
                request = self._http.build_request("POST", url, content=body)
                request.headers.update(headers)
                response = await self._http.send(request)
            except httpx.InvalidURL as exc:
                record["error"] = f"invalid callback_url: {exc}"
                break
            except httpx.HTTPError as exc:
                record["error"] = f"{type(exc).__name__}: {exc}"
                continue
            record["http_status"] = response.status_code
            if response.status_code == 200:
                record["delivered"] = True
                break
        if not record["delivered"]:
            log.warning("simulator callback to %s not acknowledged: %s", url, record)
        return record

    @staticmethod
    def _loop_time() -> float:
        return asyncio.get_running_loop().time()
