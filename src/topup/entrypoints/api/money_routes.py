"""Operator API for money with suppliers (SPEC section 8): margin reports, prepayments and supplier
accounts, statement reconciliation."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field, StrictInt, StringConstraints
from starlette.responses import Response, StreamingResponse

from topup.bootstrap import Container
from topup.clock import rfc3339
from topup.domain.costs import MarginBy, MarginLine
from topup.domain.errors import InvalidRequest, NotFound
from topup.domain.statement_files import parse_time, period
from topup.entrypoints.api.deps import admin_auth, container
from topup.entrypoints.api.responses import JSONOut
from topup.entrypoints.api.roles import Actor, AsAdmin, AsOperator, Role, requires
from topup.entrypoints.api.schemas import ErrorOut, Strict
from topup.services import audit, costs, margins, statement_views, statements

router = APIRouter(
    prefix="/admin/v1",
    dependencies=[Depends(admin_auth)],
    responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 400: {"model": ErrorOut}},
)
Ctr = Annotated[Container, Depends(container)]
Viewer = [requires(Role.VIEWER)]
From = Annotated[str, Query(alias="from", max_length=64, description="RFC 3339 time or a date (UTC)")]
To = Annotated[str, Query(alias="to", max_length=64, description="RFC 3339 time or a date (UTC); exclusive")]
OptFrom = Annotated[str | None, Query(alias="from", max_length=64)]
OptTo = Annotated[str | None, Query(alias="to", max_length=64)]
By = Annotated[Literal["channel", "product", "merchant"], Query()]
DAY_S = 86400.0


class PrepaymentIn(Strict):
    amount: Annotated[StrictInt, Field(gt=0, le=10**12)]
    """Fen sent to the supplier."""
    reference: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    """Your reference for it (e.g. the bank transfer's); the same reference again is the same prepayment."""


# ---- margins ------------------------------------------------------------------------------------------


def report_period(c: Container, start: str | None, end: str | None) -> tuple[float, float]:
    """[from, to): both given, or `to` defaulting to now and `from` to a day before `to`."""
    t1 = parse_time(end, "to") if end else c.clock.now()
    t0 = parse_time(start, "from") if start else t1 - DAY_S
    if t1 <= t0:
        raise InvalidRequest("to must be later than from")
    return t0, t1


async def margin_report(
    c: Container, start: str | None, end: str | None, by: str
) -> tuple[float, float, list[MarginLine], MarginLine]:
    t0, t1 = report_period(c, start, end)
    async with c.db.reads() as tx:
        items, totals = await margins.margins(tx, t0, t1, MarginBy(by))
    return t0, t1, items, totals


def _totals(totals: MarginLine) -> dict[str, Any]:
    out = totals.public()
    out.pop("key")
    return out


# CSV downloads are documented as text/csv (the API's default would say JSON).
CSV: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {"schema": {"type": "string"}}}}}


@router.get("/reports/margins", dependencies=Viewer)
async def margins_report(c: Ctr, start: OptFrom = None, end: OptTo = None, by: By = "channel") -> JSONOut:
    """Succeeded orders in [from, to) with their revenue, and the costs posted in it, by channel, product
    or merchant (fen). `margin = revenue - cost`; `fulfilments` counts cost postings (duplicates too)."""
    t0, t1, items, totals = await margin_report(c, start, end, by)
    return JSONOut(
        {
            "from": rfc3339(t0),
            "to": rfc3339(t1),
            "by": by,
            "items": [i.public() for i in items],
            "totals": _totals(totals),
            "next_cursor": None,
        }
    )


def margins_csv(by: str, items: list[MarginLine], totals: MarginLine) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([by, "orders", "revenue", "cost", "margin", "fulfilments", "uncosted"])
    for line in [*items, totals]:
        p = line.public()
        w.writerow(
            [
                p["key"] or "total",
                p["orders"],
                p["revenue"],
                p["cost"],
                p["margin"],
                p["fulfilments"],
                p["uncosted"],
            ]
        )
    return buf.getvalue()


def csv_download(body: str, filename: str) -> Response:
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/reports/margins.csv", dependencies=Viewer, response_class=Response, responses=CSV)
async def margins_report_csv(
    c: Ctr, start: OptFrom = None, end: OptTo = None, by: By = "channel"
) -> Response:
    """The margin report as CSV (a `total` line last)."""
    t0, t1, items, totals = await margin_report(c, start, end, by)
    name = f"margins-{by}-{rfc3339(t0)}-{rfc3339(t1)}.csv".replace(":", "")
    return csv_download(margins_csv(by, items, totals), name)


# ---- prepayments and supplier accounts ------------------------------------------------------------------


def account_view(a: dict[str, Any]) -> dict[str, Any]:
    reported = a.get("reported")
    if reported is not None:
        reported = {**reported, "checked_at": rfc3339(reported["checked_at"])}
    return {**a, "reported": reported}


