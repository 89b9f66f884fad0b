"""Security: merchants are walled off from each other, operators need the token, secrets stay secret,
passwords are argon2 hashes, signatures are checked in constant time within the time window, and a
merchant cannot make the platform call into its own network (SSRF).

Related checks that live beside their features: the header variants of the bearer token over the
OpenAPI operations (test_orders_api.py), the console's cookies, CSRF and throttling (test_console.py),
stream pushes per merchant and stream auth (test_stream.py), signature vectors (unit/test_signing.py).
"""

from __future__ import annotations

import asyncio
import hmac
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.responses import Response
from tests.support.platform import ADMIN_TOKEN, Platform, SignedClient, setup_airtime, sim_channel, wait_until
from tests.support.processes import serve

from topup.entrypoints.websession import LoginThrottle, Sessions
from topup.signing import signed_headers

BALANCE = 1_000_000
PRICE = 4980


def db_scalar(database_url: str, sql: str) -> Any:
    """Read the platform's database directly (not through the API under test)."""
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.split("///", 1)[1]) as conn:
            row = conn.execute(sql).fetchone()
        return row[0] if row else None
    import asyncpg

    async def run() -> Any:
        conn = await asyncpg.connect(database_url, timeout=10)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    return asyncio.run(run())


def route_table(platform: Platform) -> list[Any]:
    """The running app's routes, flattened, plug-ins included (the same container builds the same table)."""
    from fastapi import routing

    from topup.entrypoints.api.app import create_app

    routes = create_app(platform.container).routes
    # FastAPI >= 0.16x keeps included routers as nodes; its own helper flattens them (older: already flat).
    flatten = getattr(routing, "_iter_included_route_candidates", None)
    return list(flatten(routes)) if flatten else list(routes)


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


# ---- merchants cannot reach each other's data -----------------------------------------------------------


def test_a_merchant_never_sees_or_changes_another_merchants_orders_batches_payments_events(
    platform: Platform, sim: Any
) -> None:
    setup_airtime(platform, sim, {"supA": {}})
    a = platform.merchant("ma", secret="merchant-a-secret-0001", balance=BALANCE)
    b = platform.merchant("mb", secret="merchant-b-secret-0002", balance=BALANCE)
    order = a.order("SAME-1").json()
    platform.wait_order(order["order_id"])
    batch = a.post(
        "/v1/batches",
        {"merchant_batch_id": "B-1", "rows": [{"product_code": "airtime.50", "account": "13800138001"}]},
    ).json()
    assert batch["status"] == "awaiting_payment", batch
    events = wait_until(lambda: a.get("/v1/events").json()["items"], what="a's final event")
    evt = events[0]["event_id"]

    def not_found(r: httpx.Response) -> None:
        assert r.status_code == 404, (r.request.url, r.text)
        assert r.json()["error"]["code"] == "not_found"

    oid, bid = order["order_id"], batch["batch_id"]
    not_found(b.get(f"/v1/orders/{oid}"))
    not_found(b.get(f"/v1/batches/{bid}"))
    not_found(b.get(f"/v1/batches/{bid}/results.csv"))
    not_found(b.post(f"/v1/batches/{bid}/payment", {"method": "balance"}))
    not_found(b.post(f"/v1/batches/{bid}/payment", {"method": "sandbox"}))
    not_found(b.post(f"/v1/batches/{bid}/cancel"))
    not_found(b.get(f"/v1/events?after={evt}"))
    assert b.get("/v1/orders?merchant_order_id=SAME-1").json()["items"] == []
    assert b.get(f"/v1/orders?batch_id={bid}").json()["items"] == []
    assert b.get("/v1/orders").json()["items"] == []
    assert b.get("/v1/batches").json()["items"] == []
    assert b.get("/v1/events").json()["items"] == []
    # Claiming to be A with B's secret is not a way in.
    spoof = SignedClient(platform.url, "ma", "merchant-b-secret-0002")
    assert spoof.get(f"/v1/orders/{oid}").status_code == 401
    spoof.close()
    # The same merchant_order_id is B's own, separate order.
    mine = b.order("SAME-1")
    assert mine.status_code == 201 and mine.json()["order_id"] != oid
    # Nothing of A's changed: the batch is unpaid and uncancelled, A paid only its own order.
    assert a.get(f"/v1/batches/{bid}").json()["status"] == "awaiting_payment"
    assert a.get("/v1/balance").json()["available"] == BALANCE - PRICE
    platform.wait_order(mine.json()["order_id"])
    assert b.get("/v1/balance").json()["available"] == BALANCE - PRICE
    assert [e["order"]["order_id"] for e in b.get("/v1/events").json()["items"]] == [mine.json()["order_id"]]
    assert platform.ledger_check()["balanced"]


