"""Operator CLI commands against a running platform (typer's CliRunner, real HTTP)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.support.platform import ADMIN_TOKEN, Platform, setup_airtime
from typer.testing import CliRunner

from topup.entrypoints.cli import app

ACCOUNT = "13800138000"


def run(platform: Platform, *args: str, token: str = ADMIN_TOKEN, **kw: Any) -> Any:
    env = {
        "TOPUP_ADMIN_TOKEN": token,
        "TOPUP_URL": platform.url,
        "COLUMNS": "220",
        "NO_COLOR": "1",
        "TOPUP_DATABASE_URL": platform.database_url,
    }
    return CliRunner().invoke(app, list(args), env=env, **kw)


def test_order_show_prints_the_timeline(platform: Platform, sim: Any) -> None:
    setup_airtime(platform, sim, {"supA": {"fail_accounts": [ACCOUNT]}, "supB": {}})
    m = platform.merchant()
    order_id = m.order("C-1", account=ACCOUNT).json()["order_id"]
    m.close()
    platform.wait_order(order_id)
    r = run(platform, "order", "show", order_id)
    assert r.exit_code == 0, r.output
    for text in (
        f"Order {order_id}",
        "status succeeded",
        "Attempts",
        "Timeline",
        f"{order_id}-1",
        "Callback failed from supA",
        "Callback success from supB",
        "Order succeeded",
        "Ledger capture",
    ):
        assert text in r.output, text
    missing = run(platform, "order", "show", "ord_nope")
    assert missing.exit_code == 1 and "404 not_found" in missing.output
    bad = run(platform, "order", "show", order_id, token="wrong-token")
    assert bad.exit_code == 1 and "401 unauthorized" in bad.output
    none = run(platform, "order", "show", order_id, token="")
    assert none.exit_code == 1 and "no admin token" in none.output


def test_groups_and_channel_switches(platform: Platform, sim: Any) -> None:
    setup_airtime(platform, sim, {"supA": {}, "supB": {}})
    r = run(platform, "groups")
    assert r.exit_code == 0, r.output
    assert "air" in r.output and "supA > supB" in r.output and "mobile_airtime" in r.output
    r = run(platform, "channel", "disable", "supA")
    assert r.exit_code == 0 and "channel supA is now disabled" in r.output
    assert platform.get_group("air")["ranking"][0] == "supB"
    m = platform.merchant()
    order = platform.wait_order(m.order("C-2").json()["order_id"])
    m.close()
    assert [a["channel"] for a in order["attempts"]] == ["supB"]
    r = run(platform, "channel", "enable", "supA")
    assert r.exit_code == 0 and "channel supA is now enabled" in r.output
    r = run(platform, "channel", "enable", "nope")
    assert r.exit_code == 1 and "404" in r.output


def test_operator_add_then_sign_in(platform: Platform) -> None:
    from tests.integration.test_console import ConsoleClient

    r = run(platform, "operator", "add", "bob", input="long enough pw\nlong enough pw\n")
    assert r.exit_code == 0, r.output
    assert "operator bob created" in r.output and "long enough pw" not in r.output
    again = run(platform, "operator", "add", "bob", input="another password\nanother password\n")
    assert again.exit_code == 1 and "use --reset" in again.output
    short = run(platform, "operator", "add", "carol", input="short\nshort\n")
    assert short.exit_code == 1 and "at least 10" in short.output
    assert "bob" in run(platform, "operator", "list").output
    console = ConsoleClient(platform.url)
    try:
        assert console.login("long enough pw", username="bob").status_code == 303
        assert (
            run(
                platform, "operator", "add", "bob", "--reset", input="new password 1\nnew password 1\n"
            ).exit_code
            == 0
        )
        console.http.cookies.clear()
        assert console.login("long enough pw", username="bob").status_code == 401
        assert console.login("new password 1", username="bob").status_code == 303
        assert run(platform, "operator", "remove", "bob").exit_code == 0
        assert console.get("/console").status_code == 303
    finally:
        console.close()


def _batches_available(platform: Platform) -> bool:
    return "/v1/batches" in platform.admin.get("/openapi.json").json().get("paths", {})


def test_batch_submit_pays_follows_and_writes_results(platform: Platform, sim: Any, tmp_path: Path) -> None:
    if not _batches_available(platform):
        pytest.skip("the batches feature is not installed")
    setup_airtime(platform, sim, {"supA": {}})
    platform.merchant("m1", secret="merchant-secret-0001", balance=100_000).close()
    csv_file = tmp_path / "numbers.csv"
    csv_file.write_text(
        "product_code,account\nairtime.50,13800138000\nairtime.50,12345\nairtime.50,13900139000\n"
    )
    args = [
        "batch",
        "submit",
        str(csv_file),
        "--merchant",
        "m1",
        "--secret",
        "merchant-secret-0001",
        "--poll",
        "0.1",
    ]
    r = run(platform, *args, "--pay", "balance")
    assert r.exit_code == 0, r.output
    assert "2 of 3 rows valid" in r.output and "invalid_account" in r.output and "completed" in r.output
    results = (tmp_path / "numbers.results.csv").read_text().splitlines()
    assert len(results) == 4, results
    assert sum("succeeded" in line for line in results) == 2
    # The same file again is the same batch: nothing is charged twice.
    again = run(platform, *args, "--pay", "balance", "--out", str(tmp_path / "again.csv"))
    assert again.exit_code == 0 and "submitted before" in again.output
    m = platform.merchant("m1", secret="merchant-secret-0001", balance=0)
    assert m.get("/v1/balance").json()["available"] == 100_000 - 2 * 4980
    m.close()


def test_batch_submit_rejects_a_file_without_the_columns(platform: Platform, tmp_path: Path) -> None:
    csv_file = tmp_path / "bad.csv"
    csv_file.write_text("phone\n13800138000\n")
    r = run(platform, "batch", "submit", str(csv_file), "--merchant", "m1", "--secret", "s" * 20)
    assert r.exit_code == 1 and "product_code and account" in r.output
