"""The console's channel form in headless Chromium: choosing a protocol shows that protocol's credential
fields (and only those), the secret never comes back to the page, and "Check connection" asks the
supplier for its balance."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import SHOTS
from tests.support.platform import ADMIN_TOKEN, Platform, sim_channel

pytestmark = pytest.mark.browser


def test_operator_connects_a_juhe_channel(web_platform: Platform, sim: Any, page: Any) -> None:
    from playwright.sync_api import expect

    p = web_platform
    credentials = {"openid": "JHbrowser0001", "key": "juhe-browser-key-01"}
    base_url = sim_channel(sim, "jh", protocol="juhe", credentials=credentials, balance=987_650)
    SHOTS.mkdir(parents=True, exist_ok=True)

    page.goto(f"{p.url}/console/edit/channel")
    page.fill("input[name=password]", ADMIN_TOKEN)
    page.click("button[type=submit]")
    expect(page.locator("#channel-form")).to_be_visible()
    # topup-json by default: its secret shows, Juhe's fields do not.
    expect(page.locator("input[name=secret]")).to_be_visible()
    expect(page.locator("input[name='cred.juhe.openid']")).to_be_hidden()
    page.select_option("#protocol", "juhe")
    expect(page.locator("input[name=secret]")).to_be_hidden()
    expect(page.locator("input[name='cred.juhe.openid']")).to_be_visible()
    expect(page.locator("#callback-url")).to_contain_text("/callbacks/juhe/")

    page.fill("input[name=code]", "jh")
    page.fill("input[name=name]", "Juhe airtime")
    page.fill("input[name=base_url]", base_url)
    page.fill("input[name='cred.juhe.openid']", credentials["openid"])
    page.fill("input[name='cred.juhe.key']", credentials["key"])
    page.fill("textarea[name=options]", '{"not_found_codes": [208516]}')
    page.click("#channel-form button[type=submit]")
    expect(page.locator("p.flash")).to_have_text("Channel jh saved.")

    shown = p.admin.get("/admin/v1/channels/jh").json()
    assert shown["protocol"] == "juhe" and shown["options"] == {"not_found_codes": ["208516"]}
    assert shown["credentials"]["key"] != credentials["key"]

    page.goto(f"{p.url}/console/edit/channel?code=jh")
    expect(page.locator("#protocol")).to_have_value("juhe")
    expect(page.locator("input[name='cred.juhe.key']")).to_have_value("")
    assert credentials["key"] not in page.content()
    page.click("#check-connection")
    expect(page.locator("#check-result")).to_have_text("Connected: balance 9876.5 CNY")
    page.screenshot(path=str(SHOTS / "console-channel-juhe.png"), full_page=True)

    # Saved again with the secret left empty: the stored key is kept, the connection still works.
    page.fill("input[name=name]", "Juhe airtime (main)")
    page.click("#channel-form button[type=submit]")
    expect(page.locator("p.flash")).to_have_text("Channel jh saved.")
    assert p.admin.get("/admin/v1/channels/jh/balance").json()["amount"] == 987_650
