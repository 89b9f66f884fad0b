"""The merchant's batch flow in headless Chromium: log in, edit rows, place, pay, watch, download."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.platform import Platform, setup_airtime

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
PRICE = 4980
BAD_ACCOUNT = "13700137000"


def accounts(n: int) -> list[str]:
    prefixes = ["138", "139", "150", "188", "135"]
    return [f"{prefixes[i % 5]}{i:08d}" for i in range(n)]


def login(page: Any, p: Platform, merchant_id: str = "m1") -> None:
    page.goto(f"{p.url}/batches")
    assert "/login" in page.url
    page.fill("#merchant_id", merchant_id)
    page.fill("#password", "wrong password")
    page.click("#login")
    page.wait_for_selector("[data-testid=login-error]")
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_url(re.compile(r".*/batches$"))
    assert page.inner_text("[data-testid=me]") == merchant_id


def new_batch_with(page: Any, p: Platform, lines: list[str]) -> None:
    page.goto(f"{p.url}/batches/new")
    page.fill("#paste", "\n".join(lines))
    page.click("#paste-add")
    n = len(lines)
    expect(page.locator("#rows tr[data-state=ok], #rows tr[data-state=bad]")).to_have_count(n)


def place(page: Any) -> str:
    page.click("#submit")
    page.wait_for_url(re.compile(r".*/batches/bat_[0-9a-f]+"))
    return str(page.url.rsplit("/", 1)[1].split("?")[0])


def wait_status(page: Any, status: str, timeout_ms: int = 30_000) -> None:
    expect(page.locator("#batch")).to_have_attribute("data-status", status, timeout=timeout_ms)


def test_place_pay_watch_and_download(web_platform: Platform, sim: Any, page: Any, shot: Any) -> None:
    p = web_platform
    setup_airtime(p, sim, {"supA": {}})
    m = p.merchant(password=PASSWORD)
    login(page, p)
    shot(page, "1-batches-empty")

    # One row typed by hand with a bad account is flagged beside it.
    page.click("#new-batch")
    page.wait_for_url(re.compile(r".*/batches/new$"))
    page.fill("#rows tr:first-child input.pc", "airtime.50")
    page.fill("#rows tr:first-child input.acct", "12345")
    page.wait_for_selector("#rows tr:first-child [data-testid=row-error]")
    assert "invalid_account" in page.inner_text("#rows tr:first-child [data-testid=row-error]")
    shot(page, "2-invalid-row")
    page.click("#rows tr:first-child button.danger")

    # 50 rows pasted from a spreadsheet (tab separated, with a header), 2 of them bad.
    good = accounts(48)
    lines = ["product_code\taccount"] + [f"airtime.50\t{a}" for a in good[:20]]
    lines += ["airtime.50\t999", "nope.product\t13800138000"] + [f"airtime.50\t{a}" for a in good[20:]]
    page.fill("#paste", "\n".join(lines))
    page.click("#paste-add")
    expect(page.locator("#rows tr[data-state=ok]")).to_have_count(48)
    expect(page.locator("#rows tr[data-state=bad]")).to_have_count(2)
    assert page.inner_text("[data-testid=count-rows]") == "50"
    assert page.inner_text("[data-testid=count-invalid]") == "2"
    assert page.inner_text("[data-testid=total]") == "¥2,390.40"
    shot(page, "3-pasted-50-rows")

    # Submit (the button disables at once, so a double click places one batch).
    page.dblclick("#submit")
    page.wait_for_url(re.compile(r".*/batches/bat_[0-9a-f]+"))
    batch_id = page.url.rsplit("/", 1)[1]
    page.wait_for_selector("#rows tr[data-row='50']")
    assert page.inner_text("#valid-rows") == "48"
    expect(page.locator("#pay-box")).to_be_visible()
    expect(page.locator("#placing")).to_have_count(0)
    assert len(m.get("/v1/batches").json()["items"]) == 1
    shot(page, "4-placed-awaiting-payment")

    # Pay once with balance; a double click still pays once.
    page.dblclick("#pay-balance")
    wait_status(page, "completed")
    assert page.inner_text("#c-succeeded") == "48"
    assert page.locator("#rows tr[data-status=succeeded]").count() == 48
    assert page.locator("#rows tr[data-status=invalid]").count() == 2
    shot(page, "5-completed")
    b = m.get(f"/v1/batches/{batch_id}").json()
    assert (b["status"], b["payment"]["method"], b["payment"]["amount"]) == (
        "completed",
        "balance",
        48 * PRICE,
    )
    assert m.get("/v1/balance").json() == {"available": 1_000_000 - 48 * PRICE, "held": 0, "currency": "CNY"}
    assert p.ledger_check()["balanced"] is True

    with page.expect_download() as dl:
        page.click("#download")
    text = Path(dl.value.path()).read_text(encoding="utf-8")
    lines_out = list(csv.DictReader(io.StringIO(text)))
    assert len(lines_out) == 50
    assert sum(1 for x in lines_out if x["status"] == "succeeded") == 48
    assert [x["error_code"] for x in lines_out if x["status"] == "invalid"] == [
        "invalid_account",
        "unknown_product",
    ]

    page.click("text=Balance")
    page.wait_for_url(re.compile(r".*/balance$"))
    assert page.inner_text("[data-testid=available]") == "¥7,609.60"
    shot(page, "6-balance")
    page.click("text=Orders")
    page.wait_for_url(re.compile(r".*/orders$"))
    assert page.locator("table.grid tbody tr").count() == 48
    shot(page, "7-orders")


def test_declined_sandbox_payment(web_platform: Platform, sim: Any, page: Any, shot: Any) -> None:
    p = web_platform
    setup_airtime(p, sim, {"supA": {}})
    m = p.merchant(password=PASSWORD)
    login(page, p)
    new_batch_with(page, p, [f"airtime.50,{a}" for a in accounts(3)])
    batch_id = place(page)
    page.wait_for_selector("#pay-sandbox:not([disabled])")
    page.click("#pay-sandbox")
    page.wait_for_url(re.compile(r".*/sandbox/pay/pay_[0-9a-f]+"))
    assert page.inner_text("[data-testid=gateway-amount]") == "¥149.40"
    shot(page, "1-sandbox-page")
    page.click("#gateway-decline")
    page.wait_for_url(re.compile(rf".*/batches/{batch_id}.*"))
    wait_status(page, "cancelled")
    assert page.inner_text("#c-cancelled") == "3"
    assert "declined" in page.inner_text("#info")
    shot(page, "2-declined-cancelled")
    b = m.get(f"/v1/batches/{batch_id}").json()
    assert (b["status"], b["payment"]["status"]) == ("cancelled", "declined")
    assert m.get("/v1/balance").json()["available"] == 1_000_000
    assert p.ledger_check()["balanced"] is True


def test_completed_batch_with_a_refunded_row(web_platform: Platform, sim: Any, page: Any, shot: Any) -> None:
    p = web_platform
    setup_airtime(
        p, sim, {"supA": {"fail_accounts": [BAD_ACCOUNT]}, "supB": {"fail_accounts": [BAD_ACCOUNT]}}
    )
    m = p.merchant(password=PASSWORD)
    login(page, p)
    new_batch_with(page, p, [f"airtime.50,{a}" for a in [*accounts(3), BAD_ACCOUNT]])
    batch_id = place(page)
    page.wait_for_selector("#pay-balance:not([disabled])")
    page.click("#pay-balance")
    wait_status(page, "completed")
    assert page.inner_text("#c-succeeded") == "3"
    assert page.inner_text("#c-failed") == "1"
    assert page.inner_text("#refunded") == "¥49.80"
    expect(page.locator("#pay-box")).to_be_hidden()
    expect(page.locator("#pending-box")).to_be_hidden()
    failed = page.locator("#rows tr[data-status=failed]")
    assert failed.count() == 1
    assert "all_channels_failed" in failed.inner_text()
    shot(page, "1-completed-with-refund")
    b = m.get(f"/v1/batches/{batch_id}").json()
    assert b["payment"]["refunded"] == PRICE
    assert m.get("/v1/balance").json() == {"available": 1_000_000 - 3 * PRICE, "held": 0, "currency": "CNY"}
    assert p.ledger_check()["balanced"] is True
