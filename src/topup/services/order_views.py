"""The order as merchants see it (SPEC section 1), one typed view shared by the API, the stream and the
outbox's webhook events. A TypedDict, not a model: the hot routes send it as it is (no validation pass);
`entrypoints/api/schemas.OrderOut` documents the same fields for the API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from topup.clock import rfc3339
from topup.domain.orders import Attempt, Order


class AttemptView(TypedDict):
    no: int
    channel: str
    ref: str
    supplier_ref: str
    status: str
    reason: str | None
    started_at: str | None
    finished_at: str | None


class OrderView(TypedDict):
    order_id: str
    merchant_order_id: str
    batch_id: str | None
    business_type: str
    product_code: str
    account: str
    carrier: str | None
    region: str | None
    face_value: int
    price: int
    status: str
    failure_reason: str | None
    attempts: list[AttemptView]
    created_at: str | None
    updated_at: str | None
    completed_at: str | None


class OrderPage(TypedDict):
    items: list[OrderView]
    next_cursor: str | None


def render_attempt(a: Attempt) -> AttemptView:
    return {
        "no": a.no,
        "channel": a.channel_code,
        "ref": a.ref,
        "supplier_ref": a.supplier_ref or a.ref,
        "status": a.status,
        "reason": a.reason,
        "started_at": rfc3339(a.started_at),
        "finished_at": rfc3339(a.finished_at),
    }


def render(o: Order | Mapping[str, Any], attempts: list[Attempt]) -> OrderView:
    """The view of an order (or of a new order's row, as batches insert them) with its attempts."""

    def g(key: str) -> Any:
        return o.get(key) if isinstance(o, Mapping) else getattr(o, key)

    return {
        "order_id": g("id"),
        "merchant_order_id": g("merchant_order_id"),
        "batch_id": g("batch_id"),
        "business_type": g("business_type"),
        "product_code": g("product_code"),
        "account": g("account"),
        "carrier": g("carrier"),
        "region": g("region"),
        "face_value": int(g("face_value")),
        "price": int(g("price")),
        "status": g("status"),
        "failure_reason": g("failure_reason"),
        "attempts": [render_attempt(a) for a in attempts],
        "created_at": rfc3339(g("created_at")),
        "updated_at": rfc3339(g("updated_at")),
        "completed_at": rfc3339(g("completed_at")),
    }
