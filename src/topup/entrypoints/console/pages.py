"""The console's read-only pages: overview, groups, switches, orders, exceptions, merchants, catalog."""

from __future__ import annotations

import calendar
import secrets
import time
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import FileResponse, RedirectResponse, Response

from topup.adapters.db.queries import operator_views
from topup.bootstrap import Container
from topup.entrypoints.api.admin_routes import group_view
from topup.entrypoints.api.deps import container
from topup.entrypoints.api.order_story import order_story, render_exception
from topup.entrypoints.console import charts, stats, timeline
from topup.entrypoints.console.auth import ConsoleRoute, console_auth, operator
from topup.entrypoints.console.render import STATIC, page
from topup.entrypoints.websession import Session
from topup.services import coverage, ledger, merchants, orders, rate_limits

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
Op = Annotated[Session, Depends(operator)]
Ctr = Annotated[Container, Depends(container)]

ORDER_STATUSES = ("pending_payment", "processing", "succeeded", "failed", "cancelled")
STATIC_FILES = {"console.css": "text/css", "console.js": "text/javascript"}


def error_page(request: Request, status: int, title: str, message: str) -> Response:
    session = console_auth(request).sessions.read(request)
    return page(request, "error.html", session, status=status, title=title, message=message)


@router.get("/static/{name}")
async def static(name: str) -> Response:
    if name not in STATIC_FILES:
        return Response(status_code=404)
    return FileResponse(
        STATIC / name, media_type=STATIC_FILES[name], headers={"Cache-Control": "public, max-age=300"}
    )


async def _group_views(c: Container) -> list[dict[str, Any]]:
    async with c.db.transaction() as tx:
        return [await group_view(tx, c, code) for code in await operator_views.group_codes(tx)]


@router.get("")
async def overview(request: Request, session: Op, c: Ctr) -> Response:
    async with c.db.transaction() as tx:
        ov = await stats.overview(tx, c.clock.now())
        recent = await stats.switches(tx, limit=10)
        waiting = await rate_limits.waiting(tx)
    chart = charts.volume_and_success(ov["_series"], label="Orders per minute, last hour, with success rate")
    return page(
        request,
        "overview.html",
        session,
        ov=ov,
        chart=chart,
        statuses=ORDER_STATUSES,
        groups=await _group_views(c),
        switches=recent,
        waiting=waiting,
    )


@router.get("/groups")
async def groups(request: Request, session: Op, c: Ctr) -> Response:
    return page(request, "groups.html", session, groups=await _group_views(c))


@router.get("/groups/{code}")
async def group(request: Request, code: str, session: Op, c: Ctr) -> Response:
    async with c.db.transaction() as tx:
        view = await group_view(tx, c, code)
        snap = await c.cache.fresh(tx)
        members = [m["channel"] for m in view["members"]]
        per_channel = await stats.channel_stats(tx, members, c.clock.now())
        routing_rates = await c.fulfilment.success_rates(tx, members)
        history = await stats.switches(tx, group=code, limit=50)
        waiting = await rate_limits.waiting(tx)
    grid = coverage.grid_view(snap, code, routing_rates)
    rows = []
    for m in sorted(view["members"], key=lambda m: (m["priority"], m["channel"])):
        ch = snap.channels.get(m["channel"])
        s = per_channel[m["channel"]]
        rows.append(
            {
                **m,
                "enabled": bool(ch and ch.enabled),
                "paused": ch.paused if ch else None,
                "waiting": waiting.get(m["channel"], 0),
                "name": ch.name if ch else m["channel"],
                "rank": view["ranking"].index(m["channel"]) + 1 if m["channel"] in view["ranking"] else None,
                "active": m["channel"] == view["active_channel"],
                "stats": s,
                "routing_rate": routing_rates.get(m["channel"]),
                "chart": charts.volume_and_success(
                    s.series,
                    label=f"{m['channel']}: attempts per minute, last hour",
                    unit="attempts",
                    height=120,
                ),
            }
        )
    return page(request, "group.html", session, g=view, members=rows, switches=history, coverage=grid)


