"""The `fulu` adapter against the simulator's `fulu` mode over real loopback HTTP.

The simulator runs under uvicorn on a background thread; its callbacks go through `callback_transport` to a
receiver that verifies them with the adapter's own `parse_callback`, as the platform would.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

import httpx
import pytest

from topup.adapters.suppliers.protocols import fulu
from topup.adapters.suppliers.simulator import BackgroundServer, create_app
from topup.domain import suppliers as port

APP_KEY, SECRET = "fl-app-key", "fl-app-secret"
WAIT_S = 2.0
CALLBACK_URL = "http://platform.test/callbacks/fulu/fl"
CONFIG: dict[str, Any] = {
    "seed": 3,
    "callback_retries": 1,
    "callback_retry_backoff_s": 0.02,
    "defaults": {"callback_delay_s": 0.05},
    "channels": {
        "fl": {
            "protocol": "fulu",
            "credentials": {"app_key": APP_KEY, "app_secret": SECRET},
            "callback_url": CALLBACK_URL,
        },
        # Signs its callbacks with another secret: the platform must refuse them.
        "forger": {
            "protocol": "fulu",
            "credentials": {"app_key": APP_KEY, "app_secret": "not-the-secret"},
            "callback_url": "http://platform.test/callbacks/fulu/forger",
        },
        "tj": {"protocol": "topup-json", "secret": "tj-secret"},
    },
}
OPTIONS = {"reject_codes": ["3001", "3005"], "not_found_codes": ["2001"], "insufficient_codes": ["4001"]}
PRODUCTS: dict[str, dict[str, Any]] = {"cmcc.50": {}, "vip.month": {"product_id": 10000497}}


def access(base_url: str, secret: str = SECRET, **changes: Any) -> port.ChannelAccess:
    fields: dict[str, Any] = {
        "code": "fl",
        "protocol": "fulu",
        "base_url": base_url,
        "credentials": {"app_key": APP_KEY, "app_secret": secret},
        "products": PRODUCTS,
        "options": OPTIONS,
        "timeout_s": WAIT_S,
        "callback_url": CALLBACK_URL,
        **changes,
    }
    return port.ChannelAccess(**fields)


class Receiver:
    """The platform's callback endpoint: the adapter verifies each callback; answers its ack or 401."""

    def __init__(self) -> None:
        self.adapter = fulu.create(cast(httpx.AsyncClient, None), time.time)  # parses only
        self.channel = access("http://unused")
        self.accepted: list[port.CallbackData] = []
        self.refused: list[str] = []
        self._changed = threading.Condition()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        incoming = port.CallbackRequest(
            request.method, request.url.raw_path.decode(), dict(request.headers), request.content
        )
        with self._changed:
            try:
                data = self.adapter.parse_callback(self.channel, incoming, time.time())
            except port.CallbackRefused as exc:
                self.refused.append(exc.kind)
                self._changed.notify_all()
                return httpx.Response(401 if exc.kind == "unauthorized" else 400)
            self.accepted.append(data)
            self._changed.notify_all()
        ack = self.adapter.ack(data)
        return httpx.Response(ack.status_code, content=ack.body, headers={"content-type": ack.media_type})

    def reset(self) -> None:
        with self._changed:
            self.accepted.clear()
            self.refused.clear()

    async def wait(self, ref: str) -> port.CallbackData:
        def arrived() -> list[port.CallbackData]:
            return [d for d in self.accepted if d.supplier_ref == ref]

        def wait() -> bool:
            with self._changed:
                return self._changed.wait_for(lambda: bool(arrived()), WAIT_S)

        assert await asyncio.to_thread(wait), f"no callback for {ref}"
        return arrived()[0]

    async def wait_refused(self) -> list[str]:
        def wait() -> bool:
            with self._changed:
                return self._changed.wait_for(lambda: bool(self.refused), WAIT_S)

        assert await asyncio.to_thread(wait), "no callback was refused"
        return list(self.refused)


@pytest.fixture(scope="module")
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture(scope="module")
def server(receiver: Receiver) -> Iterator[BackgroundServer]:
    with BackgroundServer(create_app(CONFIG, callback_transport=httpx.MockTransport(receiver))) as running:
        yield running


@pytest.fixture
async def http(server: BackgroundServer, receiver: Receiver) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        (await client.post(f"{server.url}/control/reset")).raise_for_status()
        receiver.reset()
        yield client


@pytest.fixture
def adapter(http: httpx.AsyncClient) -> fulu.Fulu:
    return fulu.create(http, time.time)


@pytest.fixture
def channel(server: BackgroundServer) -> port.ChannelAccess:
    return access(f"{server.url}/sim/fl")


_refs = itertools.count(1)


def airtime(account: str = "13800138000", face_value: int = 5000) -> port.DispatchRequest:
    ref = f"ordT{time.monotonic_ns()}A{next(_refs)}"
    return port.DispatchRequest(ref, ref, "cmcc.50", "mobile_airtime", account, face_value, "cmcc")


