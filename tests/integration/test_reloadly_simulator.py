"""The `reloadly` adapter against the simulator's `reloadly` mode over real loopback HTTP.

The simulator and a small webhook receiver (which verifies with the adapter's own `parse_callback`) each
run under uvicorn on a background thread; the platform side is just the adapter.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from topup.adapters.suppliers.protocols import reloadly
from topup.adapters.suppliers.simulator import BackgroundServer, RunningSimulator, start_in_thread
from topup.clock import FakeClock
from topup.domain.suppliers import CallbackData, CallbackRefused, CallbackRequest, ChannelAccess, QueryRequest
from topup.domain.suppliers import DispatchRequest as PortDispatch

CODE = "rl"
CREDENTIALS = {"client_id": "rl-client", "client_secret": "rl-secret", "webhook_secret": "rl-webhook"}
TIMEOUT_S = 2.0


class Receiver:
    """The platform's webhook endpoint: `parse_callback`, then the protocol's ack; records what it took."""

    def __init__(self, adapter: reloadly.Reloadly) -> None:
        self.adapter = adapter
        self.channel: ChannelAccess | None = None
        self.callbacks: list[CallbackData] = []
        self.refused: list[str] = []
        self._changed = threading.Condition()
        self.app = FastAPI()
        self.app.add_api_route("/callbacks/reloadly/{channel}", self._receive, methods=["POST"])

    async def _receive(self, channel: str, request: Request) -> Response:
        assert self.channel is not None
        incoming = CallbackRequest(
            "POST", request.url.path, {k.lower(): v for k, v in request.headers.items()}, await request.body()
        )
        try:
            data = self.adapter.parse_callback(self.channel, incoming, time.time())
        except CallbackRefused as exc:
            with self._changed:
                self.refused.append(exc.kind)
                self._changed.notify_all()
            return Response(status_code=401 if exc.kind == "unauthorized" else 400)
        with self._changed:
            self.callbacks.append(data)
            self._changed.notify_all()
        ack = self.adapter.ack(data)
        return Response(ack.body, status_code=ack.status_code, media_type=ack.media_type)

    def for_ref(self, ref: str) -> list[CallbackData]:
        with self._changed:
            return [c for c in self.callbacks if c.supplier_ref == ref]

    def reset(self) -> None:
        with self._changed:
            self.callbacks.clear()
            self.refused.clear()

    async def wait(self, predicate: Any) -> None:
        def wait() -> bool:
            with self._changed:
                return self._changed.wait_for(predicate, TIMEOUT_S)

        assert await asyncio.to_thread(wait), "the expected webhook did not arrive"

    async def wait_for(self, ref: str) -> CallbackData:
        await self.wait(lambda: len(self.for_ref(ref)) >= 1)
        return self.for_ref(ref)[0]


@pytest.fixture(scope="module")
def receiver_and_server() -> Iterator[tuple[Receiver, BackgroundServer]]:
    # parse_callback makes no request; the client only satisfies `create`.
    client = httpx.AsyncClient()
    receiver = Receiver(reloadly.create(client, time.time))
    with BackgroundServer(receiver.app) as server:
        yield receiver, server
    asyncio.run(client.aclose())


@pytest.fixture(scope="module")
def sim(receiver_and_server: tuple[Receiver, BackgroundServer]) -> Iterator[RunningSimulator]:
    config = {
        "seed": 11,
        "callback_retry_backoff_s": 0.02,
        "defaults": {"callback_delay_s": 0.05},
        "channels": {
            CODE: {
                "protocol": "reloadly",
                "credentials": CREDENTIALS,
                "callback_url": f"{receiver_and_server[1].url}/callbacks/reloadly/{CODE}",
            }
        },
    }
    running = start_in_thread(config)
    yield running
    running.stop()


@pytest.fixture
def channel(sim: RunningSimulator, receiver_and_server: tuple[Receiver, BackgroundServer]) -> ChannelAccess:
    access = ChannelAccess(
        code=CODE,
        protocol="reloadly",
        base_url=sim.base_url(CODE),
        credentials={**CREDENTIALS, "auth_url": sim.base_url(CODE)},
        products={
            "airtime.50": {"operatorId": 1234, "amount": 50},
            "airtime.10": {"operatorId": 1234, "amount": 10.5},
        },
        options={},
        timeout_s=TIMEOUT_S,
        callback_url=f"{receiver_and_server[1].url}/callbacks/reloadly/{CODE}",
    )
    receiver_and_server[0].channel = access
    return access


@pytest.fixture
def receiver(receiver_and_server: tuple[Receiver, BackgroundServer]) -> Receiver:
    return receiver_and_server[0]


@pytest.fixture
async def http(sim: RunningSimulator, receiver: Receiver) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        (await client.post(f"{sim.url}/control/reset")).raise_for_status()
        receiver.reset()
        yield client


@pytest.fixture
async def adapter(http: httpx.AsyncClient) -> reloadly.Reloadly:
    return reloadly.create(http, time.time)  # a fresh adapter: an empty token cache


async def configure(http: httpx.AsyncClient, sim: RunningSimulator, **fields: Any) -> None:
    response = await http.put(f"{sim.url}/control/channels/{CODE}", json=fields)
    assert response.status_code in (200, 201), response.text


def state(sim: RunningSimulator) -> dict[str, Any]:
    return sim.simulator.channels[CODE].state


_refs = iter(range(1, 10**6))


def order(
    account: str = "13800138000", product_code: str = "airtime.50", ref: str | None = None
) -> PortDispatch:
    ref = ref or f"ord{time.monotonic_ns()}A{next(_refs)}"
    return PortDispatch(ref, ref, product_code, "mobile_airtime", account, 5000, "cmcc")


def query_of(req: PortDispatch) -> QueryRequest:
    return QueryRequest(req.supplier_ref, req.ref, req.product_code, req.business_type)


# ---- the order's life ------------------------------------------------------------------------------


async def test_accepted_then_a_signed_success_webhook(
    sim: RunningSimulator,
    http: httpx.AsyncClient,
    adapter: reloadly.Reloadly,
    channel: ChannelAccess,
    receiver: Receiver,
) -> None:
    await configure(http, sim, callback_delay_s=0.2)
    req = order()
    out = await adapter.dispatch(channel, req)
    assert (out.kind, out.http_status) == ("accepted", 200)
    assert out.supplier_order_id and out.supplier_order_id.isdigit()
    assert (await adapter.query(channel, query_of(req))).status == "processing"

    callback = await receiver.wait_for(req.supplier_ref)
    assert (callback.status, callback.supplier_order_id) == ("success", out.supplier_order_id)
    done = await adapter.query(channel, query_of(req))
    assert (done.status, done.supplier_order_id) == ("success", out.supplier_order_id)
    wire = sim.simulator.channels[CODE].orders[req.supplier_ref].request["wire"]
    assert wire["amount"] == 50 and wire["recipientPhone"] == {"countryCode": "CN", "number": "13800138000"}


async def test_a_failed_top_up(
    sim: RunningSimulator,
    http: httpx.AsyncClient,
    adapter: reloadly.Reloadly,
    channel: ChannelAccess,
    receiver: Receiver,
) -> None:
    await configure(http, sim, fail_accounts=["13900000001"], options={"failed_status": "REFUNDED"})
    req = order("13900000001")
    assert (await adapter.dispatch(channel, req)).kind == "accepted"
    callback = await receiver.wait_for(req.supplier_ref)
    assert (callback.status, callback.code) == ("failed", "REFUNDED")
    result = await adapter.query(channel, query_of(req))
    assert (result.status, result.code) == ("failed", "REFUNDED")


async def test_synchronous_replies_are_final(
    sim: RunningSimulator, http: httpx.AsyncClient, adapter: reloadly.Reloadly, channel: ChannelAccess
) -> None:
    await configure(
        http, sim, fail_accounts=["13900000001"], options={"synchronous": True, "currency": "CNY"}
    )
    ok = await adapter.dispatch(channel, order(product_code="airtime.10"))
    assert (ok.kind, ok.cost) == ("succeeded", 1050)  # the supplier charged 10.5 CNY
    assert ok.supplier_order_id and ok.supplier_order_id.isdigit()
    failed = order("13900000001")
    out = await adapter.dispatch(channel, failed)
    assert (out.kind, out.code) == ("failed", "FAILED")
    assert (await adapter.query(channel, query_of(failed))).status == "failed"

    await configure(http, sim, options={"synchronous": True})  # USD: no cost taken
    out = await adapter.dispatch(channel, order())
    assert (out.kind, out.cost) == ("succeeded", None)


async def test_a_rejection_names_the_error_and_leaves_no_transaction(
    sim: RunningSimulator,
    http: httpx.AsyncClient,
    adapter: reloadly.Reloadly,
    channel: ChannelAccess,
    receiver: Receiver,
) -> None:
    await configure(http, sim, reject_accounts=["13900000002"])
    req = order("13900000002")
    out = await adapter.dispatch(channel, req)
    assert (out.kind, out.code, out.http_status) == ("rejected", "INVALID_PHONE_NUMBER", 400)
    assert (await adapter.query(channel, query_of(req))).status == "not_found"

    await configure(http, sim, reject_code="OPERATOR_UNAVAILABLE")
    out = await adapter.dispatch(channel, order("13900000002"))
    assert (out.kind, out.code) == ("rejected", "OPERATOR_UNAVAILABLE")
    assert receiver.for_ref(req.supplier_ref) == []


async def test_silence_then_query(
    sim: RunningSimulator,
    http: httpx.AsyncClient,
    adapter: reloadly.Reloadly,
    channel: ChannelAccess,
    receiver: Receiver,
) -> None:
    await configure(http, sim, silent_accounts=["13700000000"], late_success_after_s=0.2)
    req = order("13700000000")
    assert (await adapter.dispatch(channel, req)).kind == "accepted"
    assert (await adapter.query(channel, query_of(req))).status == "processing"
    callback = await receiver.wait_for(req.supplier_ref)
    assert callback.status == "success"
    assert (await adapter.query(channel, query_of(req))).status == "success"


async def test_an_unknown_ref_is_not_found(adapter: reloadly.Reloadly, channel: ChannelAccess) -> None:
    out = await adapter.query(channel, query_of(order(ref="neverSentA1")))
    assert (out.status, out.http_status) == ("not_found", 200)


async def test_a_repeated_custom_identifier_is_unknown_not_rejected(
    adapter: reloadly.Reloadly, channel: ChannelAccess
) -> None:
    req = order()
    first = await adapter.dispatch(channel, req)
    again = await adapter.dispatch(channel, req)
    assert first.kind == "accepted"
    assert (again.kind, again.code) == ("unknown", "CUSTOM_IDENTIFIER_ALREADY_USED")
    assert (await adapter.query(channel, query_of(req))).status in ("processing", "success")


async def test_insufficient_balance_and_the_balance_query(
    sim: RunningSimulator, http: httpx.AsyncClient, adapter: reloadly.Reloadly, channel: ChannelAccess
) -> None:
    await configure(http, sim, balance=6000)  # 60.00 USD
    assert (await adapter.dispatch(channel, order())).kind == "accepted"  # takes 50.00
    out = await adapter.dispatch(channel, order())
    assert (out.kind, out.code) == ("rejected", "INSUFFICIENT_BALANCE")
    balance = await adapter.balance(channel)
    assert (balance.ok, balance.amount, balance.currency) == (True, 1000, "USD")

    await configure(http, sim, balance=123456, options={"currency": "CNY"})
    balance = await adapter.balance(channel)
    assert (balance.ok, balance.amount, balance.currency) == (True, 123456, "CNY")
    await configure(http, sim, balance=None)
    assert (await adapter.balance(channel)).amount == 10**12


async def test_a_webhook_signed_with_another_secret_is_refused(
    sim: RunningSimulator,
    http: httpx.AsyncClient,
    adapter: reloadly.Reloadly,
    channel: ChannelAccess,
    receiver: Receiver,
) -> None:
    await configure(http, sim, credentials={**CREDENTIALS, "webhook_secret": "forger"}, callback_retries=0)
    req = order()
    assert (await adapter.dispatch(channel, req)).kind == "accepted"
    await receiver.wait(lambda: len(receiver.refused) >= 1)
    assert receiver.refused == ["unauthorized"]
    assert receiver.for_ref(req.supplier_ref) == []


# ---- behaviour knobs --------------------------------------------------------------------------------


async def test_front_end_failures_and_gibberish_are_unknown(
    sim: RunningSimulator, http: httpx.AsyncClient, adapter: reloadly.Reloadly, channel: ChannelAccess
) -> None:
    await configure(http, sim, http_status=503)
    req = order()
    out = await adapter.dispatch(channel, req)
    assert (out.kind, out.code) == ("unknown", "http_503")
    assert (await adapter.query(channel, query_of(req))).status == "not_found"

    await configure(http, sim, http_status=None, malformed_reply=True)
    req = order()
    out = await adapter.dispatch(channel, req)
    assert (out.kind, out.code) == ("unknown", "malformed_reply")
    assert (await adapter.query(channel, query_of(req))).status in ("processing", "success")


async def test_a_hanging_reply_is_unknown_and_the_query_finds_the_order(
    sim: RunningSimulator, http: httpx.AsyncClient, adapter: reloadly.Reloadly, channel: ChannelAccess
) -> None:
    await configure(http, sim, hang_s=0.5)
    req = order()
    out = await adapter.dispatch(replace(channel, timeout_s=0.2), req)
    assert (out.kind, out.code) == ("unknown", "timeout")
    assert (await adapter.query(channel, query_of(req))).status in ("processing", "success")


# ---- the token quirks ------------------------------------------------------------------------------


async def test_concurrent_dispatches_make_one_token_request(
    sim: RunningSimulator, adapter: reloadly.Reloadly, channel: ChannelAccess
) -> None:
    outs = await asyncio.gather(*(adapter.dispatch(channel, order()) for _ in range(12)))
    assert [o.kind for o in outs] == ["accepted"] * 12
    await adapter.balance(channel)
    assert state(sim)["token_requests"] == 1
    assert state(sim).get("unauthorized", 0) == 0


async def test_token_expiry_mid_run_refreshes_and_repeats(
    sim: RunningSimulator, http: httpx.AsyncClient, adapter: reloadly.Reloadly, channel: ChannelAccess
) -> None:
    # The token is announced for an hour but the simulator drops it after 0.2 s.
    await configure(http, sim, options={"token_ttl_s": 3600, "token_valid_s": 0.2})
    assert (await adapter.dispatch(channel, order())).kind == "accepted"
    await asyncio.sleep(0.3)
    req = order()
    out = await adapter.dispatch(channel, req)
    assert out.kind == "accepted"
    assert state(sim)["token_requests"] == 2
    assert state(sim)["unauthorized"] == 1
    assert sim.simulator.channels[CODE].dispatches[req.supplier_ref] == 1  # the refused call never counted


async def test_the_announced_expiry_is_honoured_before_any_401(
    sim: RunningSimulator, http: httpx.AsyncClient, channel: ChannelAccess
) -> None:
    clock = FakeClock(time.time())
    adapter = reloadly.create(http, clock.now)
    await configure(http, sim, options={"token_ttl_s": 600})
    await adapter.dispatch(channel, order())
    clock.advance(600 - 60 + 1)  # within the last minute of the announced lifetime
    await adapter.dispatch(channel, order())
    assert state(sim)["token_requests"] == 2
    assert state(sim).get("unauthorized", 0) == 0


async def test_wrong_credentials_or_a_failing_token_endpoint_decide_nothing(
    sim: RunningSimulator, http: httpx.AsyncClient, adapter: reloadly.Reloadly, channel: ChannelAccess
) -> None:
    wrong = replace(channel, credentials={**channel.credentials, "client_secret": "nope"})
    req = order()
    out = await adapter.dispatch(wrong, req)
    assert (out.kind, out.code, out.http_status) == ("unknown", "token_error", 401)
    assert out.message is not None and "INVALID_CREDENTIALS" in out.message
    assert sim.simulator.channels[CODE].dispatches[req.supplier_ref] == 0

    await configure(http, sim, options={"token_http_status": 503})
    assert (await adapter.dispatch(channel, order())).code == "token_error"
    assert (await adapter.query(channel, query_of(req))).code == "token_error"
    balance = await adapter.balance(channel)
    assert (balance.ok, balance.code) == (False, "token_error")
    assert state(sim)["token_requests"] == 4
    assert state(sim).get("tokens_issued", 0) == 0


async def test_calls_without_a_token_get_401(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    base = sim.base_url(CODE)
    response = await http.get(f"{base}/accounts/balance", headers={"Accept": reloadly.ACCEPT})
    assert response.status_code == 401
    assert response.json()["errorCode"] == "INVALID_TOKEN"
    other = await http.post(f"{sim.url}/sim/nosuch/oauth/token", json={})
    assert other.status_code == 404
