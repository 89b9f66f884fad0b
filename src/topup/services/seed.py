"""Seed the default catalog and the demo's suppliers, groups and merchant (idempotent)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from topup.domain import catalog as seed
from topup.domain.suppliers import SupplierProtocol
from topup.keys import CredentialBox
from topup.services import catalog, merchants
from topup.services.demo_suppliers import DEMO_SUPPLIERS, demo_groups
from topup.services.uow import UnitOfWork

DEMO_MERCHANT = "demo"
DEMO_SECRET = "demo-merchant-secret-0001"
DEMO_PASSWORD = "demo-password"


async def seed_products(uow: UnitOfWork) -> int:
    for p in seed.DEFAULT_PRODUCTS:
        data = {k: v for k, v in p.items() if k != "code"}
        await catalog.put_product(uow, p["code"], {**data, "enabled": True})
    return len(seed.DEFAULT_PRODUCTS)


def simulator_config(callback_base: str = "http://127.0.0.1:8080") -> dict[str, Any]:
    """The built-in simulator's behaviour for the demo channels (real-protocol channels call back on
    `callback_base`, the platform's public URL, as those suppliers take it from their console)."""
    channels = {}
    for ch in seed.DEMO_CHANNELS:
        sim = ch["simulation"]
        lo, hi = sim.get("delay_s", [0.2, 0.5])
        channels[ch["code"]] = {
            "secret": ch["secret"],
            "reject_ratio": sim.get("reject_rate", 0.0),
            "success_ratio": 1.0 - sim.get("fail_rate", 0.0),
            "silent_ratio": sim.get("silent_rate", 0.0),
            "callback_delay_s": (lo + hi) / 2,
        }
        if "balance" in sim:
            channels[ch["code"]]["balance"] = sim["balance"]
    for supplier in DEMO_SUPPLIERS:
        channels[supplier.code] = supplier.simulation(callback_base)
    return {"channels": channels}


async def seed_demo(
    uow: UnitOfWork,
    simulator_url: str,
    box: CredentialBox,
    suppliers: Mapping[str, SupplierProtocol],
    balance: int = 10_000_000,
) -> None:
    await seed_products(uow)
    for ch in seed.DEMO_CHANNELS:
        data = {k: v for k, v in ch.items() if k not in ("code", "simulation")}
        data["base_url"] = f"{simulator_url}/sim/{ch['code']}"
        await catalog.put_channel(uow, ch["code"], data, box, suppliers)
    for supplier in DEMO_SUPPLIERS:
        await catalog.put_channel(uow, supplier.code, supplier.channel(simulator_url), box, suppliers)
    for g in [*seed.DEMO_GROUPS, *demo_groups()]:
        group: dict[str, Any] = {k: v for k, v in g.items() if k != "code"}
        group["members"] = [dict(m) for m in g["members"]]
        await catalog.put_group(uow, g["code"], group)
    await merchants.put_merchant(
        uow, DEMO_MERCHANT, {"name": "Demo Merchant", "secret": DEMO_SECRET, "password": DEMO_PASSWORD}
    )
    await merchants.credit(uow, DEMO_MERCHANT, balance, "demo-initial-deposit")
