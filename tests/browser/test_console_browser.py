"""The operator console in headless Chromium: a failover seen, an order traced, a channel edited."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import SHOTS, open_page
from tests.support.platform import ADMIN_TOKEN, Platform, setup_airtime

pytestmark = pytest.mark.browser

ACCOUNT = "13800138000"


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """The console's page: wider, and it records script errors and CSP violations in `page.problems`."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    with open_page(browser, viewport={"width": 1360, "height": 900}) as pg:
        problems: list[str] = []
        # Script errors and CSP violations; refused logins and forms (401/400) are expected page loads.
        pg.on(
            "console",
            lambda m: (
                problems.append(m.text)
                if m.type == "error" and "Failed to load resource" not in m.text
                else None
            ),
        )
        pg.on("pageerror", lambda e: problems.append(str(e)))
        pg.problems = problems
        yield pg


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"console-{name}.png"), full_page=True)


def channel(platform: Platform, code: str) -> dict[str, Any]:
    items = platform.admin.get("/admin/v1/channels").json()["items"]
    return next(ch for ch in items if ch["code"] == code)  # type: ignore[no-any-return]


def test_operator_traces_a_failover_and_edits_a_channel(web_platform: Platform, sim: Any, page: Any) -> None:
    from playwright.sync_api import expect

    p = web_platform
    setup_airtime(p, sim, {"supA": {"fail_accounts": [ACCOUNT]}, "supB": {}})
    m = p.merchant()
    order_id = m.order("B-1", account=ACCOUNT).json()["order_id"]
    m.close()
    assert p.wait_order(order_id)["status"] == "succeeded"

    # Any console page sends a stranger to the login form, and back after signing in.
    page.goto(f"{p.url}/console/groups/air")
    expect(page).to_have_url(f"{p.url}/console/login?next=%2Fconsole%2Fgroups%2Fair")
    page.fill("input[name=password]", "not the token")
    page.click("button[type=submit]")
    expect(page.locator("p.error")).to_contain_text("Wrong name, password or token")
    page.fill("input[name=password]", ADMIN_TOKEN)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{p.url}/console/groups/air")

    # The group page shows the failover: the active channel moved to supB.
    expect(page.locator("#active-channel")).to_have_text("supB")
    expect(page.locator("#ranking")).to_have_text("supB › supA")
    expect(page.locator("#members tr[data-channel=supA]")).to_contain_text("0.0%")
    expect(page.locator("table.switches")).to_contain_text("failover")
    expect(page.locator("svg.chart")).to_have_count(2)
    shot(page, "group")

    page.click("nav >> text=Overview")
    expect(page.locator("[data-metric=failovers]")).to_have_text("1")
    expect(page.locator("[data-metric=success-rate]")).to_have_text("100.0%")
    shot(page, "overview")

    # Find the affected order by its account and read its timeline.
    page.click("nav >> text=Orders")
    page.fill("input[name=account]", ACCOUNT)
    page.click("form.search button[type=submit]")
    expect(page.locator("#results tbody tr")).to_have_count(1)
    shot(page, "orders")
    page.click(f"#results a[href='/console/orders/{order_id}']")
    expect(page.locator("h1")).to_contain_text(order_id)
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("Callback failed from supA")
    expect(timeline).to_contain_text("Callback success from supB")
    expect(timeline).to_contain_text("Order succeeded")
    expect(page.locator("#attempts tbody tr")).to_have_count(2)
    shot(page, "order")

    # Edit supA: a bad value is refused with a clear message and nothing changes; a good one saves.
    before = channel(p, "supA")
    page.click("nav >> text=Catalog")
    page.click("#channels a[href='/console/edit/channel?code=supA']")
    expect(page.locator("input[name=secret]")).to_have_value("")
    page.fill("input[name=timeout_s]", "soon")
    page.click("#channel-form button[type=submit]")
    expect(page.locator("#form-errors")).to_contain_text("Nothing was saved.")
    expect(page.locator("#form-errors")).to_contain_text("Timeout (s): Input should be a valid number")
    expect(page.locator("input[name=timeout_s]")).to_have_value("soon")
    shot(page, "channel-error")
    assert channel(p, "supA") == before
    page.fill("input[name=timeout_s]", "0.8")
    page.fill("input[name=name]", "Supplier A (flaky)")
    page.click("#channel-form button[type=submit]")
    expect(page.locator("p.flash")).to_have_text("Channel supA saved.")
    expect(page.locator("#channels tr[data-channel=supA]")).to_contain_text("Supplier A (flaky)")
    shot(page, "channel-saved")
    after = channel(p, "supA")
    assert (after["timeout_s"], after["name"]) == (0.8, "Supplier A (flaky)")
    assert page.problems == []  # type: ignore[attr-defined]
