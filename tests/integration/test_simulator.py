"""The supplier simulator over real loopback HTTP, driven through SupplierClient.

The simulator and a small callback receiver each run under uvicorn on a background thread.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI, Request, Response

from topup.adapters.suppliers.protocols.topup_json import DispatchRequest, SupplierClient
from topup.adapters.suppliers.simulator import BackgroundServer, RunningSimulator, start_in_thread
from topup.adapters.suppliers.simulator.behaviour import ChannelBehaviour, channel_rng, decide
from topup.signing import SignatureError, verify

SECRETS = {"supA": "secret-A", "supB": "secret-B"}
CONFIG: dict[str, Any] = {
    "seed": 7,
    "callback_retry_backoff_s": 0.02,
    "defaults": {"callback_delay_s": 0.05},
    "channels": {code: {"secret": secret} for code, secret in SECRETS.items()},
}
TIMEOUT_S = 2.0


class Receiver:
    """The platform's side of callbacks: verifies signatures and records what arrived."""

    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets = secrets
        self.callbacks: list[dict[str, Any]] = []
        self.rejected_signatures = 0
        self.fail_next = 0  # answer 503 to this many callbacks first
        self._changed = threading.Condition()
        self.app = FastAPI()
        self.app.add_api_route("/callbacks/topup-json/{channel}", self._receive, methods=["POST"])

    async def _receive(self, channel: str, request: Request) -> Response:
        body = await request.body()
        target = request.scope["raw_path"].decode()
        try:
            verify(self.secrets[channel], request.headers, "POST", target, body, time.time())
        except SignatureError:
            with self._changed:
                self.rejected_signatures += 1
                self._changed.notify_all()
            return Response(status_code=401)
        with self._changed:
            if self.fail_next > 0:
                self.fail_next -= 1
                return Response(status_code=503)
            self.callbacks.append({"channel": channel, **orjson.loads(body)})
            self._changed.notify_all()
        return Response(orjson.dumps({"received": True}), media_type="application/json")

    def for_ref(self, ref: str) -> list[dict[str, Any]]:
        with self._changed:
            return [c for c in self.callbacks if c["ref"] == ref]

    def reset(self) -> None:
        with self._changed:
            self.callbacks.clear()
            self.rejected_signatures = 0
            self.fail_next = 0

    async def wait_for(self, ref: str, count: int = 1, timeout_s: float = TIMEOUT_S) -> list[dict[str, Any]]:
        def wait() -> bool:
            with self._changed:
                return self._changed.wait_for(lambda: len(self.for_ref(ref)) >= count, timeout_s)

        assert await asyncio.to_thread(wait), f"{count} callback(s) for {ref} did not arrive"
        return self.for_ref(ref)

    async def wait_for_rejections(self, count: int) -> None:
        def wait() -> bool:
            with self._changed:
                return self._changed.wait_for(lambda: self.rejected_signatures >= count, TIMEOUT_S)

        assert await asyncio.to_thread(wait)


@pytest.fixture(scope="module")
def receiver_and_server() -> Iterator[tuple[Receiver, BackgroundServer]]:
    receiver = Receiver(SECRETS)
    with BackgroundServer(receiver.app) as server:
        yield receiver, server


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    running = start_in_thread(CONFIG)
    yield running
    running.stop()


@pytest.fixture
def receiver(receiver_and_server: tuple[Receiver, BackgroundServer]) -> Receiver:
    return receiver_and_server[0]


@pytest.fixture
def callback_base(receiver_and_server: tuple[Receiver, BackgroundServer]) -> str:
    return f"{receiver_and_server[1].url}/callbacks/topup-json"


@pytest.fixture
async def http(sim: RunningSimulator, receiver: Receiver) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        (await client.post(f"{sim.url}/control/reset")).raise_for_status()
        receiver.reset()
        yield client


@pytest.fixture
def supplier(http: httpx.AsyncClient) -> SupplierClient:
    return SupplierClient(http, now=time.time)


class Orders:
    """Builds dispatch requests with unique refs that call back to the receiver."""

    def __init__(self, callback_base: str) -> None:
        self.callback_base = callback_base
        self.n = 0

    def __call__(self, channel: str = "supA", account: str = "13800138000") -> DispatchRequest:
        self.n += 1
        return DispatchRequest(
            ref=f"ord_{time.monotonic_ns()}-{self.n}",
            product_code="airtime.50",
            business_type="mobile_airtime",
            account=account,
            face_value=5000,
            callback_url=f"{self.callback_base}/{channel}",
            extra={},
        )


