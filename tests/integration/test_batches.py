"""Batches over real HTTP (SQLite and PostgreSQL): placing, one payment, cancel, sandbox, refunds."""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from tests.conftest import start_platform
from tests.support.platform import Platform, SignedClient, setup_airtime, wait_until

from topup.services.payments import sandbox_secret
from topup.signing import signed_headers

PRICE = 4980
GOOD = ["13800138000", "13900139000", "15000150000", "18800188000"]


def rows(*accounts: str, product: str = "airtime.50") -> list[dict[str, str]]:
    return [{"product_code": product, "account": a} for a in accounts]


def batch(m: SignedClient, mbid: str, body_rows: list[Any], **kw: Any) -> httpx.Response:
    return m.post("/v1/batches", {"merchant_batch_id": mbid, "rows": body_rows, **kw})


def wait_batch(m: SignedClient, batch_id: str, statuses: tuple[str, ...], timeout_s: float = 20) -> dict:
    def done() -> dict | None:
        b = m.get(f"/v1/batches/{batch_id}").json()
        return b if b["status"] in statuses else None

    return wait_until(done, timeout_s, f"batch {batch_id} in {statuses}")


def transfers(p: Platform) -> int:
    return int(p.ledger_check()["transfers"])


def notify(p: Platform, body: dict[str, Any], secret: str | None = None) -> httpx.Response:
    raw = orjson.dumps(body)
    h = signed_headers(
        secret or sandbox_secret(p.container.settings.secret_key, None),
        "POST",
        "/sandbox/notify",
        raw,
        time.time(),
    )
    h["Content-Type"] = "application/json"
    return httpx.post(f"{p.url}/sandbox/notify", content=raw, headers=h, trust_env=False)


def press(p: Platform, pay_url: str, decision: str) -> httpx.Response:
    """What the payer does on the hosted sandbox page: open it, press Pay or Decline."""
    with httpx.Client(trust_env=False, follow_redirects=False) as h:
        page = h.get(pay_url)
        assert page.status_code == 200, page.text
        token = re.search(r'name="token" value="([0-9a-f]+)"', page.text)
        assert token, page.text
        return h.post(pay_url, data={"decision": decision, "token": token.group(1)})


@pytest.fixture
def airtime(platform: Platform, sim: Any) -> Platform:
    setup_airtime(platform, sim, {"supA": {}})
    return platform


def test_every_row_validated_in_spec_order(airtime: Platform) -> None:
    p = airtime
    p.product("data.cmcc.1g", business_type="mobile_data", brand="cmcc", face_value=3000, price=2900)
    m = p.merchant()
    body = [
        {"product_code": "airtime.50", "account": "13800138000"},
        {"product_code": "nope", "account": "13800138000"},
        {"product_code": "airtime.50", "account": "12345"},
        {"product_code": "data.cmcc.1g", "account": "13800138000"},
        {"product_code": "airtime.50"},
        "not a row",
        {"product_code": "airtime.50", "account": "139 0013 9000"},
    ]
    r = batch(m, "B-1", body)
    assert r.status_code == 201, r.text
    b = r.json()
    assert b["batch_id"].startswith("bat_")
    assert (b["status"], b["total_rows"], b["valid_rows"], b["amount"]) == (
        "awaiting_payment",
        7,
        2,
        2 * PRICE,
    )
    assert b["counts"] == {"pending_payment": 2, "processing": 0, "succeeded": 0, "failed": 0, "cancelled": 0}
    assert b["payment"] is None
    codes = [(x["row"], x["status"], (x["error"] or {}).get("code")) for x in b["rows"]]
    assert codes == [
        (1, "placed", None),
        (2, "invalid", "unknown_product"),
        (3, "invalid", "invalid_account"),
        (4, "invalid", "no_route"),
        (5, "invalid", "invalid_request"),
        (6, "invalid", "invalid_request"),
        (7, "placed", None),
    ]
    for x in b["rows"]:
        assert (x["order_id"] is None) == (x["status"] == "invalid")
    o = m.get(f"/v1/orders/{b['rows'][6]['order_id']}").json()
    assert (o["status"], o["batch_id"], o["account"]) == ("pending_payment", b["batch_id"], "13900139000")
    assert o["merchant_order_id"] == f"{b['batch_id']}-7"
    # Nothing is charged before the payment.
    assert m.get("/v1/balance").json()["available"] == 1_000_000
    # Malformed bodies are 400 and create nothing.
    assert m.post("/v1/batches", {"rows": rows(GOOD[0])}).status_code == 400
    assert m.post("/v1/batches", {"merchant_batch_id": "B-2", "rows": []}).status_code == 400
    assert m.post("/v1/batches", {"merchant_batch_id": "B 2", "rows": rows(GOOD[0])}).status_code == 400
    assert m.request("POST", "/v1/batches", raw=b"{nope").status_code == 400
    assert m.get("/v1/batches").json()["items"][0]["batch_id"] == b["batch_id"]
    assert len(m.get("/v1/batches").json()["items"]) == 1


