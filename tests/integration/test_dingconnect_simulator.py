"""The DingConnect adapter against the simulator's `dingconnect` mode over real loopback HTTP.

DingConnect sends no callbacks, so every order is followed to its end by `ListTransferRecords`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest

from topup.adapters.suppliers.protocols.dingconnect import DingConnect
from topup.adapters.suppliers.simulator import RunningSimulator, start_in_thread
from topup.adapters.suppliers.simulator.modes import dingconnect as mode
from topup.domain import suppliers as port

API_KEY = "dc-sim-key-0001"
CONFIG: dict[str, Any] = {
    "seed": 11,
    "defaults": {"protocol": "dingconnect", "callback_delay_s": 0.05, "credentials": {"api_key": API_KEY}},
    "channels": {"dc1": {}, "tj1": {"protocol": "topup-json"}},
}
PRODUCTS = {"airtime.50": {"SkuCode": "CN_CM_TopUp_50", "SendValue": "50", "SendCurrencyIso": "CNY"}}
ACCOUNT, WIRE_ACCOUNT = "13800138000", "8613800138000"
FAIL, WIRE_FAIL = "13800138001", "8613800138001"
TIMEOUT_S = 2.0
_refs = iter(range(1, 10_000))


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    running = start_in_thread(CONFIG)
    yield running
    running.stop()


@pytest.fixture
async def http(sim: RunningSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        (await client.post(f"{sim.url}/control/reset")).raise_for_status()
        yield client


@pytest.fixture
def adapter(http: httpx.AsyncClient) -> DingConnect:
    return DingConnect(http, time.time)


def access(sim: RunningSimulator, api_key: str = API_KEY, timeout_s: float = TIMEOUT_S) -> port.ChannelAccess:
    return port.ChannelAccess(
        code="dc1",
        protocol="dingconnect",
        base_url=sim.base_url("dc1"),
        credentials={"api_key": api_key},
        products=PRODUCTS,
        options={},
        timeout_s=timeout_s,
        callback_url="http://platform.test/callbacks/dingconnect/dc1",
    )


def new_ref() -> str:
    return f"ordT{next(_refs):06d}A1"


def order(ref: str, account: str = ACCOUNT) -> port.DispatchRequest:
    return port.DispatchRequest(
        supplier_ref=ref,
        ref=f"ord_T-{ref}",
        product_code="airtime.50",
        business_type="mobile_airtime",
        account=account,
        face_value=5000,
        carrier="cmcc",
    )


def question(ref: str) -> port.QueryRequest:
    return port.QueryRequest(ref, f"ord_T-{ref}", "airtime.50", "mobile_airtime")


async def behave(http: httpx.AsyncClient, sim: RunningSimulator, **fields: Any) -> None:
    (await http.put(f"{sim.url}/control/channels/dc1", json=fields)).raise_for_status()


async def settle(
    adapter: DingConnect, channel: port.ChannelAccess, ref: str, until: str = "processing"
) -> port.QueryOutcome:
    """Ask until the status is no longer `until` (bounded)."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        outcome = await adapter.query(channel, question(ref))
        if outcome.status != until or time.monotonic() > deadline:
            return outcome
        await asyncio.sleep(0.02)


async def test_accepted_then_the_query_follows_it_to_success(
    sim: RunningSimulator, adapter: DingConnect
) -> None:
    channel, ref = access(sim), new_ref()
    outcome = await adapter.dispatch(channel, order(ref))
    assert outcome.kind == "accepted"
    assert outcome.supplier_order_id
    assert (await adapter.query(channel, question(ref))).status == "processing"
    final = await settle(adapter, channel, ref)
    assert (final.status, final.supplier_order_id) == ("success", outcome.supplier_order_id)
    taken = sim.simulator.channels["dc1"].orders[ref]
    assert taken.request["AccountNumber"] == WIRE_ACCOUNT
    assert (taken.request["SkuCode"], taken.request["SendValue"]) == ("CN_CM_TopUp_50", "50")
    assert taken.amount == 5000
    assert taken.callbacks_sent == []  # DingConnect has no callbacks


