"""Every supplier protocol end to end: the platform over real HTTP to the simulator speaking that protocol,
on SQLite and PostgreSQL (SPEC section 6).

One channel of the protocol under test (first) and a topup-json backup (second) in a group that is not
sticky, so every order starts at the protocol's channel. The simulator's behaviour is changed between
orders to walk through: success (with the callback sent twice), definite rejection -> failover, failure
(callback, or the query for DingConnect) -> failover, silence -> query -> success, an unknown reply ->
query -> not_found -> failover, and a forged callback that changes nothing.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from tests.conftest import start_platform
from tests.support.platform import Platform, sim_channel, wait_until

from topup.adapters.db.engine import Database
from topup.clock import Clock

TIMEOUT_S = 0.4
MAX_WAIT_S = 1.2
ACCOUNT = "13800138000"


@dataclass
class Profile:
    """How one protocol's channel is set up on both sides, and how to forge its callback."""

    protocol: str
    credentials: dict[str, Any]
    products: dict[str, Any]
    options: dict[str, Any]
    ref_pattern: str
    forge: Callable[[httpx.Client, str, str], httpx.Response] | None

    def sim_behaviour(self, platform_url: str, code: str) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "credentials": self.credentials,
            "callback_url": f"{platform_url}/callbacks/{self.protocol}/{code}",
            "callback_delay_s": 0.05,
        }


def _forge_juhe(http: httpx.Client, path: str, ref: str) -> httpx.Response:
    form = {"sporder_id": "J1", "orderid": ref, "sta": "9", "sign": "0" * 32}
    return http.post(path, data=form)


def _forge_reloadly(http: httpx.Client, path: str, ref: str) -> httpx.Response:
    body = orjson.dumps(
        {
            "type": "airtime_transaction.status",
            "data": {"transaction": {"transactionId": 1, "customIdentifier": ref, "status": "FAILED"}},
        }
    )
    headers = {
        "X-Reloadly-Request-Timestamp": str(int(time.time())),
        "X-Reloadly-Signature": "00" * 32,
        "Content-Type": "application/json",
    }
    return http.post(path, content=body, headers=headers)


def _forge_fulu(http: httpx.Client, path: str, ref: str) -> httpx.Response:
    body = {"order_id": "F1", "customer_order_no": ref, "order_status": "failed", "sign": "0" * 32}
    return http.post(path, json=body)


PROFILES = {
    "juhe": Profile(
        "juhe",
        {"openid": "JHopenid0001", "key": "juhe-key-0123456789"},
        {},
        {"not_found_codes": [208516]},
        r"^[A-Za-z0-9]{8,32}$",
        _forge_juhe,
    ),
    "reloadly": Profile(
        "reloadly",
        {"client_id": "rl-client", "client_secret": "rl-secret-0123", "webhook_secret": "rl-webhook-0123"},
        {"airtime.50": {"operatorId": 1, "amount": 50}},
        {},
        r"^[A-Za-z0-9]+$",
        _forge_reloadly,
    ),
    "dingconnect": Profile(
        "dingconnect",
        {"api_key": "ding-key-0123456789"},
        {"airtime.50": {"SkuCode": "CN_CM_50", "SendValue": 50, "SendCurrencyIso": "CNY"}},
        {},
        r"^[A-Za-z0-9]+$",
        None,
    ),
    "fulu": Profile(
        "fulu",
        {"app_key": "fulu-app-key", "app_secret": "fulu-secret-0123456789"},
        {"airtime.50": {}},
        {"reject_codes": [3001], "not_found_codes": ["2001"]},
        r"^[A-Za-z0-9]+$",
        _forge_fulu,
    ),
}


@pytest.fixture
def web(database_url: str) -> Iterator[Platform]:
    server, p = start_platform(database_url)
    try:
        yield p
    finally:
        p.admin.close()
        server.stop()


def _setup(p: Platform, sim: Any, profile: Profile, **sim_extra: Any) -> str:
    """Channel `X` of the protocol (first) and `B`, topup-json (second); returns X's simulator URL."""
    code = "X"
    sim_channel(sim, code, **profile.sim_behaviour(p.url, code), **sim_extra)
    credentials = dict(profile.credentials)
    if profile.protocol == "reloadly":
        credentials["auth_url"] = sim.base_url(code)
    body = {
        "name": f"{profile.protocol} channel",
        "protocol": profile.protocol,
        "base_url": sim.base_url(code),
        "credentials": credentials,
        "products": profile.products,
        "options": profile.options,
        "timeout_s": TIMEOUT_S,
        "max_wait_s": MAX_WAIT_S,
    }
    r = p.admin.put(f"/admin/v1/channels/{code}", json=body)
    assert r.status_code == 201, r.text
    p.channel("B", sim_channel(sim, "B", callback_delay_s=0.05), timeout_s=TIMEOUT_S, max_wait_s=MAX_WAIT_S)
    p.product("airtime.50")
    members = [{"channel": "X", "priority": 1}, {"channel": "B", "priority": 2}]
    p.group("air", "mobile_airtime", members, sticky=False)
    return str(sim.base_url(code))


