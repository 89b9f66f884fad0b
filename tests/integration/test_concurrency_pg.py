"""Concurrent intake on PostgreSQL: the balance guard and idempotency hold under parallel requests.

The worker is off so held money stays held (a failed order's refund would otherwise free balance).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from tests.conftest import start_platform
from tests.support.platform import Platform, SignedClient

pytestmark = pytest.mark.pg

PRICE = 4980


@pytest.fixture
def pg_platform(pg_url: str) -> Iterator[Platform]:
    # A small pool (at most 12 connections) still runs a dozen intake transactions at once, and leaves
    # room on a PostgreSQL shared with other test runs.
    server, p = start_platform(pg_url, run_worker=False, db_pool_size=4)
    try:
        p.product("airtime.50", price=PRICE)
        p.channel("supA", "http://127.0.0.1:9/topup")
        p.group("air", "mobile_airtime", [{"channel": "supA", "priority": 1, "weight": 1, "costs": {}}])
        yield p
    finally:
        p.admin.close()
        server.stop()


def run_together(n: int, fn: Callable[[int], Any]) -> list[Any]:
    """Call fn(0..n-1) from n threads released at the same moment."""
    barrier = threading.Barrier(n)

    def go(i: int) -> Any:
        barrier.wait(timeout=30)
        return fn(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(go, range(n)))


def clients(
    p: Platform, n: int, merchant_id: str = "m1", secret: str = "merchant-secret-0001"
) -> list[SignedClient]:
    return [SignedClient(p.url, merchant_id, secret) for _ in range(n)]


class BalanceWatcher:
    """Reads the balance over and over while the requests run; remembers every value seen."""

    def __init__(self, m: SignedClient) -> None:
        self.m = m
        self.seen: list[dict[str, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            r = self.m.get("/v1/balance")
            assert r.status_code == 200, r.text
            self.seen.append(r.json())

    def __enter__(self) -> BalanceWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def test_parallel_orders_never_overdraw(pg_platform: Platform) -> None:
    p = pg_platform
    watcher_client = p.merchant(balance=10 * PRICE)
    cs = clients(p, 40)
    try:
        with BalanceWatcher(watcher_client) as watcher:
            responses = run_together(40, lambda i: cs[i].order(f"C-{i}"))
    finally:
        for c in cs:
            c.close()
    codes = Counter(r.status_code for r in responses)
    assert codes == {201: 10, 402: 30}, [(r.status_code, r.text) for r in responses if r.status_code >= 500]
    for r in responses:
        if r.status_code == 402:
            assert r.json()["error"]["code"] == "insufficient_balance"
    assert watcher.seen, "the watcher read no balance"
    for b in watcher.seen:
        assert b["available"] >= 0 and b["held"] >= 0
        assert b["available"] + b["held"] == 10 * PRICE
    assert watcher_client.get("/v1/balance").json() == {"available": 0, "held": 10 * PRICE, "currency": "CNY"}
    listed = watcher_client.get("/v1/orders?limit=200").json()["items"]
    created = {r.json()["order_id"] for r in responses if r.status_code == 201}
    assert {o["order_id"] for o in listed} == created
    check = p.ledger_check()
    assert check["balanced"] is True, check
    assert check["negative_accounts"] == []
    watcher_client.close()


def test_parallel_identical_requests_create_one_order(pg_platform: Platform) -> None:
    p = pg_platform
    m = p.merchant(balance=100 * PRICE)
    cs = clients(p, 30)
    try:
        responses = run_together(30, lambda i: cs[i].order("SAME-1"))
    finally:
        for c in cs:
            c.close()
    codes = Counter(r.status_code for r in responses)
    assert codes == {201: 1, 200: 29}, [r.text for r in responses if r.status_code not in (200, 201)]
    assert len({r.json()["order_id"] for r in responses}) == 1
    assert len(m.get("/v1/orders").json()["items"]) == 1
    assert m.get("/v1/balance").json() == {"available": 99 * PRICE, "held": PRICE, "currency": "CNY"}
    assert p.ledger_check()["balanced"] is True
    m.close()


def test_parallel_conflicting_requests_create_one_order(pg_platform: Platform) -> None:
    p = pg_platform
    m = p.merchant(balance=100 * PRICE)
    cs = clients(p, 20)
    accounts = ["13800138000", "13800138001"]
    try:
        responses = run_together(20, lambda i: cs[i].order("SAME-2", account=accounts[i % 2]))
    finally:
        for c in cs:
            c.close()
    codes = Counter(r.status_code for r in responses)
    assert codes[201] == 1 and codes[200] == 9 and codes[409] == 10, codes
    winner = next(r.json() for r in responses if r.status_code == 201)
    for i, r in enumerate(responses):
        same_body = accounts[i % 2] == winner["account"]
        assert r.status_code in ((200, 201) if same_body else (409,)), (i, r.text)
    assert m.get("/v1/balance").json()["held"] == PRICE
    assert p.ledger_check()["balanced"] is True
    m.close()


def test_parallel_credits_with_one_reference_credit_once(pg_platform: Platform) -> None:
    p = pg_platform
    m = p.merchant(balance=0)

    def credit(_: int) -> httpx.Response:
        with httpx.Client(base_url=p.url, headers=dict(p.admin.headers), trust_env=False) as c:
            return c.post("/admin/v1/merchants/m1/credits", json={"amount": 777, "reference": "wire-1"})

    responses = run_together(20, credit)
    assert Counter(r.status_code for r in responses) == {201: 1, 200: 19}, [r.text for r in responses]
    assert m.get("/v1/balance").json()["available"] == 777
    assert p.ledger_check()["balanced"] is True
    m.close()


def test_two_merchants_in_parallel_keep_their_own_money(pg_platform: Platform) -> None:
    p = pg_platform
    a = p.merchant("ma", secret="merchant-secret-000a", balance=5 * PRICE)
    b = p.merchant("mb", secret="merchant-secret-000b", balance=3 * PRICE)
    cs = clients(p, 12, "ma", "merchant-secret-000a") + clients(p, 12, "mb", "merchant-secret-000b")
    try:
        responses = run_together(24, lambda i: cs[i].order(f"X-{i}"))
    finally:
        for c in cs:
            c.close()
    ok_a = sum(1 for r in responses[:12] if r.status_code == 201)
    ok_b = sum(1 for r in responses[12:] if r.status_code == 201)
    assert (ok_a, ok_b) == (5, 3)
    assert {r.status_code for r in responses} == {201, 402}
    assert a.get("/v1/balance").json()["available"] == 0
    assert b.get("/v1/balance").json()["available"] == 0
    assert p.ledger_check()["balanced"] is True
    a.close()
    b.close()
