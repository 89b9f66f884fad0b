"""The `juhe` adapter against the simulator's `juhe` mode over real loopback HTTP.

The simulator and a small callback receiver (which verifies with the adapter's own `parse_callback` and
answers its `ack`) each run under uvicorn on a background thread; no platform is involved.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from topup.adapters.suppliers.protocols import juhe
from topup.adapters.suppliers.simulator import BackgroundServer, RunningSimulator, start_in_thread
from topup.domain import suppliers as port

OPENID, KEY = "JHsimopenid01", "sim-key-01"
CREDENTIALS = {"openid": OPENID, "key": KEY}
OK, FAILS, SILENT, REFUSED = "13800000001", "13800000002", "13800000003", "13800000004"
FUEL_CARD = "1000111100000123456"
FUEL_PRODUCTS = {"fuel.sinopec.100": {"proid": "10001", "cardnum": "1"}}
NOT_FOUND = {"not_found_codes": [208516]}
WAIT_S = 2.0


def refuse(request: httpx.Request) -> httpx.Response:
    raise AssertionError("the receiver's adapter sends nothing")


class Receiver:
    """The platform's side of Juhe callbacks: verified and acknowledged by the adapter itself."""

    def __init__(self, keys: dict[str, str]) -> None:
        self.keys = keys
        self.adapter = juhe.create(httpx.AsyncClient(transport=httpx.MockTransport(refuse)), time.time)
        self.stored: list[tuple[str, port.CallbackData, str]] = []
        self.refused: list[str] = []
        self.answer_503 = False
        self._changed = threading.Condition()
        self.app = FastAPI()
        self.app.add_api_route("/callbacks/juhe/{channel}", self._receive, methods=["POST"])

    def access(self, code: str) -> port.ChannelAccess:
        credentials = {"openid": OPENID, "key": self.keys[code]}
        return port.ChannelAccess(code, "juhe", "", credentials, {}, {}, 1.0, "")

    async def _receive(self, channel: str, request: Request) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        incoming = port.CallbackRequest("POST", request.url.path, headers, await request.body())
        try:
            data = self.adapter.parse_callback(self.access(channel), incoming, time.time())
        except port.CallbackRefused as refused:
            with self._changed:
                self.refused.append(refused.kind)
                self._changed.notify_all()
            return Response(status_code=401 if refused.kind == "unauthorized" else 400)
        if self.answer_503:
            return Response(status_code=503)
        with self._changed:
            self.stored.append((channel, data, headers.get("content-type", "")))
            self._changed.notify_all()
        ack = self.adapter.ack(data)
        return Response(ack.body, status_code=ack.status_code, media_type=ack.media_type)

    def reset(self) -> None:
        with self._changed:
            self.stored.clear()
            self.refused.clear()
            self.answer_503 = False

    def for_ref(self, ref: str) -> list[port.CallbackData]:
        with self._changed:
            return [data for _, data, _ in self.stored if data.supplier_ref == ref]

    async def wait_for(self, ref: str) -> port.CallbackData:
        def wait() -> bool:
            with self._changed:
                return self._changed.wait_for(lambda: bool(self.for_ref(ref)), WAIT_S)

        assert await asyncio.to_thread(wait), f"no callback for {ref}"
        return self.for_ref(ref)[0]

    async def wait_for_refusals(self, count: int) -> None:
        def wait() -> bool:
            with self._changed:
                return self._changed.wait_for(lambda: len(self.refused) >= count, WAIT_S)

        assert await asyncio.to_thread(wait), f"{count} refusals did not arrive"


@pytest.fixture(scope="module")
def receiver_and_server() -> Iterator[tuple[Receiver, BackgroundServer]]:
    # The receiver knows jhbad by another key than the simulator signs with: its callbacks are forged.
    receiver = Receiver({"jh": KEY, "jhbad": "platform-key"})
    with BackgroundServer(receiver.app) as server:
        yield receiver, server