def _behave(sim: Any, **behaviour: Any) -> None:
    r = httpx.put(f"{sim.url}/control/channels/X", json=behaviour, trust_env=False)
    assert r.status_code == 200, r.text


def _channels(order: dict[str, Any]) -> list[tuple[str, str]]:
    return [(a["channel"], a["status"]) for a in order["attempts"]]


def _events(order: dict[str, Any]) -> list[str]:
    return [e["kind"] for e in order["timeline"]]


@pytest.mark.parametrize("protocol", sorted(PROFILES))
def test_protocol_end_to_end(web: Platform, sim: Any, protocol: str) -> None:
    profile = PROFILES[protocol]
    _setup(web, sim, profile, duplicate_callbacks=2)
    m = web.merchant()
    has_callbacks = profile.forge is not None

    # 1. Success on the protocol's channel; a repeated callback is acknowledged alike and applied once.
    first = web.wait_order(m.order("P-1", account=ACCOUNT).json()["order_id"])
    assert first["status"] == "succeeded" and _channels(first) == [("X", "succeeded")]
    supplier_ref = first["attempts"][0]["supplier_ref"]
    assert re.match(profile.ref_pattern, supplier_ref), supplier_ref
    stored = sim.simulator.channels["X"].orders[supplier_ref]
    if has_callbacks:
        sent = wait_until(
            lambda: len(stored.callbacks_sent) == 2 and stored.callbacks_sent, what="two callbacks"
        )
        assert [c["http_status"] for c in sent] == [200, 200]
        assert len(web.admin_order(first["order_id"])["callbacks"]) == 1
        assert _events(web.admin_order(first["order_id"])).count("attempt_succeeded") == 1
    else:
        assert "query" in _events(first) and not stored.callbacks_sent
    _behave(sim, duplicate_callbacks=1)

    # 2. A definite rejection fails over at once.
    _behave(sim, reject_ratio=1.0)
    rejected = web.wait_order(m.order("P-2", account=ACCOUNT).json()["order_id"])
    assert _channels(rejected) == [("X", "failed"), ("B", "succeeded")]
    assert rejected["attempts"][0]["reason"].startswith("rejected")

    # 3. A failure (a failure callback, or the query for a protocol without callbacks) fails over.
    _behave(sim, reject_ratio=0.0, success_ratio=0.0)
    failed = web.wait_order(m.order("P-3", account=ACCOUNT).json()["order_id"])
    assert _channels(failed) == [("X", "failed"), ("B", "succeeded")]
    expected_reason = "supplier_failed" if has_callbacks else "query_failed"
    assert failed["attempts"][0]["reason"].startswith(expected_reason), failed["attempts"][0]

    # 4. Silence: the deadline asks, the supplier says success, the order completes there.
    _behave(sim, success_ratio=1.0, silent_ratio=1.0, silent_query="success")
    silent = web.wait_order(m.order("P-4", account=ACCOUNT).json()["order_id"])
    assert _channels(silent) == [("X", "succeeded")]
    assert "query" in _events(web.admin_order(silent["order_id"]))

    # 5. An unknown reply (HTTP 500): the deadline asks, the supplier never saw it, the order moves on.
    _behave(sim, silent_ratio=0.0, http_status=500)
    unknown = web.wait_order(m.order("P-5", account=ACCOUNT).json()["order_id"])
    assert _channels(unknown) == [("X", "failed"), ("B", "succeeded")]
    assert unknown["attempts"][0]["reason"] == "query_not_found"
    _behave(sim, http_status=200)

    # 6. A forged callback is refused and changes nothing (no callback route at all for DingConnect).
    before = web.admin_order(silent["order_id"])
    with httpx.Client(base_url=web.url, trust_env=False, timeout=10) as http:
        path = f"/callbacks/{protocol}/X"
        if profile.forge is None:
            assert http.post(path, json={"DistributorRef": supplier_ref}).status_code == 404
        else:
            assert profile.forge(http, path, silent["attempts"][0]["supplier_ref"]).status_code == 401
    after = web.admin_order(silent["order_id"])
    assert after["status"] == "succeeded" and after["callbacks"] == before["callbacks"]
    assert _events(after) == _events(before)

    assert web.ledger_check()["balanced"] is True
    m.close()