# ---- operators -----------------------------------------------------------------------------------------


def test_every_admin_route_in_the_route_table_needs_the_bearer_token(platform: Platform) -> None:
    """Enumerated from the app itself, so routes added later (and hidden from OpenAPI) are covered."""
    ops = []
    for route in route_table(platform):
        if isinstance(route, APIRoute) and route.path.startswith("/admin"):
            ops += [(method, concrete(route.path)) for method in sorted(route.methods - {"HEAD"})]
        elif isinstance(route, APIWebSocketRoute) and route.path.startswith("/admin"):
            pytest.fail(f"a WebSocket under /admin needs its own auth check: {route.path}")
    assert len(ops) >= 20, ops
    with httpx.Client(base_url=platform.url, trust_env=False) as anon:
        for method, path in ops:
            for headers in ({}, {"Authorization": "Bearer not-the-token"}, {"Authorization": ADMIN_TOKEN}):
                r = anon.request(method, path, json={}, headers=headers)
                assert r.status_code == 401, (method, path, headers, r.status_code, r.text)
                assert r.json()["error"]["code"] == "unauthorized"
                assert ADMIN_TOKEN not in r.text


def test_the_admin_token_is_compared_in_constant_time(platform: Platform, monkeypatch) -> None:
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert platform.admin.get("/admin/v1/ledger/check").status_code == 200
    assert any(ADMIN_TOKEN.encode() in (a, b) for a, b in calls), "the token check used compare_digest"


# ---- signatures -------------------------------------------------------------------------------------------


def test_every_signature_check_uses_compare_digest(platform: Platform, sim: Any, monkeypatch) -> None:
    """Merchant requests and supplier callbacks (the platform runs in this process, so the spy sees it)."""
    setup_airtime(platform, sim, {"supA": {"silent_ratio": 1.0}}, timeout_s=30, max_wait_s=60)
    m = platform.merchant(balance=BALANCE)
    order = m.order("CT-1").json()
    wait_until(lambda: platform.admin_order(order["order_id"])["attempts"], what="dispatch")
    seen: list[str] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        seen.append(a if isinstance(a, str) else a.decode("latin-1"))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert m.get("/v1/balance").status_code == 200
    assert seen and all(re.fullmatch(r"[0-9a-f]{64}", s) for s in seen), seen
    before = len(seen)
    raw = orjson.dumps({"ref": f"{order['order_id']}-1", "status": "success"})
    path = "/callbacks/topup-json/supA"
    headers = signed_headers("sim-secret", "POST", path, raw, time.time())
    assert httpx.post(platform.url + path, content=raw, headers=headers, trust_env=False).status_code == 200
    assert len(seen) > before, "the callback's signature went through compare_digest"


def test_timestamps_outside_the_window_are_refused_and_change_nothing(platform: Platform, sim: Any) -> None:
    setup_airtime(platform, sim, {"supA": {}})
    platform.merchant(balance=BALANCE)
    fresh = SignedClient(platform.url, "m1", "merchant-secret-0001")
    for skew in (-301, 301, -3600, 10**6):
        stale = SignedClient(platform.url, "m1", "merchant-secret-0001", clock=lambda s=skew: time.time() + s)
        r = stale.order("TS-1")
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", r.text
        assert stale.get("/v1/balance").status_code == 401
        stale.close()
    assert fresh.get("/v1/orders?merchant_order_id=TS-1").json()["items"] == []
    assert fresh.get("/v1/balance").json() == {"available": BALANCE, "held": 0, "currency": "CNY"}
    # Inside the window (even near its edge) the same request goes through.
    near = SignedClient(platform.url, "m1", "merchant-secret-0001", clock=lambda: time.time() - 290)
    assert near.order("TS-1").status_code == 201
    near.close()
    fresh.close()