@pytest.fixture
def order(callback_base: str) -> Orders:
    return Orders(callback_base)


async def configure(http: httpx.AsyncClient, sim: RunningSimulator, code: str, **fields: Any) -> None:
    response = await http.put(f"{sim.url}/control/channels/{code}", json=fields)
    assert response.status_code in (200, 201), response.text


async def order_detail(
    http: httpx.AsyncClient, sim: RunningSimulator, code: str, ref: str, callbacks: int
) -> dict[str, Any]:
    """The simulator's record of an order once it has logged `callbacks` finished deliveries.

    The receiver sees a callback before the simulator has read the reply, so poll briefly.
    """
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        detail: dict[str, Any] = (await http.get(f"{sim.url}/control/orders/{code}/{ref}")).json()
        if len(detail.get("callbacks", [])) >= callbacks or time.monotonic() > deadline:
            return detail
        await asyncio.sleep(0.01)


async def stats(http: httpx.AsyncClient, sim: RunningSimulator) -> dict[str, Any]:
    response = await http.get(f"{sim.url}/control/stats")
    response.raise_for_status()
    return response.json()["channels"]  # type: ignore[no-any-return]


async def test_accepted_order_calls_back_success_and_query_follows_it(
    sim: RunningSimulator,
    http: httpx.AsyncClient,
    supplier: SupplierClient,
    receiver: Receiver,
    order: Orders,
) -> None:
    await configure(http, sim, "supA", callback_delay_s=0.3)
    req = order()
    outcome = await supplier.dispatch(sim.base_url("supA"), SECRETS["supA"], req, TIMEOUT_S)
    assert outcome.kind == "accepted" and outcome.supplier_order_id

    early = await supplier.query(sim.base_url("supA"), SECRETS["supA"], req.ref, TIMEOUT_S)
    assert early.status == "processing"

    (callback,) = await receiver.wait_for(req.ref)
    assert callback["status"] == "success"
    assert callback["supplier_order_id"] == outcome.supplier_order_id
    late = await supplier.query(sim.base_url("supA"), SECRETS["supA"], req.ref, TIMEOUT_S)
    assert late.status == "success"


async def test_failure_and_reject_by_account(
    sim: RunningSimulator,
    http: httpx.AsyncClient,
    supplier: SupplierClient,
    receiver: Receiver,
    order: Orders,
) -> None:
    await configure(http, sim, "supB", fail_accounts=["13900000001"], reject_accounts=["13900000002"])
    base, secret = sim.base_url("supB"), SECRETS["supB"]
    failing, rejected = order("supB", "13900000001"), order("supB", "13900000002")

    assert (await supplier.dispatch(base, secret, failing, TIMEOUT_S)).kind == "accepted"
    outcome = await supplier.dispatch(base, secret, rejected, TIMEOUT_S)
    assert (outcome.kind, outcome.code) == ("rejected", "R01")

    (callback,) = await receiver.wait_for(failing.ref)
    assert (callback["status"], callback["code"], callback["channel"]) == ("failed", "E42", "supB")
    assert (await supplier.query(base, secret, rejected.ref, TIMEOUT_S)).status == "failed"
    assert receiver.for_ref(rejected.ref) == []


async def test_reject_ratio(
    sim: RunningSimulator, http: httpx.AsyncClient, supplier: SupplierClient, order: Orders
) -> None:
    await configure(http, sim, "supA", reject_ratio=1.0)
    outcome = await supplier.dispatch(sim.base_url("supA"), SECRETS["supA"], order(), TIMEOUT_S)
    assert (outcome.kind, outcome.code) == ("rejected", "R01")