def test_idempotent_by_merchant_batch_id(airtime: Platform) -> None:
    m = airtime.merchant()
    first = batch(m, "B-7", rows(GOOD[0], GOOD[1]))
    assert first.status_code == 201
    again = batch(m, "B-7", rows(GOOD[0], GOOD[1]))
    assert again.status_code == 200
    assert again.json()["batch_id"] == first.json()["batch_id"]
    assert again.json()["rows"] == first.json()["rows"]
    other = batch(m, "B-7", rows(GOOD[0]))
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_conflict"
    assert len(m.get("/v1/orders?limit=50").json()["items"]) == 2


def test_too_many_rows_is_413(airtime: Platform) -> None:
    m = airtime.merchant()
    r = batch(m, "B-big", rows(*([GOOD[0]] * 10_001)))
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "batch_too_large"
    assert m.get("/v1/batches").json()["items"] == []


def test_balance_payment_is_one_payment_and_one_transfer(airtime: Platform) -> None:
    p = airtime
    m = p.merchant()
    b = batch(m, "B-pay", rows(*GOOD, "123")).json()
    before = transfers(p)
    r = m.post(f"/v1/batches/{b['batch_id']}/payment", {"method": "balance"})
    assert r.status_code == 201, r.text
    pay = r.json()
    assert pay["payment_id"].startswith("pay_")
    assert (pay["method"], pay["amount"], pay["status"], pay["refunded"]) == ("balance", 4 * PRICE, "paid", 0)
    placed = sorted(x["order_id"] for x in b["rows"] if x["order_id"])
    assert sorted(pay["order_ids"]) == placed
    assert transfers(p) - before >= 1
    assert m.get("/v1/balance").json()["available"] == 1_000_000 - 4 * PRICE
    # Paying twice is refused and charges nothing.
    again = m.post(f"/v1/batches/{b['batch_id']}/payment", {"method": "balance"})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "invalid_state"
    done = wait_batch(m, b["batch_id"], ("completed",))
    assert done["counts"]["succeeded"] == 4
    assert done["payment"]["payment_id"] == pay["payment_id"]
    assert done["completed_at"] is not None
    # One batch_payment transfer plus one capture per order; no per-order hold.
    assert transfers(p) - before == 1 + 4
    for oid in placed:
        story = p.admin_order(oid)
        assert (story["funding"], story["payment_id"]) == ("balance", pay["payment_id"])
        assert [e["kind"] for e in story["ledger"]] == ["capture"]
    assert m.get("/v1/balance").json() == {"available": 1_000_000 - 4 * PRICE, "held": 0, "currency": "CNY"}
    assert p.ledger_check()["balanced"] is True
    assert m.post(f"/v1/batches/{b['batch_id']}/payment", {"method": "balance"}).status_code == 409


def test_short_balance_is_402_and_changes_nothing(airtime: Platform) -> None:
    p = airtime
    m = p.merchant(balance=PRICE)
    b = batch(m, "B-short", rows(GOOD[0], GOOD[1])).json()
    before = transfers(p)
    r = m.post(f"/v1/batches/{b['batch_id']}/payment", {"method": "balance"})
    assert r.status_code == 402
    assert r.json()["error"]["code"] == "insufficient_balance"
    after = m.get(f"/v1/batches/{b['batch_id']}").json()
    assert (after["status"], after["payment"], after["counts"]["pending_payment"]) == (
        "awaiting_payment",
        None,
        2,
    )
    assert m.get("/v1/balance").json() == {"available": PRICE, "held": 0, "currency": "CNY"}
    assert transfers(p) == before
    assert m.post(f"/v1/batches/{b['batch_id']}/payment", {"method": "card"}).status_code == 400
    # Topped up, the same batch can be paid.
    p.admin.post("/admin/v1/merchants/m1/credits", json={"amount": PRICE, "reference": "top-up"})
    assert m.post(f"/v1/batches/{b['batch_id']}/payment", {"method": "balance"}).status_code == 201
    wait_batch(m, b["batch_id"], ("completed",))
    assert p.ledger_check()["balanced"] is True