# ---- passwords, sessions, throttling ----------------------------------------------------------------------


def test_passwords_are_stored_as_argon2id_hashes_and_never_shown(platform: Platform) -> None:
    password = "correct-horse-battery-9"
    platform.merchant("mpw", secret="merchant-pw-secret-0001", balance=0, password=password)
    stored = db_scalar(platform.database_url, "SELECT password_hash FROM merchants WHERE id = 'mpw'")
    assert stored.startswith("$argon2id$"), stored
    assert password not in stored
    from topup.services.merchants import verify_password

    assert verify_password(stored, password) and not verify_password(stored, password + "x")
    listing = platform.admin.get("/admin/v1/merchants").text
    assert "$argon2" not in listing and password not in listing
    assert '"has_password":true' in listing.replace(" ", "")


def test_session_cookies_are_httponly_and_samesite() -> None:
    for kind in ("merchant", "operator"):
        response = Response()
        Sessions("k" * 32, f"topup_{kind}", kind).login(response, "subject")
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie, cookie
        assert re.search(r"SameSite=(lax|strict)", cookie, re.I), cookie
        assert "Path=/" in cookie
    secure = Response()
    Sessions("k" * 32, "topup_operator", "operator", secure=True).login(secure, "subject")
    assert "Secure" in secure.headers["set-cookie"]


def test_login_pages_set_only_httponly_samesite_cookies(platform: Platform) -> None:
    """Every cookie the sign-in pages set (merchant /login and console /console/login, where present)."""
    paths = {r.path for r in route_table(platform) if isinstance(r, APIRoute)}
    pages = [p for p in ("/login", "/console/login") if p in paths]
    assert "/console/login" in pages
    with httpx.Client(base_url=platform.url, trust_env=False) as web:
        cookies = []
        for page in pages:
            r = web.get(page)
            assert r.status_code == 200, (page, r.text[:200])
            cookies += r.headers.get_list("set-cookie")
        # The operator console session itself (sign in with the admin token).
        token = web.cookies.get("topup_console_login")
        r = web.post("/console/login", data={"username": "", "password": ADMIN_TOKEN, "csrf": token or ""})
        assert r.status_code == 303, r.text[:300]
        cookies += r.headers.get_list("set-cookie")
    assert any(c.startswith("topup_console=") for c in cookies)
    for cookie in cookies:
        if "Max-Age=0" in cookie or "expires=Thu, 01 Jan 1970" in cookie:
            continue  # a deletion
        assert "HttpOnly" in cookie, cookie
        assert re.search(r"SameSite=(lax|strict)", cookie, re.I), cookie


def test_login_throttle_slows_down_repeated_failures() -> None:
    t = LoginThrottle(free_failures=5, window_s=300)
    now = 1000.0
    for i in range(5):
        assert t.retry_after("ip:alice", now + i) == 0.0
        t.failed("ip:alice", now + i)
    last = now + 4
    assert t.retry_after("ip:alice", last) == pytest.approx(1.0)  # 2**0 after the 5th failure
    t.failed("ip:alice", last + 1)
    assert t.retry_after("ip:alice", last + 1) == pytest.approx(2.0)
    t.failed("ip:alice", last + 3)
    assert t.retry_after("ip:alice", last + 3) == pytest.approx(4.0)
    waits = []
    for k in range(10):
        t.failed("ip:alice", last + 10 + k)
        waits.append(t.retry_after("ip:alice", last + 10 + k))
    assert waits == sorted(waits) and waits[-1] == 300.0, "grows per failure, capped at 5 minutes"
    assert t.retry_after("ip:bob", last) == 0.0, "one key's failures do not lock out another"
    # Failures age out of the window; a success forgives at once.
    assert t.retry_after("ip:alice", last + 10 + 9 + 301 + 300) == 0.0
    t.failed("ip:carol", now)
    t.succeeded("ip:carol")
    assert t.retry_after("ip:carol", now) == 0.0


