"""The operator console over real HTTP: sign-in, CSRF, every page behind login, forms that validate."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from tests.support.platform import ADMIN_TOKEN, Platform, setup_airtime

ACCOUNT = "13800138000"
PAGES = [
    "/console",
    "/console/groups",
    "/console/groups/air",
    "/console/switches",
    "/console/orders",
    "/console/orders/ord_x",
    "/console/exceptions",
    "/console/merchants",
    "/console/catalog",
    "/console/edit/product",
    "/console/edit/channel?code=supA",
    "/console/edit/group",
]
POSTS = [
    "/console/logout",
    "/console/channels/supA/disable",
    "/console/edit/channel",
    "/console/edit/product",
    "/console/edit/group",
    "/console/merchants/m1/deposit",
    "/console/exceptions/exc_1/resolve",
]


class ConsoleClient:
    """A browser-like client: keeps cookies, reads CSRF tokens out of the pages."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, follow_redirects=False, trust_env=False, timeout=30.0)
        self.csrf = ""

    def login(self, password: str = ADMIN_TOKEN, username: str = "") -> httpx.Response:
        page = self.http.get("/console/login")
        token = _field(page.text, "csrf")
        r = self.http.post(
            "/console/login",
            data={"csrf": token, "username": username, "password": password, "next": "/console"},
        )
        if r.status_code == 303:
            self.csrf = _field(self.http.get("/console").text, "csrf")
        return r

    def get(self, path: str) -> httpx.Response:
        return self.http.get(path)

    def post(
        self, path: str, data: dict[str, Any] | None = None, csrf: bool = True, **kw: Any
    ) -> httpx.Response:
        body = dict(data or {})
        if csrf:
            body["csrf"] = self.csrf
        return self.http.post(path, data=body, **kw)

    def close(self) -> None:
        self.http.close()


