"""The demo's real-protocol channels: one per supplier protocol, each first in the airtime group of one
carrier, so an order for a China Mobile number goes out as Juhe, Unicom as Reloadly, Telecom as
DingConnect and Broadnet as Fulu (each with the reliable topup-json channel behind it).

Each entry says how the channel is configured on the platform and how the simulator plays that supplier.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from topup.domain import catalog as seed
from topup.domain.accounts import Carrier

_AIRTIME = [p for p in seed.DEFAULT_PRODUCTS if p["business_type"] == seed.AIRTIME]


@dataclass(frozen=True)
class DemoSupplier:
    code: str
    name: str
    protocol: str
    carrier: Carrier
    credentials: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)
    sim_options: dict[str, Any] = field(default_factory=dict)
    operations: dict[str, Any] = field(default_factory=dict)
    """Supplier-operations channel fields (SPEC 7): `min_balance`, `balance_check_s`."""
    sim_balance: int | None = None
    """The simulated supplier account's balance in fen (None: unlimited)."""

    def products(self) -> dict[str, dict[str, Any]]:
        """How each airtime product is named at this supplier."""
        if self.protocol == "juhe":
            return {}  # cardnum defaults to the face value in yuan
        out: dict[str, dict[str, Any]] = {}
        for p in _AIRTIME:
            yuan = p["face_value"] // 100  # whole yuan for every airtime product
            if self.protocol == "reloadly":
                out[p["code"]] = {"operatorId": 1001, "amount": yuan}
            elif self.protocol == "dingconnect":
                entry = {"SkuCode": f"CN_CT_{yuan}", "SendValue": yuan, "SendCurrencyIso": "CNY"}
                out[p["code"]] = entry
            else:
                out[p["code"]] = {}
        return out

    def channel(self, simulator_url: str) -> dict[str, Any]:
        """The channel as `PUT /admin/v1/channels/{code}` takes it."""
        base_url = f"{simulator_url}/sim/{self.code}"
        credentials = dict(self.credentials)
        if self.protocol == "reloadly":
            credentials["auth_url"] = base_url  # the simulator also plays Reloadly's token service
        return {
            "name": self.name,
            "protocol": self.protocol,
            "base_url": base_url,
            "credentials": credentials,
            "products": self.products(),
            "options": self.options,
            "timeout_s": 3.0,
            "max_wait_s": 12.0,
            "supports_query": True,
            "enabled": True,
            **self.operations,
        }

    def simulation(self, callback_base: str) -> dict[str, Any]:
        """The simulator's behaviour for this channel (mostly reliable, a few failures)."""
        return {
            "protocol": self.protocol,
            "credentials": self.credentials,
            "callback_url": f"{callback_base}/callbacks/{self.protocol}/{self.code}",
            "success_ratio": 0.95,
            "callback_delay_s": 0.4,
            "options": {"currency": "CNY", **self.sim_options},
            **({} if self.sim_balance is None else {"balance": self.sim_balance}),
        }


DEMO_SUPPLIERS = [
    DemoSupplier(
        "cmcc-juhe",
        "聚合数据 Juhe (China Mobile airtime)",
        "juhe",
        Carrier.CMCC,
        {"openid": "JHdemoopenid0001", "key": "demo-juhe-key-0001"},
        options={"not_found_codes": [208516]},
        # A small prepaid account (600 yuan) that pauses below 300 yuan, checked every 15 s: about seven
        # airtime.50 orders pause it; a top-up at the simulator resumes it (docs/operations.md).
        operations={"min_balance": 30_000, "balance_check_s": 15.0},
        sim_balance=60_000,
    ),
    DemoSupplier(
        "cucc-reloadly",
        "Reloadly (China Unicom airtime)",
        "reloadly",
        Carrier.CUCC,
        {
            "client_id": "demo-reloadly-client",
            "client_secret": "demo-reloadly-secret-0001",
            "webhook_secret": "demo-reloadly-webhook-0001",
        },
    ),
    DemoSupplier(
        "ctcc-ding",
        "DingConnect (China Telecom airtime)",
        "dingconnect",
        Carrier.CTCC,
        {"api_key": "demo-dingconnect-key-0001"},
    ),
    DemoSupplier(
        "cbn-fulu",
        "福禄 Fulu (China Broadnet airtime)",
        "fulu",
        Carrier.CBN,
        {"app_key": "demo-fulu-app", "app_secret": "demo-fulu-secret-0001"},
        options={"reject_codes": [3001], "not_found_codes": [2001]},
    ),
]


def _costs(per_mille: int) -> dict[str, int]:
    """What a supplier charges for each airtime product: `per_mille` of our price (SPEC 8 costs)."""
    return {p["code"]: p["price"] * per_mille // 1000 for p in _AIRTIME}


def demo_groups() -> list[dict[str, Any]]:
    """One airtime group per carrier: its protocol's channel first, the reliable topup-json one second."""
    return [
        {
            "code": f"airtime-{s.carrier.value}",
            "business_type": seed.AIRTIME,
            "brand": s.carrier.value,
            "strategy": "priority",
            "sticky": True,
            "recovery_s": 30.0,
            "members": [
                {"channel": s.code, "priority": 1, "weight": 1, "costs": _costs(995)},
                {"channel": "airtime-reliable", "priority": 2, "weight": 1, "costs": _costs(997)},
            ],
        }
        for s in DEMO_SUPPLIERS
    ]
