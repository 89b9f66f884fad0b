"""The seeded catalog and demo routing data hang together."""

from __future__ import annotations

import json
import re

import pytest

from topup.domain.accounts import BusinessType, Carrier, FuelIssuer, InvalidAccount, validate_account
from topup.domain.catalog import (
    DEFAULT_PRODUCTS,
    DEMO_CHANNELS,
    DEMO_GROUPS,
    SAMPLE_ACCOUNTS,
    SAMPLE_ACCOUNTS_BY_BRAND,
    GroupSeed,
    ProductSeed,
)
from topup.domain.routing import Member, Strategy, rank

PRODUCTS = {p["code"]: p for p in DEFAULT_PRODUCTS}


def _sample_account(product: ProductSeed) -> str:
    brand = product["brand"]
    if brand is not None and brand in SAMPLE_ACCOUNTS_BY_BRAND:
        return SAMPLE_ACCOUNTS_BY_BRAND[brand]
    return SAMPLE_ACCOUNTS[product["business_type"]]


def test_codes_are_unique() -> None:
    assert len(PRODUCTS) == len(DEFAULT_PRODUCTS)
    assert len({c["code"] for c in DEMO_CHANNELS}) == len(DEMO_CHANNELS)
    assert len({g["code"] for g in DEMO_GROUPS}) == len(DEMO_GROUPS)


@pytest.mark.parametrize("product", DEFAULT_PRODUCTS, ids=lambda p: p["code"])
def test_product_is_well_formed(product: ProductSeed) -> None:
    assert re.fullmatch(r"[a-z0-9]+(\.[a-z0-9]+)+", product["code"])
    assert product["business_type"] in set(BusinessType)
    assert isinstance(product["face_value"], int) and isinstance(product["price"], int)
    assert 0 < product["price"] <= product["face_value"]
    assert product["name"]
    check = validate_account(product["business_type"], _sample_account(product), product["brand"])
    if product["brand"] not in (None, "auto"):
        assert check.brand == product["brand"]


def test_airtime_covers_the_usual_face_values_for_any_carrier() -> None:
    airtime = {c: p for c, p in PRODUCTS.items() if p["business_type"] == BusinessType.MOBILE_AIRTIME}
    assert sorted(p["face_value"] for p in airtime.values()) == [
        v * 100 for v in (10, 20, 30, 50, 100, 200, 300, 500)
    ]
    assert all(p["brand"] == "auto" for p in airtime.values())
    assert PRODUCTS["airtime.50"]["price"] == 4980


def test_brands_cover_every_carrier_and_issuer() -> None:
    brands = {p["brand"] for p in DEFAULT_PRODUCTS}
    assert {c.value for c in Carrier} <= brands
    assert {i.value for i in FuelIssuer} <= brands
    assert {"iqiyi", "tencent", "youku"} <= brands
    for code in ("data.cmcc.1g", "data.cucc.1g", "data.ctcc.1g", "fuel.sinopec.100", "fuel.petrochina.100"):
        assert code in PRODUCTS
    for code in ("member.iqiyi.month", "member.iqiyi.year", "member.tencent.month", "member.youku.month"):
        assert code in PRODUCTS


def test_data_product_refuses_another_carriers_number() -> None:
    product = PRODUCTS["data.cucc.1g"]
    with pytest.raises(InvalidAccount):
        validate_account(product["business_type"], SAMPLE_ACCOUNTS_BY_BRAND["cmcc"], product["brand"])


def test_seed_data_is_plain_json() -> None:
    for seed in (DEFAULT_PRODUCTS, DEMO_CHANNELS, DEMO_GROUPS):
        assert json.loads(json.dumps(seed)) == seed


def test_demo_channels_have_three_per_business_type() -> None:
    assert len(DEMO_CHANNELS) == 3 * len(BusinessType)
    for channel in DEMO_CHANNELS:
        assert channel["protocol"] == "topup-json"
        assert 0 < channel["timeout_s"] <= channel["max_wait_s"]
        assert re.fullmatch(r"[a-z0-9_-]+", channel["code"])


def test_one_brandless_group_per_business_type_using_known_channels() -> None:
    channels = {c["code"] for c in DEMO_CHANNELS}
    assert sorted(g["business_type"] for g in DEMO_GROUPS) == sorted(BusinessType)
    for group in DEMO_GROUPS:
        assert group["brand"] is None
        assert group["strategy"] in set(Strategy)
        assert len(group["members"]) == 3
        for member in group["members"]:
            assert member["channel"] in channels
            for code, cost in member["costs"].items():
                assert PRODUCTS[code]["business_type"] == group["business_type"]
                assert 0 < cost <= PRODUCTS[code]["price"]


@pytest.mark.parametrize("group", DEMO_GROUPS, ids=lambda g: g["code"])
def test_every_product_routes_to_all_three_members(group: GroupSeed) -> None:
    members = [Member(m["channel"], m["priority"], m["weight"], m["costs"]) for m in group["members"]]
    for product in DEFAULT_PRODUCTS:
        if product["business_type"] == group["business_type"]:
            ranking = rank(members, group["strategy"], product["code"], product["price"])
            assert len(ranking) == 3
            # The flaky, cheap supplier leads, so the demo shows failovers.
            if group["strategy"] in ("cost", "priority"):
                assert ranking[0].endswith("-cheap")