@pytest.fixture(scope="module")
def sim(receiver_and_server: tuple[Receiver, BackgroundServer]) -> Iterator[RunningSimulator]:
    callbacks = f"{receiver_and_server[1].url}/callbacks/juhe"
    common = {"protocol": "juhe", "credentials": CREDENTIALS, "callback_delay_s": 0.05}
    config = {
        "seed": 3,
        "callback_retry_backoff_s": 0.01,
        "channels": {
            "jh": {
                **common,
                "callback_url": f"{callbacks}/jh",
                "fail_accounts": [FAILS],
                "silent_accounts": [SILENT],
                "reject_accounts": [REFUSED],
            },
            "jhbad": {**common, "callback_url": f"{callbacks}/jhbad"},
            "tj": {"secret": "topup-json-secret"},
        },
    }
    running = start_in_thread(config)
    yield running
    running.stop()


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
def adapter(http: httpx.AsyncClient) -> juhe.Juhe:
    return juhe.create(http, time.time)


def access(
    sim: RunningSimulator,
    code: str = "jh",
    options: dict[str, Any] | None = None,
    credentials: dict[str, str] | None = None,
    timeout_s: float = WAIT_S,
) -> port.ChannelAccess:
    return port.ChannelAccess(
        code=code,
        protocol="juhe",
        base_url=sim.base_url(code),
        credentials=credentials or CREDENTIALS,
        products=FUEL_PRODUCTS,
        options=NOT_FOUND if options is None else options,
        timeout_s=timeout_s,
        callback_url="unused: Juhe takes it from its console",
    )


def airtime(ref: str, account: str = OK, face_value: int = 5000) -> port.DispatchRequest:
    return port.DispatchRequest(ref, ref, "airtime.50", "mobile_airtime", account, face_value, "cmcc")


def fuel(ref: str) -> port.DispatchRequest:
    return port.DispatchRequest(ref, ref, "fuel.sinopec.100", "fuel_card", FUEL_CARD, 10000, "sinopec")


def query(ref: str, business_type: str = "mobile_airtime") -> port.QueryRequest:
    return port.QueryRequest(ref, ref, "airtime.50", business_type)


async def configure(http: httpx.AsyncClient, sim: RunningSimulator, code: str, **patch: Any) -> None:
    (await http.put(f"{sim.url}/control/channels/{code}", json=patch)).raise_for_status()


