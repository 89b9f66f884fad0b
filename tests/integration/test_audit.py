"""The audit log: an entry for every kind of change (API, console, CLI) in the change's transaction, with
secrets masked; none for reads; filters; and no interface (nor the database) changes or deletes entries."""

from __future__ import annotations

import getpass
import time
from typing import Any

import httpx
import orjson
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import OperationalError
from tests.integration.test_console import ConsoleClient, run_db
from tests.integration.test_roles import PASSWORD, client, operator_with_token
from tests.integration.test_security import concrete, route_table
from tests.support.platform import ADMIN_TOKEN, Platform, setup_airtime, wait_until
from typer.testing import CliRunner

from topup.adapters.db import tables as t
from topup.clock import rfc3339
from topup.entrypoints.cli import app as cli_app

MERCHANT_SECRET = "merchant-secret-0001"


def entries(p: Platform, **params: Any) -> list[dict[str, Any]]:
    r = p.admin.get("/admin/v1/audit", params={"limit": 500, **params})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def count(p: Platform) -> int:
    async def n(tx: Any) -> int:
        return int((await tx.conn.execute(select(func.count()).select_from(t.audit_log))).scalar_one())

    return int(run_db(p, n))


def add_exception(p: Platform, ref: str) -> str:
    from topup.services.fulfilment import record_exception

    async def add(tx: Any) -> str:
        await record_exception(tx, "late_success", None, ref, "supA", {"note": "test"})
        row = (await tx.conn.execute(select(t.exceptions.c.id).where(t.exceptions.c.ref == ref))).one()
        return str(row.id)

    return str(run_db(p, add))


