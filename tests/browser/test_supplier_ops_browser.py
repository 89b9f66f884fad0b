"""Supplier operations in headless Chromium (SPEC section 7): an operator watches a channel pause on a
low balance and resume after a top-up at the (simulated) supplier, and reads the coverage grid."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.browser.test_console_browser import page, shot  # noqa: F401  (the console's page fixture)
from tests.support.platform import ADMIN_TOKEN, Platform, sim_channel

pytestmark = pytest.mark.browser


def test_operator_watches_a_channel_pause_and_resume(web_platform: Platform, sim: Any, page: Any) -> None:  # noqa: F811
    from playwright.sync_api import expect

    p = web_platform
    p.product("airtime.50")
    p.channel("supA", sim_channel(sim, "supA", balance=12_000), min_balance=8_000, balance_check_s=0.2)
    p.channel("supB", sim_channel(sim, "supB"))
    members = [{"channel": "supA", "priority": 1}, {"channel": "supB", "priority": 2, "regions": ["CN-BJ"]}]
    p.group("air", "mobile_airtime", members)
    m = p.merchant()
    assert p.wait_order(m.order("W-1").json()["order_id"])["status"] == "succeeded"
    m.close()

    page.goto(f"{p.url}/console/channels/supA")
    page.fill("input[name=password]", ADMIN_TOKEN)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{p.url}/console/channels/supA")
    deadline = time.monotonic() + 10
    while not page.locator("#channel-paused").count() and time.monotonic() < deadline:
        page.wait_for_timeout(200)
        page.reload()
    expect(page.locator("#channel-paused")).to_contain_text("Paused: low balance")
    expect(page.locator("#paused-banner")).to_contain_text("supA")
    expect(page.locator("#balance")).to_contain_text("70 CNY")
    expect(page.locator("svg.balance circle.point.low").first).to_be_visible()
    shot(page, "channel-paused")

    # The group page: supA is paused, and outside Beijing nothing else covers an order.
    page.click("#paused-banner a[href='/console/channels/supA']")
    page.goto(f"{p.url}/console/groups/air")
    expect(page.locator("#members tr[data-channel=supA]")).to_contain_text("paused: low balance")
    expect(page.locator("#coverage tr[data-region=CN-BJ] td[data-carrier=cmcc]")).to_have_text("supB")
    expect(page.locator("#coverage tr[data-region=CN-GD] td[data-carrier=cmcc]")).to_have_class("gap idle")
    shot(page, "coverage")

    # The supplier account is topped up at the simulator; the next balance check resumes the channel.
    r = httpx.put(f"{sim.url}/control/channels/supA", json={"balance": 100_000}, trust_env=False)
    assert r.status_code == 200
    page.goto(f"{p.url}/console/channels/supA")
    deadline = time.monotonic() + 10
    while page.locator("#channel-paused").count() and time.monotonic() < deadline:
        page.wait_for_timeout(200)
        page.reload()
    expect(page.locator("#channel-paused")).to_have_count(0)
    expect(page.locator("#paused-banner")).to_have_count(0)
    expect(page.locator("#balance")).to_contain_text("1000 CNY")
    shot(page, "channel-resumed")
    assert page.problems == []  # type: ignore[attr-defined]
