"""docs/suppliers.md's worked example is real code: the Acme adapter on that page fits the supplier port,
passes the page's own vector test, and speaks its protocol over HTTP (httpx.MockTransport)."""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Any

import httpx
import orjson

from topup.domain import suppliers as port

DOC = Path(__file__).resolve().parents[2] / "docs" / "suppliers.md"


def _doc_module() -> types.ModuleType:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) == 2, "the guide has the adapter and its test"
    module = types.ModuleType("acme_from_doc")
    exec(compile(blocks[0] + "\n" + blocks[1], str(DOC), "exec"), module.__dict__)
    return module


def _access() -> port.ChannelAccess:
    return port.ChannelAccess("ac", "acme", "http://acme.test/api", {"key": "k"}, {}, {}, 1.0, "http://p/cb")


def test_the_guides_own_vectors_pass() -> None:
    _doc_module().test_acme_vectors()


async def test_the_guides_adapter_speaks_its_protocol() -> None:
    acme = _doc_module()
    seen: list[httpx.Request] = []

    def supplier(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/api/recharge":
            return httpx.Response(200, json={"code": 0, "id": "A-9"})
        if request.url.path == "/api/recharge/ordA1":
            return httpx.Response(200, json={"state": "wait"})
        if request.url.path == "/api/wallet":
            return httpx.Response(200, json={"cents": 12345})
        return httpx.Response(404)

    async with httpx.AsyncClient(transport=httpx.MockTransport(supplier)) as client:
        adapter: Any = acme.create(client, lambda: 0.0)
        members = [*port.SupplierProtocol.__annotations__, "validate", "serves", "supplier_ref"]
        members += ["dispatch", "query", "balance", "parse_callback", "ack"]
        assert all(hasattr(adapter, m) for m in members), "the guide's adapter does not fit the port"
        req = port.DispatchRequest("ordA1", "ord_1-1", "airtime.50", "mobile_airtime", "13800138000", 4990)
        out = await adapter.dispatch(_access(), req)
        assert (out.kind, out.supplier_order_id) == ("accepted", "A-9")
        assert orjson.loads(seen[0].content) == {"ref": "ordA1", "phone": "13800138000", "yuan": "49.9"}
        assert seen[0].headers["X-Acme-Key"] == "k"
        question = port.QueryRequest("ordA1", "ord_1-1", "airtime.50", "mobile_airtime")
        assert (await adapter.query(_access(), question)).status == "processing"
        missing = port.QueryRequest("nope", "ord_1-2", "airtime.50", "mobile_airtime")
        assert (await adapter.query(_access(), missing)).status == "not_found"
        assert (await adapter.balance(_access())).amount == 12345

    sig = b"eac91e4486d6850c58e679281b439fe1127e5466e54fd89a2a3488ab39b409c2"  # openssl, see the doc
    good = b'{"ref": "ordA1", "state": "done", "sig": "' + sig + b'"}'
    data = adapter.parse_callback(_access(), port.CallbackRequest("POST", "/cb", {}, good), 0.0)
    assert (data.supplier_ref, data.status) == ("ordA1", "success")
    forged = good.replace(b'"done"', b'"fail"')
    try:
        adapter.parse_callback(_access(), port.CallbackRequest("POST", "/cb", {}, forged), 0.0)
    except port.CallbackRefused as refused:
        assert refused.kind == "unauthorized"
    else:
        raise AssertionError("a forged callback was accepted")