async def test_silent_orders_answer_queries_and_never_call_back(
    sim: RunningSimulator,
    http: httpx.AsyncClient,
    supplier: SupplierClient,
    receiver: Receiver,
    order: Orders,
) -> None:
    await configure(http, sim, "supA", silent_accounts=["13700000000"], silent_query="not_found")
    base, secret = sim.base_url("supA"), SECRETS["supA"]
    silent, normal = order(account="13700000000"), order()
    assert (await supplier.dispatch(base, secret, silent, TIMEOUT_S)).kind == "accepted"
    assert (await supplier.dispatch(base, secret, normal, TIMEOUT_S)).kind == "accepted"

    # The normal order's callback was due after the silent one's would have been.
    await receiver.wait_for(normal.ref)
    assert receiver.for_ref(silent.ref) == []
    assert (await supplier.query(base, secret, silent.ref, TIMEOUT_S)).status == "not_found"
    assert (await supplier.query(base, secret, "never-sent", TIMEOUT_S)).status == "not_found"

    await configure(http, sim, "supA", query_answer="failed")
    assert (await supplier.query(base, secret, normal.ref, TIMEOUT_S)).status == "failed"


async def test_late_success_for_silent_order(
    sim: RunningSimulator,
    http: httpx.AsyncClient,
    supplier: SupplierClient,
    receiver: Receiver,
    order: Orders,
) -> None:
    await configure(http, sim, "supA", silent_ratio=1.0, late_success_after_s=0.3)
    base, secret = sim.base_url("supA"), SECRETS["supA"]
    req = order()
    assert (await supplier.dispatch(base, secret, req, TIMEOUT_S)).kind == "accepted"
    assert (await supplier.query(base, secret, req.ref, TIMEOUT_S)).status == "processing"
    (callback,) = await receiver.wait_for(req.ref)
    assert callback["status"] == "success"
    assert (await supplier.query(base, secret, req.ref, TIMEOUT_S)).status == "success"


async def test_duplicate_callbacks(
    sim: RunningSimulator,
    http: httpx.AsyncClient,
    supplier: SupplierClient,
    receiver: Receiver,
    order: Orders,
) -> None:
    await configure(http, sim, "supA", duplicate_callbacks=3)
    req = order()
    await supplier.dispatch(sim.base_url("supA"), SECRETS["supA"], req, TIMEOUT_S)
    callbacks = await receiver.wait_for(req.ref, count=3)
    assert len(callbacks) == 3
    assert {c["supplier_order_id"] for c in callbacks} == {callbacks[0]["supplier_order_id"]}


async def test_repeated_ref_is_deduped_but_counted(
    sim: RunningSimulator,
    http: httpx.AsyncClient,
    supplier: SupplierClient,
    receiver: Receiver,
    order: Orders,
) -> None:
    base, secret = sim.base_url("supA"), SECRETS["supA"]
    req, fence = order(), order()
    outcomes = [await supplier.dispatch(base, secret, req, TIMEOUT_S) for _ in range(3)]
    assert {o.supplier_order_id for o in outcomes} == {outcomes[0].supplier_order_id}
    await supplier.dispatch(base, secret, fence, TIMEOUT_S)

    await receiver.wait_for(req.ref)
    await receiver.wait_for(fence.ref)  # due after any second callback for req would have come
    assert len(receiver.for_ref(req.ref)) == 1
    await order_detail(http, sim, "supA", req.ref, callbacks=1)
    channel_stats = (await stats(http, sim))["supA"]
    assert channel_stats["dispatches"] == {req.ref: 3, fence.ref: 1}
    assert channel_stats["dispatch_total"] == 4
    assert channel_stats["callbacks"][req.ref] == 1


async def test_bad_signature_is_401_and_not_counted(
    sim: RunningSimulator, http: httpx.AsyncClient, supplier: SupplierClient, order: Orders
) -> None:
    base = sim.base_url("supA")
    outcome = await supplier.dispatch(base, "wrong-secret", order(), TIMEOUT_S)
    assert (outcome.kind, outcome.code, outcome.http_status) == ("unknown", "http_401", 401)
    query = await supplier.query(base, "wrong-secret", "x", TIMEOUT_S)
    assert (query.status, query.http_status) == ("error", 401)

    unsigned = await http.post(f"{base}/orders", content=b"{}")
    assert unsigned.status_code == 401
    assert unsigned.json()["error"]["code"] == "unauthorized"
    assert (await stats(http, sim))["supA"]["dispatch_total"] == 0