async def test_a_transfer_that_settles_at_once_is_final_in_the_reply(
    sim: RunningSimulator, http: httpx.AsyncClient, adapter: DingConnect
) -> None:
    await behave(http, sim, callback_delay_s=0, fail_accounts=[WIRE_FAIL])
    done = await adapter.dispatch(access(sim), order(new_ref()))
    assert done.kind == "succeeded"
    failed = await adapter.dispatch(access(sim), order(new_ref(), FAIL))
    assert (failed.kind, failed.code) == ("failed", "E42")


async def test_a_failure_shows_in_the_query(
    sim: RunningSimulator, http: httpx.AsyncClient, adapter: DingConnect
) -> None:
    await behave(http, sim, fail_accounts=[WIRE_FAIL], failure_code="ProviderError")
    channel, ref = access(sim), new_ref()
    assert (await adapter.dispatch(channel, order(ref, FAIL))).kind == "accepted"
    final = await settle(adapter, channel, ref)
    assert (final.status, final.code) == ("failed", "ProviderError")


@pytest.mark.parametrize("result_code", [4, 5])
async def test_a_rejection_comes_in_a_200_body(
    sim: RunningSimulator, http: httpx.AsyncClient, adapter: DingConnect, result_code: int
) -> None:
    await behave(
        http,
        sim,
        reject_accounts=[WIRE_ACCOUNT],
        reject_code="AccountNumberInvalid",
        options={"reject_result_code": result_code},
    )
    outcome = await adapter.dispatch(access(sim), order(new_ref()))
    assert (outcome.kind, outcome.code, outcome.http_status) == ("rejected", "AccountNumberInvalid", 200)


async def test_silence_stays_processing_until_a_late_success(
    sim: RunningSimulator, http: httpx.AsyncClient, adapter: DingConnect
) -> None:
    await behave(http, sim, silent_accounts=[WIRE_ACCOUNT])
    channel, quiet = access(sim), new_ref()
    assert (await adapter.dispatch(channel, order(quiet))).kind == "accepted"
    await asyncio.sleep(0.1)
    assert (await adapter.query(channel, question(quiet))).status == "processing"
    await behave(http, sim, late_success_after_s=0.05)
    late = new_ref()
    assert (await adapter.dispatch(channel, order(late))).kind == "accepted"
    assert (await settle(adapter, channel, late)).status == "success"


async def test_an_unknown_ref_is_not_found(sim: RunningSimulator, adapter: DingConnect) -> None:
    assert (await adapter.query(access(sim), question("neverSentA1"))).status == "not_found"


async def test_insufficient_balance_is_a_500_and_a_rejection(
    sim: RunningSimulator, http: httpx.AsyncClient, adapter: DingConnect
) -> None:
    await behave(http, sim, balance=7000)
    channel = access(sim)
    assert (await adapter.dispatch(channel, order(new_ref()))).kind == "accepted"
    short = await adapter.dispatch(channel, order(new_ref()))
    assert (short.kind, short.code, short.http_status) == ("rejected", "InsufficientBalance", 500)
    balance = await adapter.balance(channel)
    assert (balance.ok, balance.amount, balance.currency) == (True, 2000, "CNY")


async def test_balance_reports_the_simulated_amount_and_currency(
    sim: RunningSimulator, http: httpx.AsyncClient, adapter: DingConnect
) -> None:
    unlimited = await adapter.balance(access(sim))
    assert (unlimited.ok, unlimited.amount) == (True, 10**12)
    await behave(http, sim, balance=12345, options={"currency": "USD"})
    balance = await adapter.balance(access(sim))
    assert (balance.ok, balance.amount, balance.currency) == (True, 12345, "USD")


async def test_a_wrong_api_key_is_refused_with_401(sim: RunningSimulator, adapter: DingConnect) -> None:
    channel, ref = access(sim, api_key="not-the-key"), new_ref()
    dispatched = await adapter.dispatch(channel, order(ref))
    assert (dispatched.kind, dispatched.code) == ("unknown", "http_401")
    assert (await adapter.query(channel, question(ref))).code == "http_401"
    assert (await adapter.balance(channel)).code == "http_401"
    assert sim.simulator.channels["dc1"].dispatches[ref] == 0