def test_reloadly_token_expiry_mid_run(web: Platform, sim: Any) -> None:
    """The simulator stops honouring tokens after 0.3 s while announcing an hour: the platform's next
    call gets a 401, fetches a new token once and repeats the call, and the order goes through."""
    _setup(web, sim, PROFILES["reloadly"], options={"token_ttl_s": 3600, "token_valid_s": 0.3})
    m = web.merchant()
    state = sim.simulator.channels["X"].state
    first = web.wait_order(m.order("T-1", account=ACCOUNT).json()["order_id"])
    assert _channels(first) == [("X", "succeeded")]
    requests_before = state["token_requests"]
    time.sleep(0.4)  # the cached token is now dead on the server, alive by its expires_in
    second = web.wait_order(m.order("T-2", account=ACCOUNT).json()["order_id"])
    assert _channels(second) == [("X", "succeeded")]
    assert state["unauthorized"] >= 1
    assert state["token_requests"] == requests_before + 1
    m.close()


def test_channel_credentials_are_sealed_and_masked(web: Platform, sim: Any) -> None:
    """Credentials are stored encrypted, shown masked, and a balance check asks the supplier."""
    _setup(web, sim, PROFILES["fulu"], balance=123_450)
    shown = web.admin.get("/admin/v1/channels/X").json()
    assert shown["credentials"]["app_key"] == "fulu-app-key"
    assert shown["credentials"]["app_secret"] != "fulu-secret-0123456789"
    assert "0123456789" not in orjson.dumps(shown).decode()
    assert shown["callback_url"].endswith("/callbacks/fulu/X") and shown["balance"] is None

    async def stored() -> str:
        db = Database(web.database_url, Clock())
        try:
            async with db.transaction() as tx:
                row = await tx.fetchrow("SELECT credentials, secret FROM channels WHERE code = 'X'")
        finally:
            await db.dispose()
        assert row is not None
        return f"{row.credentials}|{row.secret}"

    raw = asyncio.run(stored())
    assert raw.startswith("fernet:") and "fulu-secret" not in raw and "fulu-app-key" not in raw

    balance = web.admin.get("/admin/v1/channels/X/balance")
    assert balance.status_code == 200, balance.text
    assert balance.json()["amount"] == 123_450 and balance.json()["currency"] == "CNY"
    assert web.admin.get("/admin/v1/channels/X").json()["balance"]["amount"] == 123_450

    bad = web.admin.put(
        "/admin/v1/channels/X",
        json={"name": "x", "protocol": "fulu", "base_url": sim.base_url("X"), "credentials": {}},
    )
    assert bad.status_code == 400 and "credentials" in bad.json()["error"]["message"]


def test_a_final_dispatch_reply_completes_or_fails_the_attempt(web: Platform, sim: Any) -> None:
    """Reloadly answering SUCCESSFUL (or FAILED) in the top-up reply itself: no callback, no query."""
    # The webhook that follows comes well after the reply, so the reply is what completes the attempt.
    _setup(web, sim, PROFILES["reloadly"], options={"synchronous": True})
    _behave(sim, callback_delay_s=2.0)
    m = web.merchant()
    done = web.wait_order(m.order("S-1", account=ACCOUNT).json()["order_id"])
    assert _channels(done) == [("X", "succeeded")]
    replies = [e["detail"]["result"] for e in done["timeline"] if e["kind"] == "dispatch_reply"]
    assert replies == ["succeeded"] and "query" not in _events(done)
    # The reply itself completed the attempt; the webhook that follows (docs/suppliers/reloadly.md) may
    # already have arrived and changed nothing.
    sources = [e["detail"]["source"] for e in done["timeline"] if e["kind"] == "attempt_succeeded"]
    assert sources == ["dispatch"]
    assert all(c["status"] == "success" for c in done["callbacks"])

    _behave(sim, success_ratio=0.0)
    failed = web.wait_order(m.order("S-2", account=ACCOUNT).json()["order_id"])
    assert _channels(failed) == [("X", "failed"), ("B", "succeeded")]
    assert failed["attempts"][0]["reason"].startswith("supplier_failed")
    assert "query" not in _events(failed)
    m.close()