def test_every_kind_of_change_is_audited_with_secrets_masked(platform: Platform, sim: Any) -> None:
    p = platform
    setup_airtime(p, sim, {"supA": {}})
    p.merchant("m1", secret=MERCHANT_SECRET, balance=0, password="merchant password 1").close()
    token = operator_with_token(p, "otto", "operator")
    before = time.time()
    # Admin token through the API: catalog, channel (with credentials), group, merchant, credit.
    p.product("airtime.50", price=4970)
    p.channel("supA", sim.base_url("supA"), secret="sim-secret", timeout_s=0.5, max_wait_s=1.0)
    p.group("air", "mobile_airtime", [{"channel": "supA", "priority": 2, "weight": 1, "costs": {}}])
    p.merchant("m1", secret="merchant-secret-0002", balance=0)
    credit = {"amount": 700, "reference": "dep-1"}
    assert p.admin.post("/admin/v1/merchants/m1/credits", json=credit).status_code == 201
    assert p.admin.post("/admin/v1/merchants/m1/credits", json=credit).status_code == 200  # a replay
    # An operator token: channel off/on, an exception resolved, a webhook delivery retried.
    exc = add_exception(p, "ref-audit-1")
    with client(p, token) as c:
        assert c.post("/admin/v1/channels/supA/disable").status_code == 200
        assert c.post("/admin/v1/channels/supA/enable").status_code == 200
        assert c.post(f"/admin/v1/exceptions/{exc}/resolve", json={"note": "refunded"}).status_code == 200
        m = p.merchant(
            "m2", secret="merchant-secret-0003", balance=10_000, notify_url="http://127.0.0.1:9/cb"
        )
        order = m.order("A-1").json()
        m.close()
        p.wait_order(order["order_id"])
        event = wait_until(
            lambda: p.admin.get("/admin/v1/deliveries", params={"merchant_id": "m2"}).json()["items"],
            what="a webhook delivery",
        )[0]["event_id"]
        assert c.post(f"/admin/v1/deliveries/{event}/retry").status_code == 200
    # The console: a deposit and a channel switch.
    console = ConsoleClient(p.url)
    try:
        assert console.login().status_code == 303
        assert (
            console.post("/console/merchants/m1/deposit", {"amount": "50", "reference": "c-1"}).status_code
            == 303
        )
        assert console.post("/console/channels/supA/disable").status_code == 303
    finally:
        console.close()
    # Operator accounts and tokens (API), and the CLI.
    r = p.admin.post("/admin/v1/operators/otto/tokens", json={"name": "second"})
    second = r.json()
    assert p.admin.delete(f"/admin/v1/operators/otto/tokens/{second['id']}").status_code == 200
    assert p.admin.put("/admin/v1/operators/otto", json={"role": "viewer"}).status_code == 200
    cli = CliRunner().invoke(
        cli_app,
        ["operator", "add", "cleo", "--role", "operator"],
        env={"TOPUP_DATABASE_URL": p.database_url},
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert cli.exit_code == 0, cli.output
    assert p.admin.delete("/admin/v1/operators/cleo").status_code == 200

    log = list(reversed(entries(p, since=str(before))))
    actions = [(e["action"], e["object"]) for e in log]
    assert actions == [
        ("product.put", "product:airtime.50"),
        ("channel.put", "channel:supA"),
        ("group.put", "group:air"),
        ("merchant.put", "merchant:m1"),
        ("merchant.credit", "merchant:m1"),
        ("channel.disable", "channel:supA"),
        ("channel.enable", "channel:supA"),
        ("exception.resolve", f"exception:{exc}"),
        ("merchant.put", "merchant:m2"),
        ("merchant.credit", "merchant:m2"),
        ("delivery.retry", f"delivery:{event}"),
        ("merchant.credit", "merchant:m1"),
        ("channel.disable", "channel:supA"),
        ("token.issue", f"token:{second['id']}"),
        ("token.revoke", f"token:{second['id']}"),
        ("operator.put", "operator:otto"),
        ("operator.put", "operator:cleo"),
        ("operator.remove", "operator:cleo"),
    ], actions
    by = {(e["action"], e["object"], e["via"]): e for e in log}
    # Who, how, from where, and what: before -> after.
    price = by[("product.put", "product:airtime.50", "api")]
    assert (price["actor"], price["role"], price["credential"], price["address"]) == (
        "admin",
        "admin",
        "admin-token",
        "127.0.0.1",
    )
    assert price["changes"] == {"price": [4980, 4970]}
    group = by[("group.put", "group:air", "api")]
    was, now = group["changes"]["members"]
    assert (was[0]["priority"], now[0]["priority"]) == (1, 2)
    off = by[("channel.disable", "channel:supA", "api")]
    assert (off["actor"], off["role"], off["credential"]) == (
        "otto",
        "operator",
        f"token:{token.split('_')[1]}",
    )
    assert off["before"] == {"enabled": True} and off["after"] == {"enabled": False}
    resolved = by[("exception.resolve", f"exception:{exc}", "api")]
    assert resolved["after"]["resolved_by"] == "otto" and resolved["after"]["note"] == "refunded"
    deposit = by[("merchant.credit", "merchant:m1", "console")]
    assert (deposit["actor"], deposit["credential"]) == ("admin", "admin-token")
    assert deposit["after"]["amount"] == 50 and deposit["after"]["balance"]["available"] == 750
    assert by[("channel.disable", "channel:supA", "console")]["via"] == "console"
    demoted = [e for e in log if e["object"] == "operator:otto"][-1]
    assert demoted["changes"]["role"] == ["operator", "viewer"]
    made = by[("operator.put", "operator:cleo", "cli")]
    assert (
        made["actor"] == getpass.getuser() and made["before"] is None and made["after"]["role"] == "operator"
    )
    # Secrets are masked everywhere: channel credentials (by the protocol's secret_fields), merchant
    # secrets and passwords, token values.
    merchant = by[("merchant.put", "merchant:m1", "api")]
    assert merchant["changes"]["secret"] == ["****01", "****02"]
    channel = by[("channel.put", "channel:supA", "api")]
    assert channel["after"]["credentials"] == {"secret": "****et"}
    text = orjson.dumps(entries(p)).decode()
    secrets = ["sim-secret", MERCHANT_SECRET, "merchant-secret-0002", "merchant password 1", PASSWORD]
    for secret in [*secrets, token, ADMIN_TOKEN, "argon2"]:
        assert secret not in text, secret


def test_reads_write_no_audit_entries(platform: Platform, sim: Any) -> None:
    p = platform
    setup_airtime(p, sim, {"supA": {}})
    m = p.merchant("m1", balance=10_000)
    order = m.order("R-1").json()
    m.close()
    p.wait_order(order["order_id"])
    operator_with_token(p, "otto", "operator")
    n = count(p)
    real = {"{code}": "supA", "{order_id}": order["order_id"], "{name}": "otto"}
    paths = set()
    for route in route_table(p):
        if isinstance(route, APIRoute) and "GET" in route.methods and route.path.startswith("/admin/"):
            path = route.path
            for k, v in real.items():
                path = path.replace(k, v)
            paths.add(concrete(path))
    paths |= {"/admin/v1/groups/air", "/admin/v1/groups/air/switches", "/admin/v1/audit?object=channel"}
    for path in sorted(paths):
        assert p.admin.get(path).status_code < 500, path
    console = ConsoleClient(p.url)
    try:
        assert console.login().status_code == 303
        pages = [
            "/console",
            "/console/catalog",
            "/console/groups/air",
            f"/console/orders/{order['order_id']}",
        ]
        pages += ["/console/merchants", "/console/exceptions", "/console/audit", "/console/operators"]
        pages += ["/console/edit/channel?code=supA", "/console/edit/group?code=air"]
        for page in pages:
            assert console.get(page).status_code == 200, page
    finally:
        console.close()
    assert count(p) == n


def test_audit_filters_and_pages(platform: Platform, sim: Any) -> None:
    p = platform
    setup_airtime(p, sim, {"supA": {}, "supB": {}})
    token = operator_with_token(p, "otto", "operator")
    with client(p, token) as c:
        assert c.post("/admin/v1/channels/supB/disable").status_code == 200
    middle = time.time()
    time.sleep(0.01)
    p.product("airtime.50", price=4960)
    with client(p, token) as c:
        assert c.post("/admin/v1/channels/supA/disable").status_code == 200
    assert [e["object"] for e in entries(p, actor="otto")] == ["channel:supA", "channel:supB"]
    assert [e["object"] for e in entries(p, object="channel:supA")][0] == "channel:supA"
    assert {e["object"] for e in entries(p, object="channel")} == {"channel:supA", "channel:supB"}
    assert {e["object"] for e in entries(p, object="chan")} == set()  # a kind matches whole kinds only
    since = entries(p, since=rfc3339(middle))
    assert [e["object"] for e in since] == ["channel:supA", "product:airtime.50"]
    assert entries(p, since=str(middle)) == since
    assert p.admin.get("/admin/v1/audit", params={"since": "yesterday"}).status_code == 400
    # Newest first, paged by cursor.
    everything = entries(p)
    first = p.admin.get("/admin/v1/audit", params={"limit": 2}).json()
    rest = p.admin.get("/admin/v1/audit", params={"limit": 500, "cursor": first["next_cursor"]}).json()
    assert [e["id"] for e in first["items"] + rest["items"]] == [e["id"] for e in everything]
    assert rest["next_cursor"] is None
    # The console page, for every role, with the same filters.
    with client(p, token):
        pass
    r = p.admin.put("/admin/v1/operators/vera", json={"password": PASSWORD, "role": "viewer"})
    assert r.status_code == 201
    console = ConsoleClient(p.url)
    try:
        assert console.login(PASSWORD, username="vera").status_code == 303
        page = console.get("/console/audit?actor=otto").text
        assert page.count('data-audit="') == 2 and "channel.disable" in page and "product.put" not in page
        page = console.get("/console/audit?object=product:airtime.50").text
        assert page.count('data-audit="') == 2 and "4980" in page and "4960" in page
        assert "RFC 3339" in console.get("/console/audit?since=nope").text
    finally:
        console.close()


def test_entries_cannot_be_changed_or_deleted(platform: Platform, sim: Any) -> None:
    p = platform
    setup_airtime(p, sim, {"supA": {}})
    # No interface offers it.
    for route in route_table(p):
        if isinstance(route, APIRoute) and "audit" in route.path:
            assert route.methods <= {"GET", "HEAD"}, (route.path, route.methods)
    for method in ("PUT", "POST", "DELETE", "PATCH"):
        assert p.admin.request(method, "/admin/v1/audit", json={}).status_code == 405
    # Nor does the database, whoever connects to it.
    n = count(p)

    async def tamper_update(tx: Any) -> None:
        await tx.conn.execute(update(t.audit_log).values(actor="someone else"))

    async def tamper_delete(tx: Any) -> None:
        await tx.conn.execute(delete(t.audit_log))

    for tamper in (tamper_update, tamper_delete):
        with pytest.raises(Exception, match="append-only"):
            run_db(p, tamper)
    assert count(p) == n and {e["actor"] for e in entries(p)} == {"admin"}


def test_a_change_and_its_entry_commit_together(platform: Platform, sim: Any, monkeypatch: Any) -> None:
    """If the entry cannot be written, the change is rolled back with it."""
    from topup.services import audit

    p = platform
    setup_airtime(p, sim, {"supA": {}})
    n = count(p)

    async def broken(*_a: Any, **_k: Any) -> None:
        raise OperationalError("INSERT INTO audit_log ...", {}, Exception("disk I/O error"))

    monkeypatch.setattr(audit, "record", broken)
    r = p.admin.put(
        "/admin/v1/products/airtime.99",
        json={
            "business_type": "mobile_airtime",
            "brand": "auto",
            "name": "x",
            "face_value": 100,
            "price": 99,
        },
    )
    assert r.status_code == 500
    assert p.admin.post("/admin/v1/channels/supA/disable").status_code == 500
    monkeypatch.undo()
    assert [x["code"] for x in p.admin.get("/admin/v1/products").json()["items"]] == ["airtime.50"]
    assert p.admin.get("/admin/v1/channels/supA").json()["enabled"] is True
    # A refused change (400) writes nothing either.
    r = p.admin.put(
        "/admin/v1/groups/air",
        json={"business_type": "mobile_airtime", "members": [{"channel": "nope", "priority": 1}]},
    )
    assert r.status_code == 400
    assert count(p) == n
    with httpx.Client(base_url=p.url, trust_env=False) as anon:
        assert anon.get("/admin/v1/audit").status_code == 401