def _field(html: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert m, f"no {name} field in page"
    return m.group(1)


def run_db(p: Platform, work: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run `work(tx)` in a transaction of our own (the platform's engine belongs to its server thread)."""
    from topup.adapters.db.engine import Database
    from topup.clock import Clock

    async def main() -> Any:
        db = Database(p.database_url, Clock())
        try:
            async with db.transaction() as tx:
                return await work(tx)
        finally:
            await db.dispose()

    return asyncio.run(main())


@pytest.fixture
def console(platform: Platform) -> Any:
    c = ConsoleClient(platform.url)
    yield c
    c.close()


def failover_scenario(platform: Platform, sim: Any) -> str:
    """supA fails this account, supB delivers: one order, one failover. Returns the order id."""
    setup_airtime(platform, sim, {"supA": {"fail_accounts": [ACCOUNT]}, "supB": {}})
    m = platform.merchant()
    order_id = m.order("F-1", account=ACCOUNT).json()["order_id"]
    m.close()
    final = platform.wait_order(order_id)
    assert final["status"] == "succeeded", final["timeline"]
    return str(order_id)


def test_every_page_and_action_needs_an_operator(platform: Platform, console: ConsoleClient) -> None:
    for path in PAGES:
        r = console.get(path)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/console/login?next=%2Fconsole"), path
    for path in POSTS:
        r = console.post(path, {"x": "1"}, csrf=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/console/login"), path
    # Forged or stale cookies count as no session.
    console.http.cookies.set("topup_console", "forged.value.here")
    assert console.get("/console").status_code == 303
    assert console.get("/console/login").status_code == 200


def test_login_sets_an_httponly_samesite_cookie(platform: Platform, console: ConsoleClient) -> None:
    bad = console.login("wrong-token")
    assert bad.status_code == 401 and "Wrong name, password or token" in bad.text
    assert "topup_console=" not in bad.headers.get("set-cookie", "")
    r = console.login()
    assert r.status_code == 303 and r.headers["location"] == "/console"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("topup_console="))
    assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower() and "Path=/" in cookie
    page = console.get("/console")
    assert page.status_code == 200 and "admin (token)" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    # Signing out needs the CSRF token too, and then every page asks for login again.
    assert console.post("/console/logout", csrf=False).status_code == 403
    assert console.post("/console/logout").status_code == 303
    assert console.get("/console").status_code == 303


def test_the_login_form_itself_has_csrf_protection(platform: Platform, console: ConsoleClient) -> None:
    r = console.http.post("/console/login", data={"password": ADMIN_TOKEN, "csrf": "guess"})
    assert r.status_code == 403
    assert "topup_console=" not in r.headers.get("set-cookie", "")


def test_repeated_failures_are_throttled(platform: Platform, console: ConsoleClient) -> None:
    for _ in range(5):
        assert console.login("wrong").status_code == 401
    r = console.login(ADMIN_TOKEN)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert "Too many failed attempts" in r.text


def test_posts_without_csrf_are_refused_and_change_nothing(
    platform: Platform, sim: Any, console: ConsoleClient
) -> None:
    setup_airtime(platform, sim, {"supA": {}})
    console.login()
    assert console.post("/console/channels/supA/disable", csrf=False).status_code == 403
    r = console.http.post("/console/channels/supA/disable", data={"csrf": "not-the-token"})
    assert r.status_code == 403 and "Forbidden" in r.text
    r = console.post("/console/channels/supA/disable", headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    assert platform.admin.get("/admin/v1/channels").json()["items"][0]["enabled"] is True
    r = console.post("/console/channels/supA/disable")
    assert r.status_code == 303 and "done=disabled" in r.headers["location"]
    assert platform.admin.get("/admin/v1/channels").json()["items"][0]["enabled"] is False
    assert "Channel supA disabled." in console.get(r.headers["location"]).text


def test_pages_show_the_failover_and_the_order_timeline(
    platform: Platform, sim: Any, console: ConsoleClient
) -> None:
    order_id = failover_scenario(platform, sim)
    console.login()
    overview = console.get("/console").text
    assert 'data-metric="failovers">1<' in overview and 'data-metric="orders">1<' in overview
    assert "<svg" in overview and "100.0%" in overview
    group = console.get("/console/groups/air").text
    assert '<strong id="active-channel">supB</strong>' in group
    assert 'id="ranking">supB › supA<' in group
    assert group.count('<svg class="chart"') == 2
    assert "failover" in console.get("/console/switches").text
    found = console.get(f"/console/orders?account={ACCOUNT}").text
    assert f'href="/console/orders/{order_id}"' in found and "1 match" in found
    assert (
        "1 match"
        in console.get(f"/console/orders?status=succeeded&from=2000-01-01T00:00&order_id={order_id}").text
    )
    assert "0 matches" in console.get("/console/orders?status=failed").text
    assert "From: a date and time" in console.get("/console/orders?from=yesterday").text
    page = console.get(f"/console/orders/{order_id}").text
    for text in (
        "Callback failed from supA",
        "Attempt failed",
        "Callback success from supB",
        "Order succeeded",
        "Ledger capture 4980 fen",
        f"{order_id}-1",
        f"{order_id}-2",
    ):
        assert text in page, text
    assert console.get("/console/orders/ord_missing").status_code == 404


def test_channel_form_bad_value_changes_nothing_good_value_saves(
    platform: Platform, sim: Any, console: ConsoleClient
) -> None:
    setup_airtime(platform, sim, {"supA": {}})
    console.login()
    form_page = console.get("/console/edit/channel?code=supA").text
    assert "sim-secret" not in form_page and 'name="secret" type="password"' in form_page
    before = platform.admin.get("/admin/v1/channels").json()["items"][0]
    base = {
        "code": "supA",
        "name": "Supplier A",
        "base_url": before["base_url"],
        "secret": "",
        "supports_query": "on",
        "enabled": "on",
    }
    bad = console.post("/console/edit/channel", {**base, "timeout_s": "soon", "max_wait_s": "4"})
    assert bad.status_code == 400
    assert "Nothing was saved." in bad.text and "Timeout (s): Input should be a valid number" in bad.text
    rule = console.post("/console/edit/channel", {**base, "timeout_s": "5", "max_wait_s": "1"})
    assert rule.status_code == 400 and "max_wait_s: must be at least timeout_s" in rule.text
    assert platform.admin.get("/admin/v1/channels").json()["items"][0] == before
    good = console.post("/console/edit/channel", {**base, "timeout_s": "0.75", "max_wait_s": "3"})
    assert good.status_code == 303, good.text
    after = platform.admin.get("/admin/v1/channels").json()["items"][0]
    assert (after["name"], after["timeout_s"], after["max_wait_s"]) == ("Supplier A", 0.75, 3.0)
    # The stored secret was kept: orders still pass the simulator's signature check.
    m = platform.merchant()
    assert platform.wait_order(m.order("S-1").json()["order_id"])["status"] == "succeeded"
    m.close()


def test_product_and_group_forms(platform: Platform, sim: Any, console: ConsoleClient) -> None:
    setup_airtime(platform, sim, {"supA": {}, "supB": {}})
    console.login()
    product = {
        "code": "airtime.50",
        "business_type": "mobile_airtime",
        "brand": "auto",
        "name": "Airtime 50",
        "face_value": "5000",
        "enabled": "on",
    }
    r = console.post("/console/edit/product", {**product, "price": "500000"})
    assert r.status_code == 400 and "more than ten times the face value" in r.text
    r = console.post("/console/edit/product", {**product, "price": "4990"})
    assert r.status_code == 303
    items = platform.admin.get("/admin/v1/products").json()["items"]
    assert [(p["name"], p["price"]) for p in items] == [("Airtime 50", 4990)]
    group = {
        "code": "air",
        "business_type": "mobile_airtime",
        "strategy": "priority",
        "sticky": "on",
        "recovery_s": "60",
        "member-0-channel": "supB",
        "member-0-priority": "1",
        "member-1-channel": "supA",
        "member-1-priority": "2",
    }
    r = console.post("/console/edit/group", {**group, "member-2-channel": "nope"})
    assert r.status_code == 400 and "unknown channel(s) nope" in r.text
    assert platform.get_group("air")["ranking"] == ["supA", "supB"]
    r = console.post("/console/edit/group", group)
    assert r.status_code == 303 and r.headers["location"].startswith("/console/groups/air?done=saved")
    assert platform.get_group("air")["ranking"] == ["supB", "supA"]
    edit = console.get("/console/edit/group?code=air").text
    assert 'name="member-0-priority" value="1"' in edit


def test_merchants_page_and_deposits(platform: Platform, console: ConsoleClient) -> None:
    m = platform.merchant("m1", secret="merchant-secret-0001", balance=10_000)
    m.close()
    console.login()
    page = console.get("/console/merchants").text
    assert "¥100.00" in page and "merchant-secret-0001" not in page
    reference = _field(page, "reference")
    assert (
        console.post("/console/merchants/m1/deposit", {"amount": "x", "reference": reference}).status_code
        == 400
    )
    r = console.post("/console/merchants/m1/deposit", {"amount": "5000", "reference": reference})
    assert r.status_code == 303 and "done=deposited" in r.headers["location"]
    again = console.post("/console/merchants/m1/deposit", {"amount": "5000", "reference": reference})
    assert "done=replayed" in again.headers["location"]
    assert "¥150.00" in console.get("/console/merchants").text
    assert (
        console.post("/console/merchants/nobody/deposit", {"amount": "1", "reference": "r"}).status_code
        == 404
    )


def test_exceptions_are_listed_and_resolved(platform: Platform, console: ConsoleClient) -> None:
    from topup.adapters.db import tables as t

    async def insert(tx: Any) -> None:
        await tx.conn.execute(
            t.exceptions.insert().values(
                id="exc_1",
                kind="late_success",
                order_id="ord_1",
                ref="ord_1-1",
                channel_code="supA",
                detail={"note": "refunded already"},
                created_at=tx.now,
            )
        )

    run_db(platform, insert)
    console.login()
    page = console.get("/console/exceptions").text
    assert "late_success" in page and 'action="/console/exceptions/exc_1/resolve"' in page
    r = console.post("/console/exceptions/exc_1/resolve", {"note": "supplier credited us"})
    assert r.status_code == 303
    assert "Nothing needs a person." in console.get("/console/exceptions").text
    resolved = platform.admin.get("/admin/v1/exceptions?resolved=true").json()["items"][0]
    assert (resolved["resolved_by"], resolved["resolution_note"]) == ("admin (token)", "supplier credited us")
    assert console.post("/console/exceptions/exc_1/resolve", {"note": "again"}).status_code == 409


def test_operator_accounts_sign_in_and_lose_access_when_removed(
    platform: Platform, console: ConsoleClient
) -> None:
    from sqlalchemy import delete

    from topup.adapters.db import tables as t
    from topup.services.merchants import hash_password

    async def add(tx: Any) -> None:
        await tx.conn.execute(
            t.operators.insert().values(
                id="alice", password_hash=hash_password("correct horse"), created_at=tx.now
            )
        )

    run_db(platform, add)
    assert console.login("wrong password", username="alice").status_code == 401
    assert console.login("correct horse", username="alice").status_code == 303
    assert "alice" in console.get("/console").text

    async def remove(tx: Any) -> None:
        await tx.conn.execute(delete(t.operators).where(t.operators.c.id == "alice"))

    run_db(platform, remove)
    assert console.get("/console").status_code == 303


def test_overview_and_channel_switch_admin_endpoints(platform: Platform, sim: Any) -> None:
    failover_scenario(platform, sim)
    assert httpx.get(f"{platform.url}/admin/v1/overview", trust_env=False).status_code == 401
    ov = platform.admin.get("/admin/v1/overview").json()
    assert ov["orders_by_status"] == {"succeeded": 1} and ov["failovers"] == 1 and ov["success_rate"] == 1.0
    assert len(ov["series"]) == 60 and sum(b["orders"] for b in ov["series"]) == 1
    assert platform.admin.post("/admin/v1/channels/supA/disable").json()["enabled"] is False
    assert platform.admin.post("/admin/v1/channels/supA/enable").json()["enabled"] is True
    assert platform.admin.post("/admin/v1/channels/nope/enable").status_code == 404
