"""Supplier operations in the operator console and the merchant pages (SPEC section 7): the region on
orders, the coverage grid, the channel page with its balance chart, the paused banner, and the forms."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.integration.test_console import ConsoleClient
from tests.support.platform import Platform, sim_channel, wait_until

GD_CMCC = "13712345678"


def merchant_login(url: str, merchant_id: str, password: str) -> httpx.Client:
    """A signed-in session on the merchant pages."""
    h = httpx.Client(base_url=url, trust_env=False, follow_redirects=False, timeout=30.0)
    csrf = re.search(r'name="csrf" value="([^"]+)"', h.get("/login").text)
    assert csrf
    form = {"csrf": csrf.group(1), "merchant_id": merchant_id, "password": password, "next": "/"}
    assert h.post("/login", data=form).status_code == 303
    return h


@pytest.fixture
def console(platform: Platform) -> Iterator[ConsoleClient]:
    c = ConsoleClient(platform.url)
    c.login()
    yield c
    c.close()


def _setup(platform: Platform, sim: Any) -> None:
    platform.product("airtime.50")
    platform.channel("gd", sim_channel(sim, "gd"))
    platform.channel("cu", sim_channel(sim, "cu"))
    # Low on money from the start: pauses at its first balance check.
    platform.channel("low", sim_channel(sim, "low", balance=1_000), min_balance=5_000, balance_check_s=0.2)
    members = [
        {"channel": "gd", "priority": 1, "regions": ["CN-GD"]},
        {"channel": "cu", "priority": 2, "carriers": ["cucc"]},
        {"channel": "low", "priority": 3},
    ]
    platform.group("air", "mobile_airtime", members)
    wait_until(
        lambda: platform.admin.get("/admin/v1/channels/low").json()["paused"] == "low_balance",
        10,
        "low pauses",
    )


def test_console_shows_coverage_balances_pauses_and_regions(
    platform: Platform, sim: Any, console: ConsoleClient
) -> None:
    _setup(platform, sim)
    m = platform.merchant("m1", password="merchant-pass-1")
    order = platform.wait_order(m.order("V-1", account=GD_CMCC).json()["order_id"])
    assert order["region"] == "CN-GD"

    page = console.get(f"/console/orders/{order['order_id']}").text
    assert re.search(r'id="order-region">CN-GD <small>Guangdong</small>', page)
    assert "CN-GD" in console.get(f"/console/orders?account={GD_CMCC}").text

    group = console.get("/console/groups/air").text
    assert 'id="coverage"' in group and "paused: low balance" in group
    # With "low" paused, only Guangdong numbers and Unicom numbers are served: the rest are gaps.
    assert 'id="coverage-gaps">93 gaps' in group
    gd_row = re.search(r'<tr data-region="CN-GD">(.*?)</tr>', group, re.S)
    assert gd_row and "gap" not in gd_row.group(1) and "gd › cu" in gd_row.group(1)
    bj_row = re.search(r'<tr data-region="CN-BJ">(.*?)</tr>', group, re.S)
    assert bj_row and 'class="gap idle" data-carrier="cmcc"' in bj_row.group(1)

    channel = console.get("/console/channels/low")
    assert channel.status_code == 200
    assert 'id="channel-paused"' in channel.text and "below the minimum of 50 CNY" in channel.text
    assert 'class="chart balance"' in channel.text and 'class="point low"' in channel.text
    assert "below minimum" in channel.text
    assert console.get("/console/channels/ghost").status_code == 404

    # Every page carries the banner while a channel is paused.
    for path in ("/console", "/console/exceptions", "/console/catalog"):
        assert 'id="paused-banner"' in console.get(path).text, path
    assert 'href="/console/channels/low"' in console.get("/console").text
    assert "channel_paused" in console.get("/console/exceptions").text

    web = merchant_login(platform.url, "m1", "merchant-pass-1")
    try:
        assert re.search(r'region">CN-GD<', web.get("/orders").text)
    finally:
        web.close()


def test_channel_and_group_forms_keep_supplier_operations(
    platform: Platform, sim: Any, console: ConsoleClient
) -> None:
    _setup(platform, sim)
    form = console.get("/console/edit/channel?code=low").text
    assert 'name="min_balance" value="5000"' in form and 'name="balance_check_s" value="0.2"' in form
    ch = platform.admin.get("/admin/v1/channels/low").json()
    base = {
        "code": "low",
        "name": "low",
        "base_url": ch["base_url"],
        "secret": "",
        "supports_query": "on",
        "enabled": "on",
        "timeout_s": "2",
        "max_wait_s": "4",
        "balance_check_s": "0.2",
    }
    bad = console.post("/console/edit/channel", {**base, "rate_limit_per_s": "0"})
    assert bad.status_code == 400 and "Rate limit per s" in bad.text
    # Clearing the minimum resumes the channel at once (its last balance is judged again).
    ok = console.post("/console/edit/channel", {**base, "rate_limit_per_s": "4", "min_balance": ""})
    assert ok.status_code == 303, ok.text
    ch = platform.admin.get("/admin/v1/channels/low").json()
    assert (ch["rate_limit_per_s"], ch["min_balance"], ch["paused"]) == (4, None, None)

    form = console.get("/console/edit/group?code=air").text
    assert 'name="member-0-regions" value="CN-GD"' in form and 'name="member-1-carriers" value="cucc"' in form
    group = {
        "code": "air",
        "business_type": "mobile_airtime",
        "strategy": "priority",
        "sticky": "on",
        "recovery_s": "300",
        "member-0-channel": "gd",
        "member-0-priority": "1",
        "member-0-regions": "CN-GD, CN-GX",
        "member-1-channel": "cu",
        "member-1-priority": "2",
        "member-1-carriers": "cucc",
        "member-2-channel": "low",
        "member-2-priority": "3",
    }
    bad = console.post("/console/edit/group", {**group, "member-2-regions": "CN-XX"})
    assert bad.status_code == 400 and "CN-XX" in bad.text
    assert console.post("/console/edit/group", group).status_code == 303
    members = {m["channel"]: m for m in platform.get_group("air")["members"]}
    assert members["gd"]["regions"] == ["CN-GD", "CN-GX"] and members["cu"]["carriers"] == ["cucc"]
    assert "regions" not in members["low"] and "carriers" not in members["low"]
