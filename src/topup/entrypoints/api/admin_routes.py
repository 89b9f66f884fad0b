"""Operator API (`/admin/v1`, bearer token)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from topup.adapters.db.engine import Tx
from topup.adapters.db.queries import operator_views as q
from topup.bootstrap import Container
from topup.clock import rfc3339
from topup.domain import routing as R
from topup.domain.errors import InvalidRequest, NotFound
from topup.entrypoints.api.deps import admin_auth, container
from topup.entrypoints.api.order_story import order_story, render_exception
from topup.entrypoints.api.responses import JSONOut
from topup.entrypoints.api.roles import AsAdmin, AsOperator, Role, requires
from topup.entrypoints.api.schemas import (
    ChannelIn,
    ChannelOut,
    CreditIn,
    CreditOut,
    ErrorOut,
    GroupIn,
    GroupOut,
    LedgerCheckOut,
    MerchantIn,
    MerchantOut,
    ProductIn,
    ProductOut,
)
from topup.services import audited, catalog, ledger, merchants, orders
from topup.services.coverage import coverage_of, destination

router = APIRouter(
    prefix="/admin/v1",
    dependencies=[Depends(admin_auth)],
    responses={401: {"model": ErrorOut}, 400: {"model": ErrorOut}},
)

Ctr = Annotated[Container, Depends(container)]
PathCode = Annotated[str, "code"]


def _code(code: str) -> str:
    from topup.domain.orders import MERCHANT_ORDER_ID

    if not MERCHANT_ORDER_ID.match(code):
        raise InvalidRequest("code: 1-64 of [A-Za-z0-9_.-]")
    return code


def _put_response(response: Response, body: dict[str, Any], created: bool) -> dict[str, Any]:
    """201 when the PUT created the resource; the route's `response_model` checks and shapes `body`."""
    response.status_code = 201 if created else 200
    return body


@router.put("/products/{code}", response_model=ProductOut, responses={201: {"model": ProductOut}})
async def put_product(
    code: str, body: ProductIn, c: Ctr, actor: AsAdmin, response: Response
) -> dict[str, Any]:
    _code(code)
    if body.price > body.face_value * 10:
        raise InvalidRequest("price: more than ten times the face value looks like a typo")
    if body.business_type == "mobile_airtime" and body.brand not in (
        None,
        "auto",
        "cmcc",
        "cucc",
        "ctcc",
        "cbn",
    ):
        raise InvalidRequest(
            "brand: a mobile product's brand is null, auto or a carrier (cmcc|cucc|ctcc|cbn)"
        )
    async with c.db.transaction() as tx:
        out, created = await audited.put_product(tx, actor, code, body.model_dump())
    c.cache.invalidate()
    out.pop("enabled", None)
    return _put_response(response, out, created)


@router.get("/products", dependencies=[requires(Role.VIEWER)])
async def list_products(c: Ctr) -> JSONOut:
    async with c.db.transaction() as tx:
        items = [r._asdict() for r in await q.products(tx)]
    return JSONOut({"items": items, "next_cursor": None})


@router.put("/channels/{code}", response_model=ChannelOut, responses={201: {"model": ChannelOut}})
async def put_channel(
    code: str, body: ChannelIn, c: Ctr, actor: AsAdmin, response: Response
) -> dict[str, Any]:
    _code(code)
    if body.max_wait_s < body.timeout_s:
        raise InvalidRequest("max_wait_s: must be at least timeout_s")
    async with c.db.transaction() as tx:
        out, created = await audited.put_channel(
            tx, actor, c.cache, code, body.model_dump(), c.box, c.suppliers
        )
    c.cache.invalidate()
    return _put_response(response, out, created)


@router.get("/channels", dependencies=[requires(Role.VIEWER)])
async def list_channels(c: Ctr) -> JSONOut:
    async with c.db.transaction() as tx:
        snap = await c.cache.fresh(tx)
    return JSONOut(
        {
            "items": [ch.public() for ch in sorted(snap.channels.values(), key=lambda x: x.code)],
            "next_cursor": None,
        }
    )


async def group_view(tx: Tx, c: Container, code: str, to: R.Destination | None = None) -> dict[str, Any]:
    snap = await c.cache.fresh(tx)
    group = snap.groups.get(code)
    exists = await q.group_exists(tx, code)
    if group is None or not exists:
        raise NotFound(f"group {code} not found")
    state = await catalog.group_state(tx, code)
    assert state is not None
    # Paused channels drop out; given a carrier/region (SPEC 7), so do members that do not cover it.
    members = snap.members_of(group, None, to)
    # The ranking for a typical product: the group's own order, price guard aside.
    probe_product, price = "", 10**12
    rates = None
    if group.strategy == R.Strategy.SUCCESS_RATE:
        rates = await c.fulfilment.success_rates(tx, [m.channel for m in members])
    strategy = R.Strategy.PRIORITY if group.strategy == R.Strategy.WEIGHTED else group.strategy
    base = R.rank(members, strategy, probe_product, price, rates)
    home = R.home_channel(members, group.strategy, probe_product, price, rates)
    active = state.active_channel or home
    return {
        "code": group.code,
        "business_type": group.business_type,
        "brand": group.brand,
        "strategy": group.strategy,
        "sticky": group.sticky,
        "recovery_s": group.recovery_s,
        "members": [
            {
                "channel": m.channel,
                "priority": m.priority,
                "weight": m.weight,
                "costs": dict(m.costs),
                **coverage_of(m),
            }
            for m in group.members
        ],
        "active_channel": active,
        "ranking": R.group_ranking(state, base, home, c.clock.now()),
        "switched_at": rfc3339(state.switched_at),
        "probe_order_id": state.probe_order_id,
    }