def test_cancel_unpaid_batch(airtime: Platform) -> None:
    m = airtime.merchant()
    b = batch(m, "B-cancel", rows(GOOD[0], GOOD[1])).json()
    r = m.post(f"/v1/batches/{b['batch_id']}/cancel")
    assert r.status_code == 200, r.text
    c = r.json()
    assert c["status"] == "cancelled"
    assert c["counts"]["cancelled"] == 2
    for x in c["rows"]:
        assert m.get(f"/v1/orders/{x['order_id']}").json()["status"] == "cancelled"
    assert m.post(f"/v1/batches/{b['batch_id']}/cancel").status_code == 200
    assert m.post(f"/v1/batches/{b['batch_id']}/payment", {"method": "balance"}).status_code == 409
    assert m.get("/v1/balance").json()["available"] == 1_000_000
    # A paid batch cannot be cancelled.
    paid = batch(m, "B-paid", rows(GOOD[2])).json()
    assert m.post(f"/v1/batches/{paid['batch_id']}/payment", {"method": "balance"}).status_code == 201
    r = m.post(f"/v1/batches/{paid['batch_id']}/cancel")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "invalid_state"


def test_other_merchant_sees_404(airtime: Platform) -> None:
    m1 = airtime.merchant("m1", "secret-one-000000001")
    m2 = airtime.merchant("m2", "secret-two-000000002")
    b = batch(m1, "B-x", rows(GOOD[0])).json()
    bid = b["batch_id"]
    for method, path in [
        ("GET", f"/v1/batches/{bid}"),
        ("GET", f"/v1/batches/{bid}/results.csv"),
        ("POST", f"/v1/batches/{bid}/cancel"),
    ]:
        r = m2.request(method, path)
        assert r.status_code == 404, (path, r.text)
        assert r.json()["error"]["code"] == "not_found"
    assert m2.post(f"/v1/batches/{bid}/payment", {"method": "balance"}).status_code == 404
    assert m1.get(f"/v1/batches/{bid}").json()["status"] == "awaiting_payment"
    assert m2.get("/v1/balance").json()["available"] == 1_000_000
    # Same merchant_batch_id for another merchant is a different batch.
    assert batch(m2, "B-x", rows(GOOD[0])).status_code == 201


def test_sandbox_pay(airtime: Platform) -> None:
    p = airtime
    m = p.merchant()
    b = batch(m, "B-sbx", rows(GOOD[0], GOOD[1])).json()
    r = m.post(f"/v1/batches/{b['batch_id']}/payment", {"method": "sandbox"})
    assert r.status_code == 201, r.text
    pay = r.json()
    assert (pay["method"], pay["status"], pay["amount"]) == ("sandbox", "pending", 2 * PRICE)
    assert pay["pay_url"] == f"{p.url}/sandbox/pay/{pay['payment_id']}"
    # Asking again for the same method returns the pending payment; another method is refused.
    again = m.post(f"/v1/batches/{b['batch_id']}/payment", {"method": "sandbox"})
    assert (again.status_code, again.json()["payment_id"]) == (200, pay["payment_id"])
    assert m.post(f"/v1/batches/{b['batch_id']}/payment", {"method": "balance"}).status_code == 409
    assert m.get(f"/v1/batches/{b['batch_id']}").json()["counts"]["pending_payment"] == 2
    # A forged notify changes nothing.
    forged = notify(p, {"payment_id": pay["payment_id"], "status": "paid", "amount": 2 * PRICE}, "wrong")
    assert forged.status_code == 401
    assert m.get(f"/v1/batches/{b['batch_id']}").json()["payment"]["status"] == "pending"
    r = press(p, pay["pay_url"], "paid")
    assert r.status_code == 303
    done = wait_batch(m, b["batch_id"], ("completed",))
    assert done["payment"]["status"] == "paid"
    assert done["counts"]["succeeded"] == 2
    # The merchant's balance was never touched: the money came from the gateway.
    assert m.get("/v1/balance").json() == {"available": 1_000_000, "held": 0, "currency": "CNY"}
    for oid in pay["order_ids"]:
        story = p.admin_order(oid)
        assert story["funding"] == "sandbox"
        assert [e["postings"] for e in story["ledger"]] == [
            [
                {"account": "platform:sandbox_held", "amount": -PRICE},
                {"account": "platform:revenue", "amount": PRICE},
            ]
        ]
    # A repeated notify is a no-op.
    before = transfers(p)
    rep = notify(p, {"payment_id": pay["payment_id"], "status": "paid", "amount": 2 * PRICE})
    assert rep.status_code == 200 and rep.json()["outcome"] == "repeat"
    assert transfers(p) == before
    assert m.post(f"/v1/batches/{b['batch_id']}/payment", {"method": "sandbox"}).status_code == 409
    assert p.ledger_check()["balanced"] is True