async def test_a_repeated_distributor_ref_is_a_second_transfer(
    sim: RunningSimulator, http: httpx.AsyncClient, adapter: DingConnect
) -> None:
    await behave(http, sim, balance=20000)
    ref = new_ref()
    body = {
        "SkuCode": "CN_CM_TopUp_50",
        "SendValue": 50,
        "SendCurrencyIso": "CNY",
        "AccountNumber": WIRE_ACCOUNT,
        "DistributorRef": ref,
        "ValidateOnly": False,
    }
    url = f"{sim.base_url('dc1')}/SendTransfer"
    replies = [(await http.post(url, json=body, headers={"api_key": API_KEY})).json() for _ in range(2)]
    transfer_refs = [r["TransferRecord"]["TransferId"]["TransferRef"] for r in replies]
    assert transfer_refs[0] != transfer_refs[1]
    channel = sim.simulator.channels["dc1"]
    assert channel.state["transfers"][ref] == transfer_refs
    assert channel.behaviour.balance == 10000  # charged twice

    # The adapter sends a ref once; queries never make a transfer.
    once = new_ref()
    assert (await adapter.dispatch(access(sim), order(once))).kind == "accepted"
    await settle(adapter, access(sim), once)
    await adapter.query(access(sim), question(once))
    assert channel.dispatches[once] == 1
    assert len(channel.state["transfers"][once]) == 1


@pytest.mark.parametrize("status", [500, 503])
async def test_a_failing_front_end_is_unknown_and_takes_nothing(
    sim: RunningSimulator, http: httpx.AsyncClient, adapter: DingConnect, status: int
) -> None:
    await behave(http, sim, http_status=status)
    channel, ref = access(sim), new_ref()
    outcome = await adapter.dispatch(channel, order(ref))
    assert (outcome.kind, outcome.code) == ("unknown", f"http_{status}")
    assert (await adapter.query(channel, question(ref))).status == "not_found"


async def test_gibberish_is_unknown_but_the_order_was_taken(
    sim: RunningSimulator, http: httpx.AsyncClient, adapter: DingConnect
) -> None:
    await behave(http, sim, malformed_reply=True)
    channel, ref = access(sim), new_ref()
    outcome = await adapter.dispatch(channel, order(ref))
    assert (outcome.kind, outcome.code) == ("unknown", "malformed_reply")
    assert (await settle(adapter, channel, ref)).status == "success"


async def test_a_hang_is_a_timeout_then_the_query_answers(
    sim: RunningSimulator, http: httpx.AsyncClient, adapter: DingConnect
) -> None:
    await behave(http, sim, hang_s=0.4)
    ref = new_ref()
    outcome = await adapter.dispatch(access(sim, timeout_s=0.1), order(ref))
    assert (outcome.kind, outcome.code) == ("unknown", "timeout")
    assert (await settle(adapter, access(sim), ref)).status == "success"


async def test_callbacks_do_not_exist(sim: RunningSimulator, adapter: DingConnect) -> None:
    ref = new_ref()
    assert (await adapter.dispatch(access(sim), order(ref))).kind == "accepted"
    channel = sim.simulator.channels["dc1"]
    assert mode.callback(channel, channel.orders[ref], "success", time.time()) is None
    forged = orjson.dumps({"DistributorRef": ref, "ProcessingState": "Complete"})
    request = port.CallbackRequest("POST", "/callbacks/dingconnect/dc1", {"api_key": API_KEY}, forged)
    with pytest.raises(port.CallbackRefused) as refused:
        adapter.parse_callback(access(sim), request, time.time())
    assert refused.value.kind == "malformed"


async def test_other_protocols_channels_are_not_dingconnect(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    headers = {"api_key": API_KEY}
    for code in ("tj1", "nosuch"):
        base = sim.base_url(code)
        assert (await http.post(f"{base}/SendTransfer", json={}, headers=headers)).status_code == 404
        assert (await http.post(f"{base}/ListTransferRecords", json={}, headers=headers)).status_code == 404
        assert (await http.get(f"{base}/GetBalance", headers=headers)).status_code == 404


async def test_a_malformed_transfer_request_is_a_400(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    url = f"{sim.base_url('dc1')}/SendTransfer"
    reply = await http.post(url, json={"SkuCode": "X"}, headers={"api_key": API_KEY})
    assert reply.status_code == 400
    assert reply.json()["ErrorCodes"][0]["Code"] == "BadRequest"