async def test_callbacks_are_signed_with_the_channel_secret_and_retried(
    sim: RunningSimulator,
    http: httpx.AsyncClient,
    supplier: SupplierClient,
    receiver: Receiver,
    order: Orders,
) -> None:
    receiver.fail_next = 2
    req = order()
    await supplier.dispatch(sim.base_url("supA"), SECRETS["supA"], req, TIMEOUT_S)
    await receiver.wait_for(req.ref)
    detail = await order_detail(http, sim, "supA", req.ref, callbacks=1)
    assert detail["callbacks"][0]["attempts"] == 3 and detail["callbacks"][0]["delivered"]

    # A channel whose secret the platform does not share: the receiver refuses every try.
    await configure(http, sim, "supA", secret="rotated")
    await supplier.dispatch(sim.base_url("supA"), "rotated", order(), TIMEOUT_S)
    await receiver.wait_for_rejections(1)


async def test_unknown_outcomes_from_status_malformed_and_hang(
    sim: RunningSimulator,
    http: httpx.AsyncClient,
    supplier: SupplierClient,
    receiver: Receiver,
    order: Orders,
) -> None:
    base, secret = sim.base_url("supA"), SECRETS["supA"]

    await configure(http, sim, "supA", http_status=503)
    req = order()
    outcome = await supplier.dispatch(base, secret, req, TIMEOUT_S)
    assert (outcome.kind, outcome.code) == ("unknown", "http_503")
    assert (await supplier.query(base, secret, req.ref, TIMEOUT_S)).status == "not_found"

    await configure(http, sim, "supA", http_status=None, malformed_reply=True)
    req = order()
    outcome = await supplier.dispatch(base, secret, req, TIMEOUT_S)
    assert (outcome.kind, outcome.code) == ("unknown", "malformed_reply")
    await receiver.wait_for(req.ref)  # the order was taken all the same

    await configure(http, sim, "supA", malformed_reply=False, hang_s=0.5)
    req = order()
    outcome = await supplier.dispatch(base, secret, req, 0.1)
    assert (outcome.kind, outcome.code) == ("unknown", "timeout")
    (callback,) = await receiver.wait_for(req.ref)
    assert callback["status"] == "success"


async def test_callback_before_reply(
    sim: RunningSimulator,
    http: httpx.AsyncClient,
    supplier: SupplierClient,
    receiver: Receiver,
    order: Orders,
) -> None:
    await configure(http, sim, "supA", callback_before_reply=True)
    req = order()
    outcome = await supplier.dispatch(sim.base_url("supA"), SECRETS["supA"], req, TIMEOUT_S)
    assert outcome.kind == "accepted"
    assert [c["status"] for c in receiver.for_ref(req.ref)] == ["success"]


async def test_control_api(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    created = await http.put(f"{sim.url}/control/channels/supZ", json={"secret": "z", "success_ratio": 0.5})
    assert created.status_code == 201
    updated = await http.put(f"{sim.url}/control/channels/supZ", json={"reject_ratio": 0.25})
    assert updated.status_code == 200
    behaviour = (await http.get(f"{sim.url}/control/channels/supZ")).json()["behaviour"]
    assert (behaviour["secret"], behaviour["success_ratio"], behaviour["reject_ratio"]) == ("z", 0.5, 0.25)
    assert behaviour["callback_delay_s"] == 0.05  # from the config defaults

    invalid = await http.put(f"{sim.url}/control/channels/supZ", json={"success_ratio": 2})
    assert invalid.status_code == 422
    assert (await http.put(f"{sim.url}/control/channels/supZ", json={"bogus": 1})).status_code == 422
    assert (await http.get(f"{sim.url}/control/channels/nope")).status_code == 404

    await http.post(f"{sim.url}/control/reset")
    assert (await http.get(f"{sim.url}/control/channels/supZ")).status_code == 404


async def test_unknown_channel_is_404(sim: RunningSimulator, supplier: SupplierClient, order: Orders) -> None:
    outcome = await supplier.dispatch(sim.base_url("nope"), "x", order(), TIMEOUT_S)
    assert (outcome.kind, outcome.code) == ("unknown", "http_404")


def test_seeded_decisions_repeat() -> None:
    behaviour = ChannelBehaviour(success_ratio=0.5, reject_ratio=0.2, silent_ratio=0.2)
    first = [decide(behaviour, "1", rng) for rng in [channel_rng(3, "supA")] for _ in range(50)]
    again = [decide(behaviour, "1", rng) for rng in [channel_rng(3, "supA")] for _ in range(50)]
    assert first == again
    assert len(set(first)) == 4