def test_sandbox_decline_cancels(airtime: Platform) -> None:
    p = airtime
    m = p.merchant()
    b = batch(m, "B-dec", rows(GOOD[0], GOOD[1])).json()
    pay = m.post(f"/v1/batches/{b['batch_id']}/payment", {"method": "sandbox"}).json()
    assert press(p, pay["pay_url"], "declined").status_code == 303
    done = wait_batch(m, b["batch_id"], ("cancelled",))
    assert done["payment"]["status"] == "declined"
    assert done["counts"]["cancelled"] == 2
    # The page now says so and refuses another decision.
    with httpx.Client(trust_env=False) as h:
        assert "declined" in h.get(pay["pay_url"]).text
    assert m.post(f"/v1/batches/{b['batch_id']}/payment", {"method": "sandbox"}).status_code == 409
    assert p.ledger_check()["balanced"] is True


@pytest.fixture
def quick_expiry(database_url: str, sim: Any) -> Iterator[Platform]:
    server, p = start_platform(database_url, sandbox_payment_ttl_s=0.3)
    try:
        setup_airtime(p, sim, {"supA": {}})
        yield p
    finally:
        p.admin.close()
        server.stop()


def test_sandbox_payment_expires(quick_expiry: Platform) -> None:
    p = quick_expiry
    m = p.merchant()
    b = batch(m, "B-exp", rows(GOOD[0])).json()
    pay = m.post(f"/v1/batches/{b['batch_id']}/payment", {"method": "sandbox"}).json()
    done = wait_batch(m, b["batch_id"], ("cancelled",), timeout_s=10)
    assert done["payment"]["status"] == "expired"
    assert done["counts"]["cancelled"] == 1
    # A payment the gateway reports after expiry is put in front of an operator, not applied.
    late = notify(p, {"payment_id": pay["payment_id"], "status": "paid", "amount": PRICE})
    assert late.status_code == 200 and late.json()["outcome"] == "late_payment"
    kinds = [e["kind"] for e in p.admin.get("/admin/v1/exceptions").json()["items"]]
    assert "late_payment" in kinds
    assert m.get(f"/v1/batches/{b['batch_id']}").json()["counts"]["cancelled"] == 1
    assert p.ledger_check()["balanced"] is True


@pytest.mark.parametrize("method", ["balance", "sandbox"])
def test_failed_rows_refunded_once_to_their_source(platform: Platform, sim: Any, method: str) -> None:
    bad = "13700137000"
    p = platform
    setup_airtime(p, sim, {"supA": {"fail_accounts": [bad]}, "supB": {"fail_accounts": [bad]}})
    m = p.merchant()
    b = batch(m, f"B-ref-{method}", rows(GOOD[0], bad, GOOD[1], "1")).json()
    pay = m.post(f"/v1/batches/{b['batch_id']}/payment", {"method": method}).json()
    if method == "sandbox":
        assert press(p, pay["pay_url"], "paid").status_code == 303
    done = wait_batch(m, b["batch_id"], ("completed",))
    assert done["counts"] == {
        "pending_payment": 0,
        "processing": 0,
        "succeeded": 2,
        "failed": 1,
        "cancelled": 0,
    }
    assert done["payment"]["refunded"] == PRICE
    failed_id = next(x["order_id"] for x in b["rows"] if x["account"] == bad)
    story = p.admin_order(failed_id)
    assert story["status"] == "failed"
    assert len(story["attempts"]) == 2
    releases = [e for e in story["ledger"] if e["kind"] == "release"]
    assert len(releases) == 1
    source = "merchant:m1:available" if method == "balance" else "world:sandbox_gateway"
    assert {"account": source, "amount": PRICE} in releases[0]["postings"]
    bal = m.get("/v1/balance").json()
    expected = 1_000_000 - 2 * PRICE if method == "balance" else 1_000_000
    assert bal == {"available": expected, "held": 0, "currency": "CNY"}
    assert p.ledger_check()["balanced"] is True

    text = m.get(f"/v1/batches/{b['batch_id']}/results.csv").text
    lines = list(csv.DictReader(io.StringIO(text)))
    assert text.splitlines()[0] == "row,product_code,account,order_id,status,price,error_code,error_message"
    assert [(x["row"], x["status"]) for x in lines] == [
        ("1", "succeeded"),
        ("2", "failed"),
        ("3", "succeeded"),
        ("4", "invalid"),
    ]
    assert lines[1]["error_message"].startswith("all_channels_failed")
    assert lines[1]["price"] == str(PRICE)
    assert lines[3]["error_code"] == "invalid_account"
    assert lines[3]["order_id"] == ""


def test_results_csv_before_payment(airtime: Platform) -> None:
    m = airtime.merchant()
    b = batch(m, "B-csv", rows(GOOD[0], "=1+2")).json()
    r = m.get(f"/v1/batches/{b['batch_id']}/results.csv")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert r.text.splitlines()[1:] == [
        f"1,airtime.50,{GOOD[0]},{b['rows'][0]['order_id']},pending_payment,{PRICE},,",
        "2,airtime.50,'=1+2,,invalid,,invalid_account," + r.text.splitlines()[2].split(",", 7)[7],
    ]