def question(req: port.DispatchRequest) -> port.QueryRequest:
    return port.QueryRequest(req.supplier_ref, req.ref, req.product_code, req.business_type)


async def configure(http: httpx.AsyncClient, server: BackgroundServer, code: str, **fields: Any) -> None:
    response = await http.put(f"{server.url}/control/channels/{code}", json=fields)
    assert response.status_code in (200, 201), response.text


async def test_accepted_then_success_callback_and_query_follows(
    http: httpx.AsyncClient,
    server: BackgroundServer,
    adapter: fulu.Fulu,
    channel: port.ChannelAccess,
    receiver: Receiver,
) -> None:
    await configure(http, server, "fl", callback_delay_s=0.3)
    req = airtime()
    outcome = await adapter.dispatch(channel, req)
    assert outcome.kind == "accepted" and outcome.supplier_order_id
    early = await adapter.query(channel, question(req))
    assert early.status == "processing" and early.supplier_order_id == outcome.supplier_order_id

    data = await receiver.wait(req.supplier_ref)
    assert (data.status, data.supplier_order_id, data.message) == (
        "success",
        outcome.supplier_order_id,
        "充值成功",
    )
    assert (await adapter.query(channel, question(req))).status == "success"
    detail = (await http.get(f"{server.url}/control/orders/fl/{req.supplier_ref}")).json()
    assert detail["callbacks"][0]["delivered"] is True  # the simulator read the `success` ack


async def test_membership_goes_through_direct_add(
    http: httpx.AsyncClient,
    server: BackgroundServer,
    adapter: fulu.Fulu,
    channel: port.ChannelAccess,
    receiver: Receiver,
) -> None:
    await configure(http, server, "fl", balance=10_000, options={"prices": {"10000497": 1500}})
    ref = f"ordM{time.monotonic_ns()}"
    req = port.DispatchRequest(ref, ref, "vip.month", "membership", "user@qq.com", 1500)
    assert (await adapter.dispatch(channel, req)).kind == "accepted"
    assert (await receiver.wait(ref)).status == "success"
    balance = await adapter.balance(channel)
    assert (balance.ok, balance.amount, balance.currency) == (True, 8_500, "CNY")


async def test_failure_callback(
    http: httpx.AsyncClient,
    server: BackgroundServer,
    adapter: fulu.Fulu,
    channel: port.ChannelAccess,
    receiver: Receiver,
) -> None:
    await configure(http, server, "fl", fail_accounts=["13900000001"])
    req = airtime("13900000001")
    assert (await adapter.dispatch(channel, req)).kind == "accepted"
    data = await receiver.wait(req.supplier_ref)
    assert data.status == "failed" and data.message == "充值失败 (E42)"
    assert (await adapter.query(channel, question(req))).status == "failed"


async def test_rejection_is_definite_only_for_listed_codes(
    http: httpx.AsyncClient, server: BackgroundServer, adapter: fulu.Fulu, channel: port.ChannelAccess
) -> None:
    await configure(http, server, "fl", reject_accounts=["13900000002"])
    outcome = await adapter.dispatch(channel, airtime("13900000002"))
    assert (outcome.kind, outcome.code, outcome.message) == ("rejected", "3001", "商品暂不可用")

    await configure(http, server, "fl", reject_code="3005")
    assert (await adapter.dispatch(channel, airtime("13900000002"))).code == "3005"
    await configure(http, server, "fl", reject_code="3008")  # not in reject_codes: not definite
    outcome = await adapter.dispatch(channel, airtime("13900000002"))
    assert (outcome.kind, outcome.code) == ("unknown", "3008")


async def test_silence_then_query_processing_then_late_success(
    http: httpx.AsyncClient,
    server: BackgroundServer,
    adapter: fulu.Fulu,
    channel: port.ChannelAccess,
    receiver: Receiver,
) -> None:
    await configure(
        http,
        server,
        "fl",
        silent_accounts=["13900000003"],
        late_success_after_s=0.3,
        options={"processing_state": "untreated"},
    )
    req = airtime("13900000003")
    assert (await adapter.dispatch(channel, req)).kind == "accepted"
    raw = await adapter.query(channel, question(req))
    assert raw.status == "processing" and '\\"order_state\\":\\"untreated\\"' in (raw.raw or "")
    await asyncio.sleep(0.35)
    assert (await adapter.query(channel, question(req))).status == "success"
    assert (await receiver.wait(req.supplier_ref)).status == "success"


async def test_unknown_order_is_not_found(adapter: fulu.Fulu, channel: port.ChannelAccess) -> None:
    req = airtime()  # never dispatched
    outcome = await adapter.query(channel, question(req))
    assert (outcome.status, outcome.code) == ("not_found", "2001")
    without_option = access(channel.base_url, options={})
    outcome = await adapter.query(without_option, question(req))
    assert (outcome.status, outcome.code) == ("error", "2001")