# ---- secrets stay secret -------------------------------------------------------------------------------

MERCHANT_SECRET = "sec-merchant-Q7w9-0123456789"
MERCHANT_PASSWORD = "pw-Hunter2-Zx81-secret"
CHANNEL_SECRET = "chan-secret-XyZ-98765-abcdef"
SECRETS = (MERCHANT_SECRET, MERCHANT_PASSWORD, CHANNEL_SECRET, ADMIN_TOKEN)


def _with_secrets(p: Platform, sim: Any) -> tuple[SignedClient, str]:
    """A merchant with a secret and a password, a channel with a secret, one order through it."""
    setup_airtime(p, sim, {"supS": {"secret": CHANNEL_SECRET, "silent_ratio": 1.0}}, timeout_s=0.3)
    # setup_airtime registers the channel with the default secret: give it the real one.
    url = sim_channel(sim, "supS", secret=CHANNEL_SECRET)
    p.channel("supS", url, secret=CHANNEL_SECRET, timeout_s=0.3, max_wait_s=0.6)
    r = p.admin.put(
        "/admin/v1/merchants/msec",
        json={"name": "secretive", "secret": MERCHANT_SECRET, "password": MERCHANT_PASSWORD},
    )
    assert r.status_code in (200, 201) and not any(s in r.text for s in SECRETS), r.text
    p.admin.post("/admin/v1/merchants/msec/credits", json={"amount": BALANCE, "reference": "init"})
    m = SignedClient(p.url, "msec", MERCHANT_SECRET)
    order = m.order("SEC-1")
    assert order.status_code == 201, order.text
    oid = order.json()["order_id"]
    wait_until(lambda: p.admin_order(oid)["attempts"], what="dispatch")
    # Failures that involve secrets: bad signatures, a stale one, a bad token, invalid secrets.
    bad = SignedClient(p.url, "msec", MERCHANT_SECRET + "x")
    assert bad.get("/v1/balance").status_code == 401
    bad.close()
    raw = orjson.dumps({"ref": f"{oid}-1", "status": "success"})
    path = "/callbacks/topup-json/supS"
    forged = signed_headers(CHANNEL_SECRET[::-1], "POST", path, raw, time.time())
    assert httpx.post(p.url + path, content=raw, headers=forged, trust_env=False).status_code == 401
    for body in (
        {"name": "x", "secret": "short", "password": MERCHANT_PASSWORD},
        {"name": "x", "secret": MERCHANT_SECRET, "password": "1"},
        {"name": "x", "secret": MERCHANT_SECRET * 10},
    ):
        r = p.admin.put("/admin/v1/merchants/msec2", json=body)
        assert r.status_code == 400, r.text
        assert not any(s in r.text for s in SECRETS), r.text
    r = p.admin.put(
        "/admin/v1/channels/supS",
        json={"name": "s", "protocol": "topup-json", "base_url": "nope", "secret": CHANNEL_SECRET},
    )
    assert r.status_code == 400 and CHANNEL_SECRET not in r.text, r.text
    r = httpx.get(p.url + "/admin/v1/ledger/check", headers={"Authorization": f"Bearer {ADMIN_TOKEN}x"})
    assert r.status_code == 401 and ADMIN_TOKEN not in r.text
    return m, oid


def test_secrets_never_appear_in_admin_responses_or_error_bodies(platform: Platform, sim: Any) -> None:
    m, oid = _with_secrets(platform, sim)
    pages = {
        concrete(r.path)
        for r in route_table(platform)
        if isinstance(r, APIRoute)
        and "GET" in r.methods
        and r.path.startswith("/admin")
        and "{" not in r.path
    }
    pages |= {
        f"/admin/v1/orders/{oid}",
        "/admin/v1/groups/air",
        "/admin/v1/groups/air/switches",
        "/metrics",
        "/v1/orders",
    }
    assert {"/admin/v1/channels", "/admin/v1/merchants"} <= pages
    for page in sorted(pages):
        r = m.get(page) if page.startswith("/v1") else platform.admin.get(page)
        assert r.status_code < 500, (page, r.text[:300])
        leaked = [s for s in SECRETS if s in r.text]
        assert not leaked, f"{page} shows {leaked}"
        assert "$argon2" not in r.text, page
    m.close()