@router.put("/groups/{code}", response_model=GroupOut, responses={201: {"model": GroupOut}})
async def put_group(code: str, body: GroupIn, c: Ctr, actor: AsAdmin, response: Response) -> dict[str, Any]:
    _code(code)
    async with c.db.transaction() as tx:
        created = await audited.put_group(tx, actor, c.cache, code, body.model_dump())
        view = await group_view(tx, c, code)
    c.cache.invalidate()
    return _put_response(response, view, created)


@router.get(
    "/groups/{code}",
    response_model=GroupOut,
    responses={404: {"model": ErrorOut}},
    dependencies=[requires(Role.VIEWER)],
)
async def get_group(
    code: str,
    c: Ctr,
    carrier: Annotated[str | None, Query(max_length=64)] = None,
    region: Annotated[str | None, Query(max_length=8)] = None,
) -> dict[str, Any]:
    """`?carrier=&region=`: the ranking for orders of that carrier and home region (SPEC 7)."""
    to = destination(carrier, region)
    async with c.db.transaction() as tx:
        return await group_view(tx, c, code, to)


@router.get("/groups", dependencies=[requires(Role.VIEWER)])
async def list_groups(c: Ctr) -> JSONOut:
    async with c.db.transaction() as tx:
        items = [await group_view(tx, c, code) for code in await q.group_codes(tx)]
    return JSONOut({"items": items, "next_cursor": None})


@router.get("/groups/{code}/switches", dependencies=[requires(Role.VIEWER)])
async def group_switches(code: str, c: Ctr, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> JSONOut:
    async with c.db.transaction() as tx:
        rows = await q.group_switches(tx, code, limit)
    items = [
        {
            "from_channel": r.from_channel,
            "to_channel": r.to_channel,
            "reason": r.reason,
            "order_id": r.order_id,
            "at": rfc3339(r.at),
        }
        for r in rows
    ]
    return JSONOut({"items": items, "next_cursor": None})


@router.put("/merchants/{merchant_id}", response_model=MerchantOut, responses={201: {"model": MerchantOut}})
async def put_merchant(
    merchant_id: str, body: MerchantIn, c: Ctr, actor: AsAdmin, response: Response
) -> dict[str, Any]:
    _code(merchant_id)
    async with c.db.transaction() as tx:
        out, created = await audited.put_merchant(tx, actor, merchant_id, body.model_dump())
    c.merchants.invalidate(merchant_id)
    return _put_response(response, out, created)


@router.get("/merchants", dependencies=[requires(Role.VIEWER)])
async def list_merchants(c: Ctr) -> JSONOut:
    async with c.db.transaction() as tx:
        items = []
        for r in await q.merchants(tx):
            items.append({**merchants.public(r), "balance": await ledger.balance(tx, r.id)})
    return JSONOut({"items": items, "next_cursor": None})


@router.post(
    "/merchants/{merchant_id}/credits",
    status_code=201,
    response_model=CreditOut,
    responses={200: {"model": CreditOut}, 404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
)
async def credit(
    merchant_id: str, body: CreditIn, c: Ctr, actor: AsAdmin, response: Response
) -> dict[str, Any]:
    async with c.db.transaction() as tx:
        out, created = await audited.credit(tx, actor, merchant_id, body.amount, body.reference)
    return _put_response(response, out, created)


@router.get("/orders/{order_id}", responses={404: {"model": ErrorOut}}, dependencies=[requires(Role.VIEWER)])
async def admin_order(order_id: str, c: Ctr) -> JSONOut:
    async with c.db.transaction() as tx:
        return JSONOut(await order_story(tx, order_id))


@router.get("/orders", dependencies=[requires(Role.VIEWER)])
async def admin_orders(
    c: Ctr,
    status: Annotated[str | None, Query(max_length=32)] = None,
    merchant_id: Annotated[str | None, Query(max_length=64)] = None,
    merchant_order_id: Annotated[str | None, Query(max_length=64)] = None,
    account: Annotated[str | None, Query(max_length=254)] = None,
    batch_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> JSONOut:
    async with c.db.transaction() as tx:
        page = await orders.list_orders(
            tx,
            merchant_id,
            status=status,
            merchant_order_id=merchant_order_id,
            account=account,
            batch_id=batch_id,
            limit=limit,
            cursor=cursor,
        )
    return JSONOut(page)


@router.get("/exceptions", dependencies=[requires(Role.VIEWER)])
async def list_exceptions(
    c: Ctr,
    resolved: bool | None = None,
    kind: Annotated[str | None, Query(max_length=48)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> JSONOut:
    async with c.db.transaction() as tx:
        rows = await q.exceptions(tx, resolved, kind, limit)
    return JSONOut({"items": [render_exception(e) for e in rows], "next_cursor": None})


@router.post(
    "/exceptions/{exception_id}/resolve", responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut}}
)
async def resolve_exception(
    exception_id: str, c: Ctr, actor: AsOperator, body: dict[str, Any] | None = None
) -> JSONOut:
    note = str((body or {}).get("note") or "")[:2000]
    by = str((body or {}).get("by") or actor.name)[:200]
    async with c.db.transaction() as tx:
        row = await audited.resolve_exception(tx, actor, exception_id, note, by)
    return JSONOut(render_exception(row))


@router.get("/ledger/check", response_model=LedgerCheckOut, dependencies=[requires(Role.VIEWER)])
async def ledger_check(c: Ctr) -> dict[str, Any]:
    async with c.db.transaction() as tx:
        return await ledger.check(tx)
