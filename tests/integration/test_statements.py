"""Statement reconciliation on SQLite and PostgreSQL (SPEC 8): a statement with every kind of discrepancy,
the exceptions it raises, replays, refusals, roles. Properties: test_statements_properties.py."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from tests.support.money import Money, accepted, failed, rejected, succeeded

DAY = {"from": "2024-05-01", "to": "2024-05-02"}
HOUR = 3600.0


@pytest.fixture
async def money(database_url: str) -> AsyncIterator[Money]:
    m = await Money(database_url).start()
    try:
        yield m
    finally:
        await m.close()


def csv(*rows: tuple[str, str, int | None]) -> bytes:
    lines = ["supplier_ref,status,amount"] + [f"{r},{s},{'' if a is None else a}" for r, s, a in rows]
    return ("\n".join(lines) + "\n").encode()


async def post(m: Money, channel: str, body: bytes, **params: str) -> Any:
    return await m.admin(
        "POST",
        f"/admin/v1/channels/{channel}/statements",
        params={**DAY, **params},
        content=body,
        headers={"Content-Type": "text/csv"},
    )


async def test_a_statement_with_every_kind_of_discrepancy(money: Money) -> None:
    await money.catalog({"chA": {"costs": {"airtime.50": 4900}}, "chB": {"costs": {"airtime.50": 4920}}})
    money.clock.advance(-HOUR)  # 2024-04-30T23:00Z: the day before
    money.script(succeeded(), failed(), succeeded())
    before = await money.order("BEFORE")
    before_failed = await money.order("BEFORE-F")
    money.clock.advance(2 * HOUR)  # 2024-05-01T01:00Z
    money.script(
        succeeded(),  # OK
        failed(),  # FAIL on chA ...
        succeeded(),  # ... and chB
        succeeded(),  # THERE
        succeeded(),  # STATUS
        failed(),  # LATE: chA fails ...
        failed(),  # ... chB too: the order fails and is refunded
        accepted(),  # DUP: chA goes silent
    )
    ok = await money.order("OK")
    fail = await money.order("FAIL")
    there = await money.order("THERE")
    status = await money.order("STATUS")
    late = await money.order("LATE")
    dup = await money.order("DUP")
    money.script(succeeded())
    await money.abandon(f"{dup}-1")  # chB delivers DUP
    money.script(succeeded(), succeeded())
    amount = await money.order("AMOUNT")
    both = await money.order("BOTH")
    money.clock.advance(24 * HOUR)  # the day after: not in this statement
    money.script(succeeded())
    await money.order("AFTER")
    statement = csv(
        (f"{ok}-1", "success", 4900),
        (f"{fail}-1", "failed", None),
        ("UNKNOWN-77", "success", 4900),  # missing_here
        (f"{status}-1", "failed", None),  # status_mismatch: ours success
        (f"{late}-1", "success", 4900),  # status_mismatch and a late_success
        (f"{dup}-1", "success", 4900),  # status_mismatch and a duplicate_fulfilment
        (f"{dup}-2", "success", 4920),  # a chB attempt: not this channel's
        (f"{amount}-1", "success", 4910),  # amount_mismatch
        (f"{both}-1", "failed", 1),  # status and amount differ: status_mismatch only
        (f"{before}-1", "success", 4900),  # the day before: matched as usual
        (f"{ok}-1", "success", 4900),  # the same ref again
    )
    r = await post(money, "chA", statement)
    assert r.status_code == 201, r.text
    s = r.json()
    assert (s["channel"], s["from"], s["to"]) == (
        "chA",
        "2024-05-01T00:00:00.000Z",
        "2024-05-02T00:00:00.000Z",
    )
    assert (s["rows"], s["matched"], s["agreed"]) == (11, 8, 3)
    found = [(d["supplier_ref"], d["kind"]) for d in s["discrepancies"]]
    assert found == [
        ("UNKNOWN-77", "missing_here"),
        (f"{status}-1", "status_mismatch"),
        (f"{late}-1", "status_mismatch"),
        (f"{dup}-1", "status_mismatch"),
        (f"{dup}-2", "missing_here"),
        (f"{amount}-1", "amount_mismatch"),
        (f"{both}-1", "status_mismatch"),
        (f"{ok}-1", "duplicate_row"),
        (f"{there}-1", "missing_there"),
    ]
    d = {(x["supplier_ref"], x["kind"]): x for x in s["discrepancies"]}
    assert d[f"{amount}-1", "amount_mismatch"]["ours"] == {
        "status": "success",
        "amount": 4900,
        "ref": f"{amount}-1",
        "order_id": amount,
        "attempt_status": "succeeded",
    }
    assert d[f"{amount}-1", "amount_mismatch"]["theirs"] == {"status": "success", "amount": 4910, "line": 9}
    assert d[f"{dup}-1", "status_mismatch"]["ours"]["attempt_status"] == "abandoned"
    assert d["UNKNOWN-77", "missing_here"]["ours"] is None
    assert d[f"{there}-1", "missing_there"]["theirs"] is None
    assert s["counts"] == {
        "missing_here": 2,
        "missing_there": 1,
        "status_mismatch": 4,
        "amount_mismatch": 1,
        "duplicate_row": 1,
    }
    assert before_failed not in str(s["discrepancies"])  # outside the period and not named: not required
    # Money at stake became work for operators.
    exceptions = (await money.ok("GET", "/admin/v1/exceptions"))["items"]
    by_ref = {(e["kind"], e["ref"]): e for e in exceptions}
    assert set(by_ref) == {
        ("late_success", f"{late}-1"),
        ("duplicate_fulfilment", f"{dup}-1"),
        ("statement_discrepancies", s["statement_id"]),
    }
    assert by_ref["late_success", f"{late}-1"]["detail"] == {
        "source": "statement",
        "statement_id": s["statement_id"],
        "supplier_ref": f"{late}-1",
        "order_status": "failed",
        "attempt_status": "failed",
        "amount": 4900,
    }
    assert by_ref["duplicate_fulfilment", f"{dup}-1"]["order_id"] == dup
    summary = by_ref["statement_discrepancies", s["statement_id"]]["detail"]
    assert summary["counts"] == {
        "missing_here": 2,
        "missing_there": 1,
        "status_mismatch": 2,
        "amount_mismatch": 1,
        "duplicate_row": 1,
    }
    assert summary["at_stake"] == 4900 + 4920 + 4900 + 4900 + 10 + 4900 + 4900
    story = await money.ok("GET", f"/admin/v1/orders/{late}")
    assert [x["kind"] for x in story["exceptions"]] == ["late_success"]
    # Read back, downloaded, and the same file again is the same statement.
    assert await money.ok("GET", f"/admin/v1/statements/{s['statement_id']}") == s
    again = await post(money, "chA", statement)
    assert again.status_code == 200 and again.json() == s
    assert len((await money.ok("GET", "/admin/v1/exceptions"))["items"]) == 3
    download = await money.admin("GET", f"/admin/v1/statements/{s['statement_id']}/discrepancies.csv")
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    lines = download.text.splitlines()
    assert (
        lines[0]
        == "supplier_ref,kind,our_status,our_amount,their_status,their_amount,at_stake,ref,order_id,line"
    )
    assert lines[1] == "UNKNOWN-77,missing_here,,,success,4900,4900,,,4"
    assert f"{amount}-1,amount_mismatch,success,4900,success,4910,10,{amount}-1,{amount},9" in lines
    assert len(lines) == 1 + len(found)
    # The same file for another period is another statement; the late success is not raised twice.
    money.clock.advance(60)
    other = await post(money, "chA", statement, **{"from": "2024-04-30"})
    assert other.status_code == 201 and other.json()["statement_id"] != s["statement_id"]
    assert (f"{before_failed}-1", "missing_there") in [
        (x["supplier_ref"], x["kind"]) for x in other.json()["discrepancies"]
    ]
    kinds = Counter(e["kind"] for e in (await money.ok("GET", "/admin/v1/exceptions"))["items"])
    assert kinds == {"late_success": 1, "duplicate_fulfilment": 1, "statement_discrepancies": 2}
    listed = await money.ok("GET", "/admin/v1/channels/chA/statements")
    assert [x["statement_id"] for x in listed["items"]] == [other.json()["statement_id"], s["statement_id"]]
    assert (await money.ok("GET", "/admin/v1/channels/chB/statements"))["items"] == []


async def test_a_statement_that_agrees_raises_nothing(money: Money) -> None:
    await money.catalog({"chA": {"costs": {"airtime.50": 4900}}, "chB": {}})
    money.clock.advance(HOUR)
    money.script(succeeded(), rejected(), succeeded(cost=4990))
    a = await money.order("A")
    b = await money.order("B")
    r = await post(money, "chA", csv((f"{a}-1", "success", 4900), (f"{b}-1", "failed", None)))
    assert r.status_code == 201
    assert (r.json()["rows"], r.json()["matched"], r.json()["discrepancies"]) == (2, 2, [])
    r = await post(money, "chB", csv((f"{b}-2", "success", 4990)))
    assert (r.status_code, r.json()["discrepancies"]) == (201, [])
    assert (await money.ok("GET", "/admin/v1/exceptions"))["items"] == []


async def test_statements_that_cannot_be_read_change_nothing(money: Money) -> None:
    await money.catalog({"chA": {}})
    good = csv(("X-1", "success", 1))
    cases = [
        ("chA", b"supplier_ref,status\nX,success\n", DAY, 400),
        ("chA", b"supplier_ref,status,amount\nX,refunded,1\nY,success,1.5\n", DAY, 400),
        ("chA", b"", DAY, 400),
        ("chA", b"\xff\xfe", DAY, 400),
        ("chA", good, {"from": "2024-05-02", "to": "2024-05-01"}, 400),
        ("chA", good, {"from": "not a time", "to": "2024-05-01"}, 400),
        ("chA", good, {"from": "2024-05-01"}, 400),
        ("chA", good, {**DAY, "format": "xlsx"}, 400),
        ("nope", good, DAY, 404),
    ]
    for channel, body, params, status in cases:
        r = await money.admin("POST", f"/admin/v1/channels/{channel}/statements", params=params, content=body)
        assert r.status_code == status, (body, params, r.text)
        assert r.json()["error"]["code"] == ("not_found" if status == 404 else "invalid_request")
    r = await post(money, "chA", b"supplier_ref,status,amount\nX,refunded,1\nY,success,1.5\n")
    assert r.json()["error"]["details"]["errors"] == [
        "line 2: status must be success or failed, not 'refunded'",
        "line 3: amount must be a whole number of fen, not '1.5'",
    ]
    assert (await money.ok("GET", "/admin/v1/statements"))["items"] == []
    assert (await money.admin("GET", "/admin/v1/statements/stm_nope")).status_code == 404
    assert (await money.admin("GET", "/admin/v1/statements/stm_nope/discrepancies.csv")).status_code == 404
    assert (
        await money.admin("POST", "/admin/v1/channels/chA/statements", params=DAY, content=good)
    ).status_code == 201


async def test_statement_routes_need_their_roles(money: Money) -> None:
    await money.catalog({"chA": {}})

    async def token(name: str, role: str) -> dict[str, str]:
        await money.ok(
            "PUT", f"/admin/v1/operators/{name}", json={"password": "long enough password", "role": role}
        )
        t = await money.ok("POST", f"/admin/v1/operators/{name}/tokens", json={"name": f"{name}-t"})
        return {"Authorization": f"Bearer {t['token']}"}

    viewer, operator = await token("vera", "viewer"), await token("otto", "operator")
    body = csv(("X-1", "success", 1))
    path = "/admin/v1/channels/chA/statements"
    assert (await money.http.post(path, params=DAY, content=body, headers=viewer)).status_code == 403
    r = await money.http.post(path, params=DAY, content=body, headers=operator)
    assert r.status_code == 201 and r.json()["created_by"] == "otto"
    statement_id = r.json()["statement_id"]
    for get in (
        f"/admin/v1/statements/{statement_id}",
        "/admin/v1/reports/margins",
        "/admin/v1/supplier-accounts",
    ):
        assert (await money.http.get(get, headers=viewer)).status_code == 200, get
    prepay = {"amount": 100, "reference": "r1"}
    assert (
        await money.http.post("/admin/v1/channels/chA/prepayments", json=prepay, headers=operator)
    ).status_code == 403
    assert (await money.http.get("/admin/v1/reports/margins")).status_code == 401
    audit = (await money.ok("GET", "/admin/v1/audit"))["items"]
    assert any(e["action"] == "statement.reconcile" and e["actor"] == "otto" for e in audit)


async def test_a_statement_may_be_larger_than_other_requests(money: Money) -> None:
    # Other requests stop at 4 MiB; a statement of a busy day is bigger (here: padding in an extra column).
    await money.catalog({"chA": {}})
    note = "x" * 100_000
    body = (
        "supplier_ref,status,amount,note\n" + "".join(f"X-{i},failed,,{note}\n" for i in range(50))
    ).encode()
    assert len(body) > 4 * 1024 * 1024
    r = await post(money, "chA", body)
    assert r.status_code == 201, r.text[:200]
    assert r.json()["rows"] == 50 and r.json()["counts"]["missing_here"] == 50
    too_big = await money.admin("PUT", "/admin/v1/merchants/m2", content=body)
    assert too_big.status_code == 413
