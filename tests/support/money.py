"""An in-process platform for the money tests: the real app and services over ASGI, a scripted supplier
(`FakeSupplier` as topup-json), a fake clock, and route jobs run on demand (no background worker), so
a test decides every attempt's outcome and every timestamp."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx
import orjson

from tests.support.platform import ADMIN_TOKEN
from topup import bootstrap
from topup.adapters.suppliers.fake import FakeSupplier
from topup.clock import FakeClock
from topup.config import Settings
from topup.domain.orders import AttemptStatus
from topup.domain.suppliers import CallbackData, DispatchOutcome
from topup.entrypoints.api.app import create_app
from topup.services import jobs
from topup.services.jobs import Job
from topup.services.ports.jobs import StoredJob
from topup.signing import MERCHANT_HEADER, signed_headers

T = TypeVar("T")
START = 1_714_521_600.0  # 2024-05-01T00:00:00Z
PRODUCT = "airtime.50"
PRICE = 4980
ACCOUNT = "13800138000"
MERCHANT, SECRET = "m1", "merchant-secret-0001"


class Money:
    """One platform on `database_url`; every coroutine runs on the caller's event loop."""

    def __init__(self, database_url: str, start: float = START, *, inline_dispatch_max: int = 0) -> None:
        self.clock = FakeClock(start)
        self.fake = FakeSupplier()
        settings = Settings(
            database_url=database_url,
            admin_token=ADMIN_TOKEN,
            allow_private_notify_urls=True,
            db_pool_size=2,
            public_url="http://platform.test",
            # Steps run one at a time here (`run_routes`): every order waits for its route job unless a
            # test asks for the inline first dispatch (test_inline_dispatch.py).
            inline_dispatch_max=inline_dispatch_max,
        )
        self.c = bootstrap.build(settings, clock=self.clock, suppliers={"topup-json": self.fake})
        self.app = create_app(self.c, worker=False)
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://platform.test"
        )

    async def start(self) -> Money:
        await self.c.start()
        return self

    async def close(self) -> None:
        await self.http.aclose()
        await self.c.close()

    # ---- the operator and merchant APIs ---------------------------------------------------------------

    async def admin(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", **kw.pop("headers", {})}
        return await self.http.request(method, path, headers=headers, **kw)

    async def ok(self, method: str, path: str, **kw: Any) -> Any:
        r = await self.admin(method, path, **kw)
        assert r.status_code in (200, 201), (r.status_code, r.text)
        return r.json()

    async def catalog(
        self,
        channels: dict[str, dict[str, Any]],
        *,
        group: str = "air",
        price: int = PRICE,
        balance: int = 10_000_000,
    ) -> None:
        """airtime.50 at `price`, the channels (each `{"costs": {...}, "products": {...}}`) as members of
        one priority group in the given order, and merchant m1 with `balance`."""
        await self.ok(
            "PUT",
            f"/admin/v1/products/{PRODUCT}",
            json={
                "business_type": "mobile_airtime",
                "brand": "auto",
                "name": "50",
                "face_value": 5000,
                "price": price,
            },
        )
        members = []
        for i, (code, conf) in enumerate(channels.items(), start=1):
            body = {
                "name": code,
                "protocol": "topup-json",
                "base_url": "http://supplier.test",
                "secret": "sim-secret",
                "timeout_s": 30,
                "max_wait_s": 60,
                "supports_query": True,
                "enabled": True,
                "products": conf.get("products", {}),
            }
            await self.ok("PUT", f"/admin/v1/channels/{code}", json=body)
            members.append({"channel": code, "priority": i, "weight": 1, "costs": conf.get("costs", {})})
        await self.ok(
            "PUT",
            f"/admin/v1/groups/{group}",
            json={
                "business_type": "mobile_airtime",
                "brand": None,
                "strategy": "priority",
                "sticky": False,
                "recovery_s": 300,
                "members": members,
            },
        )
        await self.ok("PUT", f"/admin/v1/merchants/{MERCHANT}", json={"name": MERCHANT, "secret": SECRET})
        await self.ok(
            "POST",
            f"/admin/v1/merchants/{MERCHANT}/credits",
            json={"amount": balance, "reference": f"init-{group}"},
        )
        self.c.cache.invalidate()

    async def order(self, merchant_order_id: str, account: str = ACCOUNT, *, route: bool = True) -> str:
        """Place an order (signed) and (`route`) run its routing until nothing is left to do; its id."""
        body = orjson.dumps(
            {"merchant_order_id": merchant_order_id, "product_code": PRODUCT, "account": account}
        )
        headers = signed_headers(SECRET, "POST", "/v1/orders", body, self.clock.now())
        headers[MERCHANT_HEADER] = MERCHANT
        headers["Content-Type"] = "application/json"
        r = await self.http.post("/v1/orders", content=body, headers=headers)
        assert r.status_code in (200, 201), r.text
        if route:
            await self.run_routes()
        return str(r.json()["order_id"])

    async def run_jobs(self, kind: str) -> int:
        """Run the queued jobs of `kind` that are due now, once each; how many ran."""
        async with self.c.db.reads() as tx:
            rows = await tx.fetch(
                "SELECT id, kind, key, payload, tries FROM jobs WHERE kind = $1 AND run_at <= $2",
                kind,
                self.clock.now(),
            )
        for r in rows:
            raw = orjson.loads(r.payload) if isinstance(r.payload, str | bytes) else r.payload
            job = jobs.decode(StoredJob(int(r.id), r.kind, r.key, raw or {}, int(r.tries)))
            await self.c.job_handlers.for_kind(job.kind)(job)
        return len(rows)

    async def run_routes(self) -> None:
        """Run queued route jobs (dispatch through the fake supplier) until none is left."""
        for _ in range(100):
            async with self.c.db.reads() as tx:
                rows = await tx.fetch("SELECT id, kind, key, payload, tries FROM jobs WHERE kind = 'route'")
            if not rows:
                return
            for r in rows:
                raw = orjson.loads(r.payload) if isinstance(r.payload, str | bytes) else r.payload
                payload = jobs.from_json(jobs.RoutePayload, raw)
                await self.c.fulfilment.handle_route(
                    Job(int(r.id), jobs.JobKind.ROUTE, r.key, payload, int(r.tries))
                )
        raise AssertionError("route jobs keep coming")

    # ---- scripting the supplier -------------------------------------------------------------------------

    def script(self, *outcomes: DispatchOutcome) -> None:
        """The next dispatches' replies, in order (then: accepted, awaiting a callback)."""
        self.fake.script_dispatch(*outcomes)

    async def abandon(self, ref: str) -> None:
        """What a deadline does to a silent attempt: abandon it (the order moves on)."""
        async with self.c.db.transaction() as tx:
            attempt = await tx.orders.attempt(ref)
            assert attempt is not None
            await self.c.fulfilment.fail_attempt(tx, attempt, "timeout: no callback", AttemptStatus.ABANDONED)
        await self.run_routes()

    async def callback(self, channel: str, supplier_ref: str, status: str) -> str:
        async with self.c.db.transaction() as tx:
            data = CallbackData(supplier_ref, status)  # type: ignore[arg-type]
            outcome = await self.c.fulfilment.receive_callback(tx, channel, data)
        await self.run_routes()
        return outcome

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        async with self.c.db.reads() as tx:
            return await tx.fetch(sql, *args)


def succeeded(cost: int | None = None) -> DispatchOutcome:
    return DispatchOutcome("succeeded", "sup-1", cost=cost)


def failed() -> DispatchOutcome:
    return DispatchOutcome("failed", code="E42")


def rejected() -> DispatchOutcome:
    return DispatchOutcome.rejected("R01")


def accepted(cost: int | None = None) -> DispatchOutcome:
    return DispatchOutcome.accepted("sup-1", cost=cost)


class Loop:
    """A private event loop for synchronous tests (hypothesis) that drive a `Money` platform."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.loop.close()
