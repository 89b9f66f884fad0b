"""The demo's data: one channel per supplier protocol, each first for one carrier's airtime, and an order
for each carrier fulfilled through its protocol's channel (on both databases)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from tests.conftest import start_platform
from tests.support.platform import Platform

from topup import bootstrap
from topup.adapters.suppliers.simulator import start_in_thread
from topup.config import Settings
from topup.domain.catalog import SAMPLE_ACCOUNTS_BY_BRAND
from topup.services import seed
from topup.services.demo_suppliers import DEMO_SUPPLIERS


@pytest.fixture
def demo(database_url: str) -> Iterator[tuple[Platform, Any]]:
    server, p = start_platform(database_url)
    sim = start_in_thread(seed.simulator_config(p.url))
    for code in sim.simulator.channels:  # every demo order succeeds, and quickly
        sim.simulator.configure(
            code,
            sim.simulator.channels[code].behaviour.merged({"success_ratio": 1.0, "callback_delay_s": 0.05}),
        )

    async def seed_it() -> None:
        c = bootstrap.build(Settings(database_url=database_url))
        try:
            async with c.db.transaction() as tx:
                await seed.seed_demo(tx, sim.url, c.box, c.suppliers)
        finally:
            await c.close()

    asyncio.run(seed_it())
    try:
        yield p, sim
    finally:
        sim.stop()
        p.admin.close()
        server.stop()


def test_each_protocol_fulfils_its_carriers_orders(demo: tuple[Platform, Any]) -> None:
    p, sim = demo
    protocols = {ch["code"]: ch["protocol"] for ch in p.admin.get("/admin/v1/channels").json()["items"]}
    assert {protocols[s.code] for s in DEMO_SUPPLIERS} == {"juhe", "reloadly", "dingconnect", "fulu"}
    m = p.merchant(seed.DEMO_MERCHANT, seed.DEMO_SECRET, balance=0)
    for s in DEMO_SUPPLIERS:
        account = SAMPLE_ACCOUNTS_BY_BRAND[s.carrier.value]
        created = m.order(f"demo-{s.code}", product_code="airtime.50", account=account)
        assert created.status_code == 201, created.text
        order = p.wait_order(created.json()["order_id"])
        assert order["status"] == "succeeded", order
        assert [a["channel"] for a in order["attempts"]] == [s.code], (s.protocol, order["attempts"])
        assert sim.simulator.channels[s.code].orders, f"the {s.protocol} simulator saw no order"
    assert p.ledger_check()["balanced"] is True
    m.close()
