"""Console pieces without a server: form parsing, the merged timeline, charts, redirects, log redaction."""

from __future__ import annotations

import json

import pytest
import structlog

from topup import logs
from topup.config import Settings
from topup.entrypoints.console import charts, forms, timeline
from topup.entrypoints.console.auth import safe_next
from topup.entrypoints.console.stats import Bucket, window_start


def test_channel_form_uses_the_api_schema_and_keeps_the_stored_secret() -> None:
    form = {
        "code": "supA",
        "name": "A",
        "base_url": "http://sim/a",
        "secret": "",
        "timeout_s": "2.5",
        "max_wait_s": "",
        "enabled": "on",
    }
    body = forms.channel(form, existing_secret="stored-secret")
    assert body.secret == "stored-secret"
    assert body.timeout_s == 2.5
    assert body.max_wait_s == 600.0  # blank -> the schema's default
    assert body.enabled is True and body.supports_query is False  # unchecked box -> False


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("timeout_s", "abc", "Timeout (s): Input should be a valid number"),
        ("timeout_s", "-1", "Timeout (s): Input should be greater than 0"),
        ("base_url", "ftp://x", "Base URL: String should match pattern"),
    ],
)
def test_channel_form_errors_name_the_field(field: str, value: str, message: str) -> None:
    form = {"name": "A", "base_url": "http://sim/a", "timeout_s": "1", field: value}
    with pytest.raises(forms.FormError) as err:
        forms.channel(form, existing_secret="stored-secret")
    assert any(m.startswith(message) for m in err.value.messages), err.value.messages


def test_new_channel_needs_a_secret() -> None:
    with pytest.raises(forms.FormError, match="Secret: required"):
        forms.channel({"name": "A", "base_url": "http://sim/a"}, existing_secret=None)


def test_group_form_members_and_costs() -> None:
    form = {
        "business_type": "mobile_airtime",
        "brand": "",
        "strategy": "cost",
        "sticky": "on",
        "recovery_s": "0.5",
        "member-0-channel": "supA",
        "member-0-priority": "2",
        "member-0-weight": "",
        "member-0-costs": "airtime.50=4900, airtime.100=9800",
        "member-1-channel": "",
        "member-2-channel": "supB",
        "member-2-priority": "1",
        "member-2-costs": "",
    }
    g = forms.group(form)
    assert g.brand is None and g.strategy == "cost" and g.recovery_s == 0.5
    assert [(m.channel, m.priority, m.weight) for m in g.members] == [("supA", 2, 1), ("supB", 1, 1)]
    assert g.members[0].costs == {"airtime.50": 4900, "airtime.100": 9800}


def test_group_form_bad_costs_and_priority() -> None:
    with pytest.raises(forms.FormError) as err:
        forms.group({"business_type": "mobile_airtime", "member-0-channel": "supA", "member-0-costs": "oops"})
    assert err.value.messages == ["Member row 1 costs: write product=fen pairs, e.g. airtime.50=4900"]
    with pytest.raises(forms.FormError) as err:
        forms.group({"business_type": "mobile_airtime", "member-0-channel": "supA", "member-0-priority": "x"})
    assert err.value.messages[0].startswith("Member row 1 priority: Input should be a valid integer")


def test_product_and_deposit_forms() -> None:
    p = forms.product(
        {
            "business_type": "mobile_airtime",
            "brand": "auto",
            "name": "50",
            "face_value": "5000",
            "price": "4980",
            "enabled": "on",
        }
    )
    assert (p.face_value, p.price, p.brand) == (5000, 4980, "auto")
    with pytest.raises(forms.FormError, match="Price \\(fen\\): Input should be a valid integer"):
        forms.product({"business_type": "mobile_airtime", "name": "x", "face_value": "5000", "price": "49.8"})
    with pytest.raises(forms.FormError, match="Amount \\(fen\\): Input should be greater than 0"):
        forms.deposit({"amount": "0", "reference": "r"})
    with pytest.raises(forms.FormError, match="Code"):
        forms.code_of({"code": "no spaces"})