@router.post(
    "/channels/{code}/prepayments",
    status_code=201,
    responses={
        200: {"description": "the same reference again"},
        404: {"model": ErrorOut},
        409: {"model": ErrorOut},
    },
)
async def prepay(code: str, body: PrepaymentIn, c: Ctr, actor: AsAdmin) -> JSONOut:
    """Record money sent to the channel's supplier in advance (idempotent by `reference`)."""
    async with c.db.transaction() as tx:
        out, created = await costs.prepay(tx, await c.cache.fresh(tx), code, body.amount, body.reference)
        if created:
            after = {"amount": body.amount, "reference": body.reference}
            await audit.record(tx, actor, "supplier.prepay", f"channel:{code}", None, after)
    out = {**out, "created_at": rfc3339(out["created_at"]), "account": account_view(out["account"])}
    return JSONOut(out, status_code=201 if created else 200)


@router.get("/channels/{code}/prepayments", dependencies=Viewer, responses={404: {"model": ErrorOut}})
async def list_prepayments(code: str, c: Ctr, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> JSONOut:
    async with c.db.reads() as tx:
        if code not in (await c.cache.get(tx)).channels:
            raise NotFound(f"channel {code} does not exist")
        items = await costs.prepayments(tx, code, limit)
    return JSONOut(
        {"items": [{**i, "created_at": rfc3339(i["created_at"])} for i in items], "next_cursor": None}
    )


@router.get("/supplier-accounts", dependencies=Viewer)
async def supplier_accounts(c: Ctr) -> JSONOut:
    """Per channel: prepaid, cost, the balance our books give (negative: owed to the supplier), and the
    balance its supplier last reported with the difference."""
    async with c.db.transaction() as tx:
        codes = sorted((await c.cache.fresh(tx)).channels)
        items = await costs.supplier_accounts(tx, codes)
    return JSONOut({"items": [account_view(a) for a in items], "next_cursor": None})


# ---- statements ---------------------------------------------------------------------------------------


@router.post(
    "/channels/{code}/statements",
    status_code=201,
    responses={200: {"description": "the same file again: the same statement"}, 404: {"model": ErrorOut}},
    openapi_extra={
        "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}
    },
)
async def post_statement(
    code: str,
    request: Request,
    c: Ctr,
    actor: AsOperator,
    start: From,
    end: To,
    fmt: Annotated[str, Query(alias="format", max_length=32)] = "csv",
) -> JSONOut:
    """Reconcile the supplier's statement (CSV `supplier_ref,status,amount`) against the attempts sent
    to this channel: every row is matched by supplier ref whatever its time; our attempts dispatched in
    [from, to) must appear. 201 with the statement; the same file again for the same period: 200."""
    t0, t1 = period(start, end)
    out, created = await reconcile(c, actor, code, t0, t1, await request.body(), fmt)
    return JSONOut(out, status_code=201 if created else 200)


async def reconcile(
    c: Container, actor: Actor, code: str, t0: float, t1: float, body: bytes, fmt: str = "csv"
) -> tuple[dict[str, Any], bool]:
    """Reconcile a statement as `actor` (API and console; a new one goes into the audit log)."""
    return await statements.reconcile_statement(c.db, c.cache, code, t0, t1, body, fmt, actor)


@router.get("/channels/{code}/statements", dependencies=Viewer)
async def channel_statements(code: str, c: Ctr, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> JSONOut:
    async with c.db.reads() as tx:
        items = await statement_views.list_statements(tx, code, limit)
    return JSONOut({"items": items, "next_cursor": None})


@router.get(
    "/channels/{code}/statements/sample.csv",
    dependencies=Viewer,
    response_class=Response,
    responses={**CSV, 404: {"model": ErrorOut}},
)
async def sample_statement(
    code: str,
    c: Ctr,
    start: From,
    end: To,
    with_discrepancies: bool = False,
    seed: Annotated[int, Query(ge=0, le=2**31)] = 0,
) -> Response:
    """The statement this channel's supplier would send for [from, to) if it agreed with us; with
    `with_discrepancies=true`, one discrepancy of each kind planted (for demos and drills)."""
    t0, t1 = period(start, end)
    async with c.db.reads() as tx:
        if code not in (await c.cache.get(tx)).channels:
            raise NotFound(f"channel {code} does not exist")
        body = await statements.sample(tx, code, t0, t1, with_discrepancies=with_discrepancies, seed=seed)
    return csv_download(body, f"statement-{code}.csv")


@router.get("/statements", dependencies=Viewer)
async def list_statements(c: Ctr, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> JSONOut:
    async with c.db.reads() as tx:
        items = await statement_views.list_statements(tx, None, limit)
    return JSONOut({"items": items, "next_cursor": None})


@router.get("/statements/{statement_id}", dependencies=Viewer, responses={404: {"model": ErrorOut}})
async def get_statement(statement_id: str, c: Ctr) -> JSONOut:
    return JSONOut(await statement_views.read(c.db, statement_id))


@router.get(
    "/statements/{statement_id}/discrepancies.csv",
    dependencies=Viewer,
    response_class=Response,
    responses={**CSV, 404: {"model": ErrorOut}},
)
async def discrepancies_csv(statement_id: str, c: Ctr) -> Response:
    async with c.db.reads() as tx:
        await statement_views.read_header(tx, statement_id)
        found = await statement_views.discrepancies(tx, statement_id)
    return StreamingResponse(
        statement_views.discrepancies_csv(found),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{statement_id}-discrepancies.csv"'},
    )
