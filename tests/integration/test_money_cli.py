"""The money commands of the CLI against a running platform (real HTTP): a practice statement with
discrepancies, its upload (streamed, with a progress bar on a terminal), margins, prepayments."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.integration.test_cli import run
from tests.support.platform import Platform, setup_airtime

from topup.clock import rfc3339

ACCOUNT, FAILING = "13800138000", "13900139000"


def test_statement_sample_upload_show_margins_and_prepay(
    platform: Platform, sim: Any, tmp_path: Path
) -> None:
    setup_airtime(
        platform,
        sim,
        {"supA": {"fail_accounts": [FAILING]}, "supB": {}},
        costs={"supA": {"airtime.50": 4900}, "supB": {"airtime.50": 4920}},
    )
    m = platform.merchant()
    ids = [m.order(f"CLI-{i}", account=ACCOUNT).json()["order_id"] for i in range(2)]
    ids += [m.order("CLI-F", account=FAILING).json()["order_id"] for _ in range(1)]
    m.close()
    for order_id in ids:
        assert platform.wait_order(order_id)["status"] == "succeeded"
    now = time.time()
    period = ["--from", str(rfc3339(now - 3600)), "--to", str(rfc3339(now + 3600))]

    sample = run(platform, "statements", "sample", "--channel", "supA", *period, "--with-discrepancies")
    assert sample.exit_code == 0, sample.output
    lines = sample.output.splitlines()
    assert lines[0] == "supplier_ref,status,amount" and len(lines) == 1 + 3  # one dropped, one unknown added
    statement = tmp_path / "supA.csv"
    statement.write_text(sample.output)

    out = tmp_path / "discrepancies.csv"
    r = run(platform, "statements", "upload", str(statement), "--channel", "supA", *period, "--out", str(out))
    assert r.exit_code == 0, r.output
    assert "3 rows, 2 matched" in r.output
    assert "4 discrepancies" in r.output
    for kind in ("missing_here", "missing_there", "status_mismatch", "amount_mismatch"):
        assert kind in r.output, kind
    assert out.read_text().startswith("supplier_ref,kind,our_status")
    statement_id = r.output.split("statement ", 1)[1].split()[0]
    again = run(platform, "statements", "upload", str(statement), "--channel", "supA", *period)
    assert again.exit_code == 0 and "reconciled before" in again.output and statement_id in again.output
    shown = run(platform, "statements", "show", statement_id)
    assert shown.exit_code == 0 and "4 discrepancies" in shown.output
    listed = run(platform, "statements", "list")
    assert listed.exit_code == 0 and statement_id in listed.output
    missing = run(platform, "statements", "upload", str(statement), "--channel", "nope", *period)
    assert missing.exit_code == 1 and "404 not_found" in missing.output
    bad = tmp_path / "bad.csv"
    bad.write_text("supplier_ref,status,amount\nX,maybe,1\n")
    refused = run(platform, "statements", "upload", str(bad), "--channel", "supA", *period)
    assert refused.exit_code == 1 and "400 invalid_request" in refused.output and "line 2" in refused.output

    margins = run(platform, "margins", *period)
    assert margins.exit_code == 0, margins.output
    assert "supA" in margins.output and "supB" in margins.output and "total" in margins.output
    csv = run(platform, "margins", "--by", "product", "--csv", *period)
    assert csv.exit_code == 0 and csv.output.splitlines()[1].startswith("airtime.50,3,")

    paid = run(platform, "supplier", "prepay", "supA", "100000", "--reference", "bank-7")
    assert paid.exit_code == 0 and "1,000.00 yuan to supA" in paid.output and "902.00" in paid.output
    replay = run(platform, "supplier", "prepay", "supA", "100000", "--reference", "bank-7")
    assert replay.exit_code == 0 and "recorded before" in replay.output
    accounts = run(platform, "supplier", "accounts")
    assert accounts.exit_code == 0 and "supA" in accounts.output and "1,000.00" in accounts.output
    assert platform.ledger_check()["balanced"]