@router.get("/switches")
async def switches(request: Request, session: Op, c: Ctr) -> Response:
    group_code = request.query_params.get("group") or None
    async with c.db.transaction() as tx:
        items = await stats.switches(tx, group=group_code, limit=200)
    return page(request, "switches.html", session, switches=items, group=group_code)


def _utc(value: str) -> float | None:
    """`2024-05-01T12:30` from a datetime-local input, read as UTC."""
    if not value:
        return None
    for fmt in ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return float(calendar.timegm(datetime.strptime(value, fmt).timetuple()))
        except ValueError:
            continue
    raise ValueError(value)


@router.get("/orders")
async def order_search(request: Request, session: Op, c: Ctr) -> Response:
    p = request.query_params
    form = {
        k: (p.get(k) or "").strip()[:254]
        for k in ("order_id", "merchant_order_id", "account", "merchant_id", "status", "from", "to")
    }
    q = stats.OrderSearch(
        form["order_id"], form["merchant_order_id"], form["account"], form["merchant_id"], form["status"]
    )
    errors = []
    if q.status and q.status not in ORDER_STATUSES:
        errors.append(f"Status: one of {', '.join(ORDER_STATUSES)}")
    for key, attr in (("from", "since"), ("to", "until")):
        try:
            setattr(q, attr, _utc(form[key]))
        except ValueError:
            errors.append(f"{key.capitalize()}: a date and time like 2024-05-01T12:30 (UTC)")
    results: list[Any] = []
    if not errors:
        async with c.db.transaction() as tx:
            rows = await stats.search_orders(tx, q) if q.any() else await stats.search_orders(tx, q, limit=50)
            atts = await orders.attempts_of(tx, [r.id for r in rows])
        results = [{**orders.render(r, atts[r.id]), "merchant_id": r.merchant_id} for r in rows]
    return page(
        request,
        "orders.html",
        session,
        form=form,
        errors=errors,
        results=results,
        searched=q.any(),
        statuses=ORDER_STATUSES,
    )


@router.get("/orders/{order_id}")
async def order(request: Request, order_id: str, session: Op, c: Ctr) -> Response:
    async with c.db.transaction() as tx:
        story = await order_story(tx, order_id)
    return page(request, "order.html", session, o=story, entries=timeline.entries(story))


@router.get("/exceptions")
async def exceptions(request: Request, session: Op, c: Ctr) -> Response:
    show = request.query_params.get("show", "open")
    async with c.db.transaction() as tx:
        rows = await operator_views.exceptions(tx, None if show == "all" else False, None, 200)
    items = [render_exception(e) for e in rows]
    for item in items:
        item["summary"] = timeline.describe(item["detail"])
    return page(request, "exceptions.html", session, items=items, show=show)


@router.get("/merchants")
async def merchant_list(request: Request, session: Op, c: Ctr) -> Response:
    async with c.db.transaction() as tx:
        items = [
            {**merchants.public(r), "balance": await ledger.balance(tx, r.id)}
            for r in await operator_views.merchants(tx)
        ]
    reference = f"console-{int(time.time())}-{secrets.token_hex(3)}"
    return page(request, "merchants.html", session, items=items, reference=reference)


@router.get("/catalog")
async def catalog_page(request: Request, session: Op, c: Ctr) -> Response:
    async with c.db.transaction() as tx:
        snap = await c.cache.fresh(tx)
        views = [await group_view(tx, c, code) for code in sorted(snap.groups)]
    return page(
        request,
        "catalog.html",
        session,
        products=sorted(snap.products.values(), key=lambda p: p.code),
        channels=[ch.public() for ch in sorted(snap.channels.values(), key=lambda ch: ch.code)],
        groups=views,
    )


@router.get("/logout")
async def logout_get() -> Response:
    # Signing out changes state, so it is a POST; a stray GET just goes home.
    return RedirectResponse("/console", status_code=303)