@pytest.mark.slow
def test_secrets_never_appear_in_logs(tmp_path: Path, sim: Any) -> None:
    """A real `topup serve` logging at DEBUG: secrets used and refused along the way never reach the log."""
    log = tmp_path / "serve.log"
    db = f"sqlite:///{tmp_path}/topup.db"
    proc, port = serve(db, log, TOPUP_LOG_LEVEL="DEBUG", TOPUP_LOG_JSON="true")
    admin = httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        trust_env=False,
    )
    p = Platform(f"http://127.0.0.1:{port}", db, admin)
    try:
        m, oid = _with_secrets(p, sim)
        # The console sign-in takes the admin token (and a wrong one) in a form body.
        with httpx.Client(base_url=p.url, trust_env=False) as web:
            web.get("/console/login")
            csrf = web.cookies.get("topup_console_login") or ""
            web.post(
                "/console/login", data={"username": "", "password": ADMIN_TOKEN + "-wrong", "csrf": csrf}
            )
            web.post("/console/login", data={"username": "", "password": ADMIN_TOKEN, "csrf": csrf})
        p.wait_order(oid, timeout_s=20)
        m.close()
    finally:
        proc.stop()
        admin.close()
    text = log.read_text(errors="replace")
    assert len(text.splitlines()) > 5, "the server did log"
    leaked = [s for s in SECRETS if s in text]
    assert not leaked, f"secrets in the log: {leaked}"
    assert "$argon2" not in text


# ---- SSRF: merchant-supplied notify URLs ------------------------------------------------------------------


PRIVATE_NOTIFY_URLS = [
    "http://127.0.0.1:8080/cb",
    "http://localhost/cb",
    "http://10.0.0.8/cb",
    "http://192.168.1.20/cb",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/cb",
    "http://2130706433/cb",
    "http://intranet/cb",
    "http://shop.example.com@127.0.0.1/cb",
]


def test_private_notify_urls_are_refused_and_nothing_is_created(platform: Platform, sim: Any) -> None:
    setup_airtime(platform, sim, {"supA": {}})
    platform.container.settings.allow_private_notify_urls = False
    m = platform.merchant(balance=BALANCE)
    for url in PRIVATE_NOTIFY_URLS:
        r = m.order("SSRF-1", notify_url=url)
        assert r.status_code == 400, (url, r.text)
        err = r.json()["error"]
        assert err["code"] == "invalid_request" and err["message"].startswith("notify_url:"), (url, err)
    assert m.get("/v1/orders?merchant_order_id=SSRF-1").json()["items"] == []
    assert m.get("/v1/balance").json() == {"available": BALANCE, "held": 0, "currency": "CNY"}
    assert platform.ledger_check()["balanced"]


def test_public_notify_urls_and_the_setting_and_operator_defaults(platform: Platform, sim: Any) -> None:
    # A silent supplier: the orders stay processing, so nothing is ever sent to these addresses.
    setup_airtime(platform, sim, {"supA": {"silent_ratio": 1.0}}, timeout_s=30, max_wait_s=60)
    settings = platform.container.settings
    settings.allow_private_notify_urls = False
    m = platform.merchant(balance=BALANCE, notify_url="http://127.0.0.1:9/operator-set-default")
    assert m.order("PUB-1", notify_url="https://merchant.example.com/cb").status_code == 201
    # The operator's default for the merchant is trusted: an order without its own URL is accepted.
    assert m.order("DEF-1").status_code == 201
    assert m.order("PRIV-1", notify_url="http://127.0.0.1:9/cb").status_code == 400
    # With the setting on (tests, demos) a private per-order URL is accepted.
    settings.allow_private_notify_urls = True
    assert m.order("PRIV-1", notify_url="http://127.0.0.1:9/cb").status_code == 201
