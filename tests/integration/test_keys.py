"""One master key, keys per purpose: rotating the admin token keeps sessions and sandbox payments valid;
supplier credentials are re-encrypted under a new master key with no downtime; the demo still starts."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from tests.integration.test_console import ConsoleClient, run_db
from tests.support.platform import Platform, free_port, setup_airtime, start_platform, wait_until
from typer.testing import CliRunner

from topup.adapters.db import tables as t
from topup.entrypoints.cli import app as cli_app
from topup.keys import CredentialBox, CredentialError

TOKEN_A = "admin-token-A-" + "a" * 30
TOKEN_B = "admin-token-B-" + "b" * 30
KEY_1 = "master-key-1-" + "1" * 40
KEY_2 = "master-key-2-" + "2" * 40
PASSWORD = "long enough password"
ACCOUNT = "13800138000"


@contextlib.contextmanager
def running(database_url: str, admin_token: str, **settings: Any) -> Iterator[Platform]:
    """A platform on loopback with these settings (the conftest fixture fixes the admin token)."""
    server, platform = start_platform(database_url, admin_token=admin_token, **settings)
    try:
        yield platform
    finally:
        platform.admin.close()
        server.stop()


def merchant_login(url: str, merchant_id: str, password: str) -> httpx.Client:
    h = httpx.Client(base_url=url, trust_env=False, follow_redirects=False, timeout=30.0)
    page = h.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf, page.text
    r = h.post(
        "/login", data={"csrf": csrf.group(1), "merchant_id": merchant_id, "password": password, "next": "/"}
    )
    assert r.status_code == 303, r.text
    return h


def order_succeeds(p: Platform, merchant_order_id: str) -> None:
    m = p.merchant("m1", balance=0)
    credit = {"amount": 4980, "reference": merchant_order_id}
    assert p.admin.post("/admin/v1/merchants/m1/credits", json=credit).status_code == 201
    r = m.order(merchant_order_id, account=ACCOUNT)
    m.close()
    assert r.status_code == 201, r.text
    assert p.wait_order(r.json()["order_id"])["status"] == "succeeded"


def test_rotating_the_admin_token_keeps_sessions_and_sandbox_payments_valid(
    database_url: str, sim: Any
) -> None:
    with running(database_url, TOKEN_A, secret_key=KEY_1) as p1:
        setup_airtime(p1, sim, {"supA": {}})
        p1.merchant("m1", balance=0, password="merchant password 1").close()
        assert (
            p1.admin.put(
                "/admin/v1/operators/otto", json={"password": PASSWORD, "role": "operator"}
            ).status_code
            == 201
        )
        merchant = merchant_login(p1.url, "m1", "merchant password 1")
        op, by_token = ConsoleClient(p1.url), ConsoleClient(p1.url)
        assert op.login(PASSWORD, username="otto").status_code == 303
        assert by_token.login(TOKEN_A).status_code == 303
        # A sandbox payment left pending, its hosted page (and the page's token) already handed out.
        m = p1.merchant("m1", balance=0)
        batch = m.post(
            "/v1/batches",
            {"merchant_batch_id": "B-1", "rows": [{"product_code": "airtime.50", "account": ACCOUNT}]},
        )
        assert batch.status_code == 201, batch.text
        pay = m.post(f"/v1/batches/{batch.json()['batch_id']}/payment", {"method": "sandbox"}).json()
        m.close()
        page = httpx.get(pay["pay_url"], trust_env=False)
        page_token = re.search(r'name="token" value="([0-9a-f]+)"', page.text)
        assert page.status_code == 200 and page_token
        cookies = {
            "merchant": dict(merchant.cookies),
            "op": dict(op.http.cookies),
            "token": dict(by_token.http.cookies),
        }
        for c in (merchant, op.http, by_token.http):
            c.close()

    # The same deployment with only the admin token changed.
    with running(database_url, TOKEN_B, secret_key=KEY_1) as p2:
        with httpx.Client(
            base_url=p2.url, trust_env=False, headers={"Authorization": f"Bearer {TOKEN_A}"}
        ) as old:
            assert old.get("/admin/v1/channels").status_code == 401  # the old token is no credential
        assert p2.admin.get("/admin/v1/channels").status_code == 200
        for name, path in (("merchant", "/balance"), ("op", "/console/catalog"), ("token", "/console")):
            with httpx.Client(base_url=p2.url, trust_env=False, cookies=cookies[name]) as h:
                r = h.get(path)
                assert r.status_code == 200, (name, r.status_code, r.headers.get("location"))
        # The pending payment's page token still holds, and the gateway's signed notify is accepted.
        target = f"{p2.url}/sandbox/pay/{pay['payment_id']}"
        r = httpx.post(target, data={"decision": "paid", "token": page_token.group(1)}, trust_env=False)
        assert r.status_code == 303, r.text
        m = p2.merchant("m1", balance=0)
        batch_id = batch.json()["batch_id"]
        done = wait_until(
            lambda: (b := m.get(f"/v1/batches/{batch_id}").json())["status"] == "completed" and b,
            what="batch paid",
        )
        m.close()
        assert done["payment"]["status"] == "paid" and done["counts"]["succeeded"] == 1


def stored_credentials(p: Platform) -> dict[str, str]:
    async def read(tx: Any) -> dict[str, str]:
        rows = (await tx.conn.execute(select(t.channels.c.code, t.channels.c.credentials))).all()
        return {r.code: r.credentials for r in rows}

    return dict(run_db(p, read))


def rotate(p: Platform, current: str, old: str = "") -> Any:
    env = {"TOPUP_DATABASE_URL": p.database_url, "TOPUP_SECRET_KEY": current, "TOPUP_OLD_SECRET_KEYS": old}
    return CliRunner().invoke(cli_app, ["keys", "rotate"], env=env)


def test_credentials_are_re_encrypted_under_a_new_key_with_no_downtime(database_url: str, sim: Any) -> None:
    with running(database_url, TOKEN_A, secret_key=KEY_1) as p1:
        setup_airtime(p1, sim, {"supA": {}, "supB": {}})
        order_succeeds(p1, "K-1")
        sealed = stored_credentials(p1)
    assert set(sealed) == {"supA", "supB"}
    for value in sealed.values():
        assert "sim-secret" not in value
        assert CredentialBox(KEY_1).open(value) == {"secret": "sim-secret"}

    # Step 1: every process gets the new key as current and the old one as old; nothing is re-sealed yet.
    with running(database_url, TOKEN_A, secret_key=KEY_2, old_secret_keys=KEY_1) as p2:
        order_succeeds(p2, "K-2")  # reads credentials sealed under the old key
        # A key that opens nothing: the rotation refuses and changes nothing.
        refused = rotate(p2, "master-key-3-" + "3" * 40)
        assert (
            refused.exit_code == 1
            and "supA, supB" in refused.output
            and "nothing was changed" in refused.output
        )
        assert stored_credentials(p2) == sealed
        # Step 2: re-seal while the platform keeps running.
        r = rotate(p2, KEY_2, KEY_1)
        assert r.exit_code == 0, r.output
        assert "2 channel(s)" in r.output and "supA, supB" in r.output
        order_succeeds(p2, "K-3")
        resealed = stored_credentials(p2)
        for value in resealed.values():
            assert CredentialBox(KEY_2).open(value) == {"secret": "sim-secret"}
            try:
                CredentialBox(KEY_1).open(value)
                raise AssertionError("the old key still opens re-sealed credentials")
            except CredentialError:
                pass
        log = p2.admin.get("/admin/v1/audit", params={"object": "channel"}).json()["items"]
        rotated = [e for e in log if e["action"] == "channel.credentials_rotate"]
        assert {e["object"] for e in rotated} == {"channel:supA", "channel:supB"}
        assert all(e["via"] == "cli" and e["changes"] == {"sealed_with": ["old", "current"]} for e in rotated)
        again = rotate(p2, KEY_2, KEY_1)
        assert again.exit_code == 0 and "(0 were under an old key" in again.output

    # Step 3: the old key is gone from the settings; everything still works.
    with running(database_url, TOKEN_A, secret_key=KEY_2) as p3:
        order_succeeds(p3, "K-4")
        assert p3.admin.get("/admin/v1/channels/supA").json()["credentials"] == {"secret": "****et"}


def test_the_demo_still_starts_on_loopback_with_its_defaults(tmp_path: Path) -> None:
    port, sim_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOPUP_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "topup.entrypoints.cli",
            "demo",
            "--port",
            str(port),
            "--sim-port",
            str(sim_port),
        ],
        cwd=tmp_path,
        env={**env, "TOPUP_LOG_LEVEL": "WARNING"},
        stdout=(out := (tmp_path / "demo.log").open("wb")),
        stderr=subprocess.STDOUT,
    )
    try:

        def up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/console/login", trust_env=False).status_code == 200
            except httpx.HTTPError:
                assert proc.poll() is None, (tmp_path / "demo.log").read_text()
                return False

        wait_until(up, 60, "the demo to start")
        r = httpx.get(
            f"http://127.0.0.1:{port}/admin/v1/channels",
            headers={"Authorization": "Bearer demo-admin-token"},
            trust_env=False,
        )
        assert r.status_code == 200 and r.json()["items"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        out.close()
    assert "operator console" in (tmp_path / "demo.log").read_text()
