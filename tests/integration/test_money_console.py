"""The console's money pages (SPEC 8): margins (table, chart, CSV), supplier accounts and prepayments, and
the demo path: download a practice statement with discrepancies, upload it, see each discrepancy and
resolve the exceptions it raised. In-process over ASGI with a signed-in browser-like client."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from tests.support.money import Money, accepted, failed, succeeded
from tests.support.platform import ADMIN_TOKEN

PAGES = ["/console/money/margins", "/console/money/statements", "/console/money/suppliers"]


def field(html: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert m, f"no {name} field"
    return m.group(1)


class Browser:
    def __init__(self, m: Money) -> None:
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=m.app), base_url="http://platform.test", follow_redirects=False
        )
        self.csrf = ""

    async def login(self, username: str = "", password: str = ADMIN_TOKEN) -> None:
        form = await self.http.get("/console/login")
        r = await self.http.post(
            "/console/login",
            data={
                "csrf": field(form.text, "csrf"),
                "username": username,
                "password": password,
                "next": "/console",
            },
        )
        assert r.status_code == 303, r.text
        self.csrf = field((await self.http.get("/console/money/statements")).text, "csrf")

    async def post(self, path: str, data: dict[str, Any], **kw: Any) -> httpx.Response:
        return await self.http.post(path, data={"csrf": self.csrf, **data}, **kw)


@pytest.fixture
async def money(database_url: str) -> AsyncIterator[Money]:
    m = await Money(database_url).start()
    try:
        await m.catalog({"chA": {"costs": {"airtime.50": 4900}}, "chB": {"costs": {"airtime.50": 4920}}})
        m.clock.advance(3600)
        m.script(succeeded(), succeeded(), failed(), succeeded(), failed(), accepted())
        for i in range(3):
            await m.order(f"C{i}")  # chA, chA, chA fails then chB
        late = await m.order("C3")  # chA fails, chB goes silent
        await m.abandon(f"{late}-2")
        yield m
    finally:
        await m.close()


@pytest.fixture
async def browser(money: Money) -> AsyncIterator[Browser]:
    b = Browser(money)
    await b.login()
    try:
        yield b
    finally:
        await b.http.aclose()


async def test_money_pages_need_a_signed_in_operator(money: Money) -> None:
    anonymous = Browser(money)
    try:
        for path in [*PAGES, "/console/money/statements/stm_x", "/console/money/margins.csv"]:
            r = await anonymous.http.get(path)
            assert r.status_code == 303 and r.headers["location"].startswith("/console/login"), path
        r = await anonymous.http.post("/console/money/statements", data={"channel": "chA"})
        assert r.status_code in (303, 403)
    finally:
        await anonymous.http.aclose()


async def test_margins_page_table_chart_and_csv(browser: Browser) -> None:
    r = await browser.http.get(
        "/console/money/margins", params={"from": "2024-05-01T00:00", "to": "2024-05-02T00:00"}
    )
    assert r.status_code == 200
    html = r.text
    assert '<a href="/console/money" class="current"' in html
    assert '<svg class="chart"' in html and "chA: 2 orders" in html
    assert 'data-key="chA"' in html and 'data-key="chB"' in html
    assert "¥98.00" in html  # chA's cost: two orders at 49.00
    assert (
        'href="/console/money/margins.csv?from=2024-05-01T00:00&amp;to=2024-05-02T00:00&amp;by=channel"'
        in html
    )
    csv = await browser.http.get(
        "/console/money/margins.csv", params={"from": "2024-05-01", "to": "2024-05-02", "by": "merchant"}
    )
    assert csv.status_code == 200 and csv.text.splitlines()[1].startswith("m1,3,14940,")
    bad = await browser.http.get("/console/money/margins", params={"from": "soon"})
    assert bad.status_code == 200 and "From: a date and time" in bad.text


async def test_upload_a_statement_with_discrepancies_and_resolve_them(money: Money, browser: Browser) -> None:
    period = {"from": "2024-05-01T00:00", "to": "2024-05-02T00:00"}
    practice = await browser.http.get(
        "/console/money/statements/sample.csv", params={"channel": "chA", "with_discrepancies": "1", **period}
    )
    assert practice.status_code == 200 and practice.text.startswith("supplier_ref,status,amount\n")
    upload = await browser.post(
        "/console/money/statements",
        {"channel": "chA", **period},
        files={"file": ("chA.csv", practice.content, "text/csv")},
    )
    assert upload.status_code == 303, upload.text
    page_path = upload.headers["location"]
    statement_id = page_path.rsplit("/", 1)[1]
    page = await browser.http.get(page_path)
    assert page.status_code == 200
    kinds = re.findall(r'data-kind="([a-z_]+)"', page.text)
    assert sorted(kinds) == ["amount_mismatch", "missing_here", "missing_there", "status_mismatch"]
    assert f'href="/console/money/statements/{statement_id}/discrepancies.csv"' in page.text
    # Each exception the statement raised can be resolved from the page.
    forms = re.findall(rf'action="(/console/money/statements/{statement_id}/resolve/[^"]+)"', page.text)
    assert len(forms) == 2  # the failed attempt billed as a success, and the statement's other money at stake
    for action in forms:
        r = await browser.post(action, {"note": "settled with the supplier"})
        assert r.status_code == 303 and r.headers["location"] == page_path
    page = await browser.http.get(page_path)
    assert "/resolve/" not in page.text and page.text.count("resolved") >= 2
    open_ = (await money.ok("GET", "/admin/v1/exceptions", params={"resolved": "false"}))["items"]
    assert [e["kind"] for e in open_] == []
    listing = await browser.http.get("/console/money/statements")
    assert f'data-statement="{statement_id}"' in listing.text
    csv = await browser.http.get(f"/console/money/statements/{statement_id}/discrepancies.csv")
    assert csv.status_code == 200 and len(csv.text.splitlines()) == 5
    only = await browser.http.get(page_path, params={"kind": "missing_here"})
    assert re.findall(r'data-kind="([a-z_]+)"', only.text) == ["missing_here"]


async def test_an_unreadable_upload_shows_the_form_again_with_the_problems(browser: Browser) -> None:
    r = await browser.post(
        "/console/money/statements",
        {"channel": "chA", "from": "2024-05-01T00:00", "to": "2024-05-02T00:00"},
        files={"file": ("bad.csv", b"supplier_ref,status,amount\nA,refunded,1\nB,success,\n", "text/csv")},
    )
    assert r.status_code == 400
    assert (
        "line 2: status must be success or failed" in r.text
        and "line 3: a success needs its amount" in r.text
    )
    r = await browser.post(
        "/console/money/statements", {"channel": "chA", "from": "2024-05-01T00:00", "to": "2024-05-02T00:00"}
    )
    assert r.status_code == 400 and "Choose the statement file" in r.text
    assert (await browser.http.get("/console/money/statements")).text.count("data-statement=") == 0


async def test_supplier_accounts_and_a_prepayment(money: Money, browser: Browser) -> None:
    page = await browser.http.get("/console/money/suppliers")
    assert page.status_code == 200 and 'data-channel="chA"' in page.text
    r = await browser.post("/console/money/suppliers/chA/prepay", {"amount": "100000", "reference": "bank-1"})
    assert r.status_code == 303
    accounts = {a["channel"]: a for a in (await money.ok("GET", "/admin/v1/supplier-accounts"))["items"]}
    assert (accounts["chA"]["prepaid"], accounts["chA"]["balance"]) == (100_000, 100_000 - 2 * 4900)
    r = await browser.post("/console/money/suppliers/chA/prepay", {"amount": "-5", "reference": "bank-2"})
    assert r.status_code == 400


async def test_a_viewer_sees_the_pages_but_cannot_upload_or_prepay(money: Money) -> None:
    await money.ok(
        "PUT", "/admin/v1/operators/vera", json={"password": "long enough password", "role": "viewer"}
    )
    b = Browser(money)
    try:
        await b.login("vera", "long enough password")
        for path in PAGES:
            r = await b.http.get(path)
            assert r.status_code == 200, path
            assert 'id="upload"' not in r.text and "/prepay" not in r.text
        r = await b.post("/console/money/suppliers/chA/prepay", {"amount": "1", "reference": "x"})
        assert r.status_code == 403
        r = await b.post(
            "/console/money/statements",
            {"channel": "chA", "from": "2024-05-01T00:00", "to": "2024-05-02T00:00"},
            files={"file": ("s.csv", b"supplier_ref,status,amount\n", "text/csv")},
        )
        assert r.status_code == 403
    finally:
        await b.http.aclose()