async def delivery(http: httpx.AsyncClient, sim: RunningSimulator, code: str, ref: str) -> dict[str, Any]:
    """The simulator's record of the first callback for `ref`, once its retries are over."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        order = (await http.get(f"{sim.url}/control/orders/{code}/{ref}")).json()
        if order.get("callbacks"):
            return order["callbacks"][0]  # type: ignore[no-any-return]
        await asyncio.sleep(0.02)
    raise AssertionError(f"no callback record for {ref}")


# ---- the order paths -----------------------------------------------------------------------------


async def test_accepted_then_success_callback(
    adapter: juhe.Juhe, sim: RunningSimulator, receiver: Receiver
) -> None:
    outcome = await adapter.dispatch(access(sim), airtime("refOK00001"))
    assert outcome.kind == "accepted" and outcome.supplier_order_id
    assert outcome.cost == 5000
    data = await receiver.wait_for("refOK00001")
    assert (data.status, data.supplier_order_id) == ("success", outcome.supplier_order_id)
    assert receiver.stored[0][2] == "application/x-www-form-urlencoded"
    assert (await adapter.query(access(sim), query("refOK00001"))).status == "success"


async def test_failure_callback(adapter: juhe.Juhe, sim: RunningSimulator, receiver: Receiver) -> None:
    outcome = await adapter.dispatch(access(sim), airtime("refFAIL0001", FAILS))
    assert outcome.kind == "accepted"
    data = await receiver.wait_for("refFAIL0001")
    assert (data.status, data.code) == ("failed", "sta_9")
    assert data.message and "E42" in data.message
    assert (await adapter.query(access(sim), query("refFAIL0001"))).status == "failed"


async def test_rejection_is_game_state_9(
    adapter: juhe.Juhe, sim: RunningSimulator, receiver: Receiver
) -> None:
    outcome = await adapter.dispatch(access(sim), airtime("refREJ00001", REFUSED))
    assert (outcome.kind, outcome.code) == ("rejected", "game_state_9")
    assert (await adapter.query(access(sim), query("refREJ00001"))).status == "failed"
    await asyncio.sleep(0.1)
    assert receiver.for_ref("refREJ00001") == []


async def test_numeric_reject_code_is_an_error_code_and_the_order_does_not_exist(
    adapter: juhe.Juhe, sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    await configure(http, sim, "jh", reject_code="10008")
    outcome = await adapter.dispatch(access(sim), airtime("refREJ00002", REFUSED))
    assert (outcome.kind, outcome.code) == ("rejected", "10008")
    assert (await adapter.query(access(sim), query("refREJ00002"))).status == "not_found"


async def test_silence_then_query_processing_then_late_success(
    adapter: juhe.Juhe, sim: RunningSimulator, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    await configure(http, sim, "jh", late_success_after_s=0.2)
    outcome = await adapter.dispatch(access(sim), airtime("refSIL00001", SILENT))
    assert outcome.kind == "accepted"
    answer = await adapter.query(access(sim), query("refSIL00001"))
    assert (answer.status, answer.supplier_order_id) == ("processing", outcome.supplier_order_id)
    assert receiver.for_ref("refSIL00001") == []
    await asyncio.sleep(0.25)
    assert (await adapter.query(access(sim), query("refSIL00001"))).status == "success"
    assert (await receiver.wait_for("refSIL00001")).status == "success"


async def test_unknown_ref_is_not_found_only_with_not_found_codes(
    adapter: juhe.Juhe, sim: RunningSimulator
) -> None:
    answer = await adapter.query(access(sim), query("refNEVER0001"))
    assert (answer.status, answer.code) == ("not_found", "208516")
    assert (await adapter.query(access(sim, options={}), query("refNEVER0001"))).status == "error"


async def test_insufficient_balance(
    adapter: juhe.Juhe, sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    await configure(http, sim, "jh", balance=1000)
    outcome = await adapter.dispatch(access(sim), airtime("refPOOR0001"))
    # 208517 is not a code the spec lists as definite: unknown, and the query settles it.
    assert (outcome.kind, outcome.code) == ("unknown", "208517")
    assert (await adapter.query(access(sim), query("refPOOR0001"))).status == "not_found"
    balance = await adapter.balance(access(sim))
    assert (balance.ok, balance.amount, balance.currency) == (True, 1000, "CNY")


async def test_balance_query_follows_orders(
    adapter: juhe.Juhe, sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    unlimited = await adapter.balance(access(sim))
    assert (unlimited.ok, unlimited.amount) == (True, 10**12)
    await configure(http, sim, "jh", balance=123450)
    assert (await adapter.balance(access(sim))).amount == 123450
    assert (await adapter.dispatch(access(sim), airtime("refBAL00001", face_value=4990))).kind == "accepted"
    assert (await adapter.balance(access(sim))).amount == 123450 - 4990


# ---- fuel cards ----------------------------------------------------------------------------------


async def test_fuel_card_order(
    adapter: juhe.Juhe, sim: RunningSimulator, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    await configure(http, sim, "jh", balance=20000)
    outcome = await adapter.dispatch(access(sim), fuel("refFUEL0001"))
    assert outcome.kind == "accepted"
    assert (await receiver.wait_for("refFUEL0001")).status == "success"
    assert (await adapter.query(access(sim), query("refFUEL0001", "fuel_card"))).status == "success"
    # The order lives under ofpay/sinopec; the mobile family does not know it.
    assert (await adapter.query(access(sim), query("refFUEL0001"))).status == "not_found"
    assert (await adapter.balance(access(sim))).amount == 20000 - 10000  # proid 10001: one 100-yuan card


# ---- Juhe's quirks -------------------------------------------------------------------------------


async def test_forged_callbacks_are_refused_and_retried_only_three_times(
    adapter: juhe.Juhe, sim: RunningSimulator, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    outcome = await adapter.dispatch(access(sim, "jhbad"), airtime("refFORGE001"))
    assert outcome.kind == "accepted"
    await receiver.wait_for_refusals(4)
    record = await delivery(http, sim, "jhbad", "refFORGE001")
    assert (record["delivered"], record["attempts"], record["http_status"]) == (False, 4, 401)
    assert set(receiver.refused) == {"unauthorized"}
    assert receiver.for_ref("refFORGE001") == []


async def test_unacknowledged_callbacks_stop_after_three_retries(
    adapter: juhe.Juhe, sim: RunningSimulator, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    receiver.answer_503 = True
    assert (await adapter.dispatch(access(sim), airtime("refRETRY001"))).kind == "accepted"
    record = await delivery(http, sim, "jh", "refRETRY001")
    assert (record["delivered"], record["attempts"], record["http_status"]) == (False, 4, 503)
    # Juhe gave up: the query path still carries the order.
    assert (await adapter.query(access(sim), query("refRETRY001"))).status == "success"


@pytest.mark.parametrize(
    ("credentials", "code"),
    [({"openid": OPENID, "key": "not-the-key"}, "10001"), ({"openid": "JHsomeoneelse", "key": KEY}, "10004")],
)
async def test_wrong_key_or_sign_is_refused_the_juhe_way(
    adapter: juhe.Juhe, sim: RunningSimulator, http: httpx.AsyncClient, credentials: dict[str, str], code: str
) -> None:
    outcome = await adapter.dispatch(access(sim, credentials=credentials), airtime("refKEY00001"))
    assert (outcome.kind, outcome.code) == ("rejected", code)
    balance = await adapter.balance(access(sim, credentials=credentials))
    assert (balance.ok, balance.code) == (False, code)
    order = await http.get(f"{sim.url}/control/orders/jh/refKEY00001")
    assert order.status_code == 404  # nothing was taken


async def test_front_end_failure_gibberish_and_hang_are_unknown(
    adapter: juhe.Juhe, sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    await configure(http, sim, "jh", http_status=503)
    outcome = await adapter.dispatch(access(sim), airtime("refHTTP0001"))
    assert (outcome.kind, outcome.code) == ("unknown", "http_503")
    assert (await adapter.query(access(sim), query("refHTTP0001"))).status == "not_found"

    await configure(http, sim, "jh", http_status=None, malformed_reply=True)
    outcome = await adapter.dispatch(access(sim), airtime("refGIBB0001"))
    assert (outcome.kind, outcome.code) == ("unknown", "malformed_reply")
    assert (await adapter.query(access(sim), query("refGIBB0001"))).status == "processing"

    await configure(http, sim, "jh", malformed_reply=False, hang_s=0.3)
    outcome = await adapter.dispatch(access(sim, timeout_s=0.1), airtime("refHANG0001"))
    assert (outcome.kind, outcome.code) == ("unknown", "timeout")


async def test_a_repeated_orderid_gets_the_same_answer_and_one_order(
    adapter: juhe.Juhe, sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    first = await adapter.dispatch(access(sim), airtime("refDUP00001"))
    again = await adapter.dispatch(access(sim), airtime("refDUP00001"))
    assert first.supplier_order_id == again.supplier_order_id
    stats = (await http.get(f"{sim.url}/control/stats")).json()["channels"]["jh"]
    assert stats["dispatches"] == {"refDUP00001": 2}
    assert list(stats["orders"]) == ["refDUP00001"]


async def test_channels_of_other_protocols_are_404(http: httpx.AsyncClient, sim: RunningSimulator) -> None:
    reply = await http.post(f"{sim.base_url('tj')}/ofpay/mobile/onlineorder", data={"key": KEY})
    assert reply.status_code == 404
    assert (await http.get(f"{sim.base_url('nosuch')}/ofpay/mobile/yue")).status_code == 404
