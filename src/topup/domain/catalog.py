"""Seed data: the default product catalog and the demo's simulated suppliers and routing groups.

Data only. The shapes match the operator API bodies (`PUT /admin/v1/products|channels|groups/{code}`)
plus a `code` key, so seeding is one loop per list. Money is in fen.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

from topup.domain.accounts import BusinessType, Carrier, FuelIssuer

AIRTIME = BusinessType.MOBILE_AIRTIME.value
DATA = BusinessType.MOBILE_DATA.value
FUEL = BusinessType.FUEL_CARD.value
MEMBER = BusinessType.MEMBERSHIP.value


class ProductSeed(TypedDict):
    code: str
    business_type: str
    brand: str | None
    """None (any), "auto" (the carrier detected from the account) or a brand."""
    name: str
    face_value: int
    price: int


class ChannelSeed(TypedDict):
    code: str
    name: str
    protocol: str
    secret: str
    timeout_s: float
    max_wait_s: float
    supports_query: bool
    enabled: bool
    simulation: dict[str, Any]
    """How the built-in simulator behaves for this channel; base_url is filled in by the demo."""
    # Supplier operations (SPEC 7).
    min_balance: NotRequired[int]
    balance_check_s: NotRequired[float]
    rate_limit_per_s: NotRequired[int]


class MemberSeed(TypedDict):
    channel: str
    priority: int
    weight: int
    costs: dict[str, int]
    carriers: NotRequired[list[str]]
    regions: NotRequired[list[str]]


class GroupSeed(TypedDict):
    code: str
    business_type: str
    brand: str | None
    strategy: str
    sticky: bool
    recovery_s: float
    members: list[MemberSeed]


# --- products -----------------------------------------------------------------------------------------

_AIRTIME_YUAN = (10, 20, 30, 50, 100, 200, 300, 500)

_CARRIER_ZH = {
    Carrier.CMCC: ("中国移动", "China Mobile"),
    Carrier.CUCC: ("中国联通", "China Unicom"),
    Carrier.CTCC: ("中国电信", "China Telecom"),
    Carrier.CBN: ("中国广电", "China Broadnet"),
}
# (pack, GB, face value in fen, price in fen)
_DATA_PACKS = (("1g", 1, 1000, 980), ("5g", 5, 3000, 2950), ("10g", 10, 5000, 4920), ("20g", 20, 8000, 7880))
_DATA_PACKS_BY_CARRIER = {
    Carrier.CMCC: _DATA_PACKS,
    Carrier.CUCC: _DATA_PACKS,
    Carrier.CTCC: _DATA_PACKS,
    Carrier.CBN: _DATA_PACKS[:2],
}

_ISSUER_ZH = {
    FuelIssuer.SINOPEC: ("中石化加油卡", "Sinopec fuel card"),
    FuelIssuer.PETROCHINA: ("中石油加油卡", "PetroChina fuel card"),
}
_FUEL_YUAN = (100, 200, 500, 1000)

# (code, brand, name, face value, price)
_MEMBERSHIPS: tuple[tuple[str, str, str, int, int], ...] = (
    ("member.iqiyi.month", "iqiyi", "爱奇艺黄金会员 月卡 (iQIYI VIP, 1 month)", 2500, 2250),
    ("member.iqiyi.quarter", "iqiyi", "爱奇艺黄金会员 季卡 (iQIYI VIP, 3 months)", 6800, 6200),
    ("member.iqiyi.year", "iqiyi", "爱奇艺黄金会员 年卡 (iQIYI VIP, 12 months)", 24800, 22800),
    ("member.tencent.month", "tencent", "腾讯视频VIP 月卡 (Tencent Video VIP, 1 month)", 2500, 2260),
    ("member.tencent.year", "tencent", "腾讯视频VIP 年卡 (Tencent Video VIP, 12 months)", 25800, 23600),
    ("member.youku.month", "youku", "优酷VIP 月卡 (Youku VIP, 1 month)", 2500, 2240),
    ("member.youku.year", "youku", "优酷VIP 年卡 (Youku VIP, 12 months)", 24800, 22600),
    ("member.mgtv.month", "mgtv", "芒果TV VIP 月卡 (Mango TV VIP, 1 month)", 2200, 1990),
    ("member.qqmusic.month", "qqmusic", "QQ音乐 豪华绿钻 月卡 (QQ Music Premium, 1 month)", 1500, 1380),
)


def _airtime_price(face_value: int) -> int:
    # 99.6% of face value, rounded to whole fen (airtime.50: 5000 -> 4980).
    return face_value * 996 // 1000


DEFAULT_PRODUCTS: list[ProductSeed] = [
    *(
        ProductSeed(
            code=f"airtime.{yuan}",
            business_type=AIRTIME,
            brand="auto",
            name=f"话费 {yuan}元 (Airtime {yuan} CNY)",
            face_value=yuan * 100,
            price=_airtime_price(yuan * 100),
        )
        for yuan in _AIRTIME_YUAN
    ),
    *(
        ProductSeed(
            code=f"data.{carrier.value}.{pack}",
            business_type=DATA,
            brand=carrier.value,
            name=f"{_CARRIER_ZH[carrier][0]} {gb}GB 流量 ({_CARRIER_ZH[carrier][1]} {gb} GB data)",
            face_value=face,
            price=price,
        )
        for carrier, packs in _DATA_PACKS_BY_CARRIER.items()
        for pack, gb, face, price in packs
    ),
    *(
        ProductSeed(
            code=f"fuel.{issuer.value}.{yuan}",
            business_type=FUEL,
            brand=issuer.value,
            name=f"{_ISSUER_ZH[issuer][0]} {yuan}元 ({_ISSUER_ZH[issuer][1]} {yuan} CNY)",
            face_value=yuan * 100,
            price=yuan * 100 * 995 // 1000,
        )
        for issuer in FuelIssuer
        for yuan in _FUEL_YUAN
    ),
    *(
        ProductSeed(code=code, business_type=MEMBER, brand=brand, name=name, face_value=face, price=price)
        for code, brand, name, face, price in _MEMBERSHIPS
    ),
]

# --- demo suppliers -----------------------------------------------------------------------------------
#
# Three simulated suppliers per business type: a reliable one, a cheaper flaky one (ranked first by cost
# or priority, so the demo shows failovers and the sticky switch) and a slow one (callbacks that sometimes
# outlast timeout_s, so the demo shows status queries and abandoned attempts).
#
# `simulation` keys, all optional for the simulator:
#   reject_rate      share of dispatches answered {"result": "rejected"}
#   fail_rate        share of accepted orders that get a "failed" callback
#   silent_rate      share of accepted orders that never get a callback (the status query says "processing")
#   delay_s          [min, max] seconds before the callback
#   balance          the supplier account's prepaid balance in fen (absent: unlimited)

_RELIABLE = {"reject_rate": 0.0, "fail_rate": 0.02, "silent_rate": 0.0, "delay_s": [0.2, 0.8]}
_FLAKY = {"reject_rate": 0.15, "fail_rate": 0.25, "silent_rate": 0.05, "delay_s": [0.1, 0.5]}
_SLOW = {"reject_rate": 0.0, "fail_rate": 0.05, "silent_rate": 0.1, "delay_s": [1.0, 4.0]}

# (business type, short name, English label)
_LINES = (
    (AIRTIME, "airtime", "Airtime"),
    (DATA, "data", "Data"),
    (FUEL, "fuel", "Fuel card"),
    (MEMBER, "member", "Membership"),
)


def _channel(
    code: str, name: str, timeout_s: float, max_wait_s: float, simulation: dict[str, Any]
) -> ChannelSeed:
    return ChannelSeed(
        code=code,
        name=name,
        protocol="topup-json",
        secret=f"demo-secret-{code}",
        timeout_s=timeout_s,
        max_wait_s=max_wait_s,
        supports_query=True,
        enabled=True,
        simulation=dict(simulation),
    )


DEMO_CHANNELS: list[ChannelSeed] = [
    channel
    for _, short, label in _LINES
    for channel in (
        _channel(f"{short}-reliable", f"{label} supplier A (reliable)", 3.0, 12.0, _RELIABLE),
        _channel(f"{short}-cheap", f"{label} supplier B (cheap, flaky)", 2.0, 6.0, _FLAKY),
        _channel(f"{short}-slow", f"{label} supplier C (slow)", 1.5, 5.0, _SLOW),
    )
]

# Supplier operations in the demo (docs/operations.md walks through them; the balance that pauses a
# channel is on `cmcc-juhe`, see services/demo_suppliers.py):
# - airtime-reliable, behind every carrier's own supplier, starts at most 5 dispatches a second: when
#   one of those is paused or failing, a burst waits its turn there;
# - in the data group, the cheap supplier serves China Mobile and Unicom only and the slow one only the
#   southern provinces (the group page's coverage grid shows it; the reliable one covers everything).
for _ch in DEMO_CHANNELS:
    if _ch["code"] == "airtime-reliable":
        _ch["rate_limit_per_s"] = 5
_DEMO_COVERAGE: dict[str, dict[str, list[str]]] = {
    "data-cheap": {"carriers": ["cmcc", "cucc"]},
    "data-slow": {"regions": ["CN-GD", "CN-GX", "CN-HI", "CN-FJ"]},
}


def _costs(business_type: str, per_mille: int) -> dict[str, int]:
    """What the supplier charges for each product of the business type: `per_mille` of our price."""
    return {
        p["code"]: p["price"] * per_mille // 1000
        for p in DEFAULT_PRODUCTS
        if p["business_type"] == business_type
    }


# Strategies differ per group so the demo shows each: the cheap supplier leads on cost or priority.
_GROUP_STRATEGY = {AIRTIME: "cost", DATA: "priority", FUEL: "priority", MEMBER: "weighted"}

DEMO_GROUPS: list[GroupSeed] = [
    GroupSeed(
        code=short,
        business_type=btype,
        brand=None,
        strategy=_GROUP_STRATEGY[btype],
        sticky=True,
        recovery_s=30.0,
        members=[
            MemberSeed(
                channel=f"{short}-cheap",
                priority=1,
                weight=5,
                costs=_costs(btype, 990),
                **_DEMO_COVERAGE.get(f"{short}-cheap", {}),  # type: ignore[typeddict-item]
            ),
            MemberSeed(channel=f"{short}-reliable", priority=2, weight=3, costs=_costs(btype, 997)),
            MemberSeed(
                channel=f"{short}-slow",
                priority=3,
                weight=2,
                costs=_costs(btype, 994),
                **_DEMO_COVERAGE.get(f"{short}-slow", {}),  # type: ignore[typeddict-item]
            ),
        ],
    )
    for btype, short, _ in _LINES
]

# A sample account per business type, for demos and tests (brand-specific products need their own).
SAMPLE_ACCOUNTS: dict[str, str] = {
    AIRTIME: "13800138000",
    DATA: "13800138000",
    FUEL: "1000113200001234567",
    MEMBER: "13800138000",
}
SAMPLE_ACCOUNTS_BY_BRAND: dict[str, str] = {
    Carrier.CMCC.value: "13800138000",
    Carrier.CUCC.value: "18612345678",
    Carrier.CTCC.value: "18912345678",
    Carrier.CBN.value: "19212345678",
    FuelIssuer.SINOPEC.value: "1000113200001234567",
    FuelIssuer.PETROCHINA.value: "9030000012345678",
}