async def test_insufficient_balance_and_balance_query(
    http: httpx.AsyncClient, server: BackgroundServer, adapter: fulu.Fulu, channel: port.ChannelAccess
) -> None:
    await configure(http, server, "fl", balance=12_345)
    before = await adapter.balance(channel)
    assert (before.ok, before.amount, before.currency) == (True, 12_345, "CNY")
    assert (await adapter.dispatch(channel, airtime(face_value=5000))).kind == "accepted"
    short = await adapter.dispatch(channel, airtime(face_value=10_000))
    assert (short.kind, short.code) == ("rejected", "insufficient_balance")
    assert short.message is not None and short.message.startswith("4001")
    assert (await adapter.balance(channel)).amount == 7_345


async def test_unlimited_balance_is_a_large_amount(adapter: fulu.Fulu, channel: port.ChannelAccess) -> None:
    outcome = await adapter.balance(channel)
    assert outcome.ok and outcome.amount == 10**12


async def test_forged_callback_is_refused(
    server: BackgroundServer, adapter: fulu.Fulu, receiver: Receiver
) -> None:
    forger = access(f"{server.url}/sim/forger", secret="not-the-secret")
    assert (await adapter.dispatch(forger, airtime())).kind == "accepted"
    assert set(await receiver.wait_refused()) == {"unauthorized"}
    assert receiver.accepted == []


async def test_wrong_app_key_and_bad_signature_are_refused_fulu_style(
    adapter: fulu.Fulu, channel: port.ChannelAccess
) -> None:
    wrong_key = access(channel.base_url, credentials={"app_key": "nope", "app_secret": SECRET})
    outcome = await adapter.dispatch(wrong_key, airtime())
    assert (outcome.kind, outcome.code) == ("unknown", "1001")
    bad_sign = access(channel.base_url, secret="wrong-secret")
    outcome = await adapter.dispatch(bad_sign, airtime())
    # The supplier signs its refusal with the real secret, so the adapter cannot trust it either.
    assert (outcome.kind, outcome.code) == ("unknown", "bad_signature")
    assert '"code":1002' in (outcome.raw or "")
    assert (await adapter.balance(bad_sign)).code == "bad_signature"


async def test_reply_result_is_a_signed_json_string(
    http: httpx.AsyncClient, channel: port.ChannelAccess, adapter: fulu.Fulu
) -> None:
    req = airtime()
    outcome = await adapter.dispatch(channel, req)
    reply = json.loads(outcome.raw or "")
    assert isinstance(reply["result"], str) and reply["code"] == 0
    expected = hashlib.md5(("".join(sorted(reply["result"])) + SECRET).encode()).hexdigest()
    assert reply["sign"] == expected
    assert json.loads(reply["result"])["customer_order_no"] == req.supplier_ref


async def test_garbage_http_errors_and_hangs_are_unknown(
    http: httpx.AsyncClient, server: BackgroundServer, adapter: fulu.Fulu, channel: port.ChannelAccess
) -> None:
    await configure(http, server, "fl", malformed_reply=True)
    assert (await adapter.dispatch(channel, airtime())).code == "malformed_reply"
    await configure(http, server, "fl", malformed_reply=False, http_status=503)
    assert (await adapter.dispatch(channel, airtime())).code == "http_503"
    await configure(http, server, "fl", http_status=None, hang_s=0.3)
    hurried = access(channel.base_url, timeout_s=0.05)
    outcome = await adapter.dispatch(hurried, airtime())
    assert (outcome.kind, outcome.code) == ("unknown", "timeout")


async def test_repeat_dispatch_gets_the_same_answer(
    http: httpx.AsyncClient, server: BackgroundServer, adapter: fulu.Fulu, channel: port.ChannelAccess
) -> None:
    req = airtime()
    first = await adapter.dispatch(channel, req)
    second = await adapter.dispatch(channel, req)
    assert first.supplier_order_id == second.supplier_order_id
    stats = (await http.get(f"{server.url}/control/stats")).json()["channels"]["fl"]
    assert stats["dispatches"][req.supplier_ref] == 2 and len(stats["orders"]) == 1


async def test_other_protocols_channels_are_not_served_here(
    http: httpx.AsyncClient, server: BackgroundServer, adapter: fulu.Fulu
) -> None:
    response = await http.post(f"{server.url}/sim/tj", json={})
    assert response.status_code == 404
    outcome = await adapter.dispatch(access(f"{server.url}/sim/nochannel"), airtime())
    assert (outcome.kind, outcome.code) == ("unknown", "http_404")


async def test_request_timestamp_is_china_time_and_must_be_fresh(
    http: httpx.AsyncClient, channel: port.ChannelAccess
) -> None:
    # The simulator allows 600 s of skew, so an adapter writing UTC (8 h off) would be refused here.
    assert (await fulu.create(http, time.time).dispatch(channel, airtime())).kind == "accepted"
    late = fulu.create(http, lambda: time.time() - 3600)
    outcome = await late.dispatch(channel, airtime())
    assert (outcome.kind, outcome.code) == ("unknown", "1000")
    assert "timestamp" in (outcome.message or "")
