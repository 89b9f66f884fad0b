"""`/metrics`, `/healthz` and `/readyz` against a running platform."""

from __future__ import annotations

from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from tests.support.platform import Platform, setup_airtime

ACCOUNT = "13800138000"


def scrape(p: Platform) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = httpx.get(f"{p.url}/metrics", trust_env=False)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_after_a_failover(platform: Platform, sim: Any) -> None:
    setup_airtime(platform, sim, {"supA": {"fail_accounts": [ACCOUNT]}, "supB": {}})
    m = platform.merchant()
    first = m.order("M-1", account=ACCOUNT).json()["order_id"]
    assert platform.wait_order(first)["status"] == "succeeded"
    second = m.order("M-2", account="13900139000").json()["order_id"]
    assert platform.wait_order(second)["status"] == "succeeded"
    m.close()
    # Scrapes within a second share one answer; this test wants a fresh one every time.
    platform.site.metrics.collector.min_interval_s = 0
    got = scrape(platform)
    assert got[("topup_orders", (("business_type", "mobile_airtime"), ("status", "succeeded")))] == 2
    assert got[("topup_attempts_total", (("channel", "supA"), ("status", "failed")))] == 1
    assert got[("topup_attempts_total", (("channel", "supB"), ("status", "succeeded")))] == 2
    assert got[("topup_group_switches_total", (("group", "air"), ("reason", "failover")))] == 1
    assert got[("topup_group_active_channel", (("channel", "supB"), ("group", "air")))] == 1
    assert got[("topup_channel_enabled", (("channel", "supA"),))] == 1
    # Three callbacks (one failure, two successes), each a fraction of a second after dispatch.
    assert got[("topup_callback_delay_seconds_bucket", (("le", "+Inf"),))] == 3
    assert got[("topup_callback_delay_seconds_bucket", (("le", "5.0"),))] == 3
    assert 0 < got[("topup_callback_delay_seconds_gsum", ())] < 15
    assert got[("topup_due_work_lag_seconds", ())] >= 0
    assert ("topup_notification_retries_total", ()) in got
    assert ("topup_notification_oldest_pending_seconds", ()) in got
    assert got[("topup_metrics_scrape_seconds", ())] > 0
    # This process's group commit: both intakes (and the callbacks, replies...) went through it.
    ran = got[("topup_group_commit_alone_total", ())] + got[("topup_group_commit_grouped_units_total", ())]
    assert ran >= 2
    assert got[("topup_group_commit_groups_total", ())] >= 0
    assert got[("topup_group_commit_fallbacks_total", ())] >= 0


def test_metrics_show_queued_work_and_lag(database_url: str) -> None:
    from tests.conftest import start_platform
    from tests.integration.test_console import run_db

    from topup.adapters.db import tables as t

    # No worker: queued work stays where it is, so the lag is the jobs' own.
    server, platform = start_platform(database_url, run_worker=False)
    try:

        async def queue(tx: Any) -> None:
            rows = [
                ("due", tx.now - 60, None),
                ("leased", tx.now - 5, tx.now + 3600),
                ("later", tx.now + 3600, None),
            ]
            await tx.conn.execute(
                t.jobs.insert(),
                [
                    {
                        "kind": "probe_kind",
                        "key": key,
                        "payload": {},
                        "run_at": run_at,
                        "locked_until": lease,
                        "tries": 0,
                        "created_at": tx.now,
                    }
                    for key, run_at, lease in rows
                ],
            )

        run_db(platform, queue)
        got = scrape(platform)
        for state in ("due", "running", "scheduled"):
            assert got[("topup_jobs", (("kind", "probe_kind"), ("state", state)))] == 1, state
        assert 59 <= got[("topup_due_work_lag_seconds", ())] < 120
    finally:
        platform.admin.close()
        server.stop()


def test_health_and_readiness(platform: Platform) -> None:
    r = httpx.get(f"{platform.url}/healthz", trust_env=False)
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = httpx.get(f"{platform.url}/readyz", trust_env=False)
    assert r.status_code == 200 and r.json()["status"] == "ready"


async def test_readyz_is_503_when_the_database_is_unreachable() -> None:
    from topup import bootstrap
    from topup.config import Settings
    from topup.entrypoints.api.app import create_app

    # Nothing listens on port 1; the app is driven without its lifespan, so nothing migrates first.
    c = bootstrap.build(Settings(database_url="postgresql://nobody@127.0.0.1:1/none", admin_token="x" * 20))
    app = create_app(c)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.get("/healthz")).status_code == 200
        r = await client.get("/readyz")
    await c.close()
    assert r.status_code == 503 and r.json()["status"] == "unavailable"


def test_each_app_has_its_own_registry(platform: Platform) -> None:
    from prometheus_client import REGISTRY

    assert platform.site.metrics.registry is not REGISTRY
    assert "topup_orders" not in {m.name for m in REGISTRY.collect()}


async def test_metrics_token_guards_the_scrape_when_set() -> None:
    from topup import bootstrap
    from topup.config import Settings
    from topup.entrypoints.api.app import create_app

    # Checked before any query: an unreachable database shows the refusals touch nothing.
    settings = Settings(
        database_url="postgresql://nobody@127.0.0.1:1/none", admin_token="a" * 20, metrics_token="m" * 24
    )
    c = bootstrap.build(settings)
    app = create_app(c)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        missing = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer " + "x" * 24})
        admin = await client.get("/metrics", headers={"Authorization": "Bearer " + "a" * 20})
        health = await client.get("/healthz")
    await c.close()
    assert [r.status_code for r in (missing, wrong, admin)] == [401, 401, 401]
    assert "TOPUP_METRICS_TOKEN" in missing.text
    assert missing.json()["error"]["code"] == "unauthorized"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert health.status_code == 200


def test_metrics_with_the_token(database_url: str) -> None:
    from tests.conftest import start_platform

    server, platform = start_platform(database_url, run_worker=False, metrics_token="m" * 24)
    try:
        assert httpx.get(f"{platform.url}/metrics", trust_env=False).status_code == 401
        r = httpx.get(
            f"{platform.url}/metrics", headers={"Authorization": "Bearer " + "m" * 24}, trust_env=False
        )
        assert r.status_code == 200 and "topup_metrics_scrape_seconds" in r.text
    finally:
        platform.admin.close()
        server.stop()