def test_timeline_merges_sources_in_time_order_without_secrets() -> None:
    story = {
        "created_at": "2024-01-01T00:00:00.000Z",
        "product_code": "airtime.50",
        "account": "13800138000",
        "price": 4980,
        "group": "air",
        "route_plan": ["supA", "supB"],
        "timeline": [
            {
                "at": "2024-01-01T00:00:00.100Z",
                "attempt": 1,
                "kind": "dispatch",
                "detail": {"channel": "supA", "ref": "o-1", "secret": "leak-me"},
            },
            {
                "at": "2024-01-01T00:00:01.000Z",
                "attempt": 1,
                "kind": "attempt_failed",
                "detail": {"reason": "E42"},
            },
        ],
        "callbacks": [
            {
                "channel": "supA",
                "ref": "o-1",
                "status": "failed",
                "code": "E42",
                "message": None,
                "outcome": "applied",
                "received_at": "2024-01-01T00:00:00.900Z",
            }
        ],
        "notifications": [
            {
                "event_id": "evt_1",
                "url": "http://m/cb",
                "attempts": [
                    {"at": "2024-01-01T00:00:03.000Z", "status_code": 500, "latency_ms": 3, "error": None}
                ],
            }
        ],
        "ledger": [
            {
                "transfer_id": "t1",
                "kind": "capture",
                "amount": 4980,
                "at": "2024-01-01T00:00:02.000Z",
                "postings": [{"account": "merchant:m1:held", "amount": -4980}],
            }
        ],
        "exceptions": [],
    }
    entries = timeline.entries(story)
    assert [e.source for e in entries] == [
        "order",
        "attempt",
        "callback",
        "attempt",
        "ledger",
        "notification",
    ]
    assert entries[2].title == "Callback failed from supA" and entries[2].tone == "bad"
    assert entries[5].title == "Notification not delivered"
    assert "merchant:m1:held -4980" in entries[4].detail
    assert all("leak-me" not in e.detail for e in entries)


def test_chart_is_plain_svg_with_tooltips() -> None:
    start = window_start(1_700_000_030.0, 600, 60)
    assert start % 60 == 0 and start + 600 > 1_700_000_030.0
    series = [Bucket(start + i * 60, total=i, ok=i // 2, failed=i - i // 2) for i in range(10)]
    svg = str(charts.volume_and_success(series, label="x <y>"))
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "x &lt;y&gt;" in svg and "<script" not in svg and "style=" not in svg
    assert svg.count('class="bar ok"') == 8 and "polyline" in svg


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/console/orders?x=1", "/console/orders?x=1"),
        ("//evil.example/console", "/console"),
        ("https://evil.example", "/console"),
        ("/admin/v1/orders", "/console"),
        (None, "/console"),
    ],
)
def test_login_only_redirects_into_the_console(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_log_lines_redact_secrets_and_carry_order_ids(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure(Settings(log_json=True, log_level="INFO"))
    try:
        log = structlog.get_logger("test")
        with logs.order_context("ord_1", attempt_no=2, ref="ord_1-2"):
            log.info(
                "dispatch",
                secret="s3cret-value",
                channel_secret="s3cret-value",
                headers={"X-Signature": "s3cret-value", "Content-Type": "application/json"},
                channel={"code": "supA", "secret": "s3cret-value"},
            )
        log.info("outside")
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    finally:
        structlog.reset_defaults()
    first, second = lines[-2], lines[-1]
    assert "s3cret-value" not in json.dumps(lines)
    assert first["secret"] == first["channel_secret"] == "[redacted]"
    assert first["headers"] == {"X-Signature": "[redacted]", "Content-Type": "application/json"}
    assert first["channel"] == {"code": "supA", "secret": "[redacted]"}
    assert (first["order_id"], first["attempt_no"], first["attempt_ref"]) == ("ord_1", 2, "ord_1-2")
    assert "order_id" not in second
