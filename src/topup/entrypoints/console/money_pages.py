"""The console's money pages: margins (table, chart, CSV), supplier statements (upload, discrepancies,
the exceptions they raised), supplier accounts and prepayments."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import UploadFile
from starlette.responses import RedirectResponse, Response, StreamingResponse

from topup.bootstrap import Container
from topup.domain.costs import MarginBy, MarginLine
from topup.domain.errors import InvalidRequest, TopupError
from topup.domain.statements import DiscrepancyKind
from topup.entrypoints.api import admin_routes, money_routes
from topup.entrypoints.api.deps import container
from topup.entrypoints.console.auth import ConsoleRoute, operator
from topup.entrypoints.console.money_charts import margin_bars
from topup.entrypoints.console.render import page
from topup.entrypoints.console.roles import AdminPost, OperatorPost
from topup.entrypoints.websession import Session
from topup.services import costs, margins, statement_views, statements

router = APIRouter(prefix="/console/money", route_class=ConsoleRoute, include_in_schema=False)
Op = Annotated[Session, Depends(operator)]
Ctr = Annotated[Container, Depends(container)]
DAY_S = 86400
PAGE_ROWS = 500
FORM_TIME = "%Y-%m-%dT%H:%M"


def _midnight(ts: float) -> float:
    return float(ts - ts % DAY_S)


def _form_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime(FORM_TIME)


def _utc(value: str, name: str) -> float:
    """A datetime-local or date input, read as UTC."""
    for fmt in (FORM_TIME, "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return float(calendar.timegm(datetime.strptime(value.strip(), fmt).timetuple()))
        except ValueError:
            continue
    raise InvalidRequest(f"{name.capitalize()}: a date and time like 2024-05-01T00:00 (UTC)")


def _period(values: dict[str, str], default: tuple[float, float]) -> tuple[float, float]:
    t0 = _utc(values["from"], "from") if values.get("from") else default[0]
    t1 = _utc(values["to"], "to") if values.get("to") else default[1]
    if t1 <= t0:
        raise InvalidRequest("To must be later than From.")
    return t0, t1


def _today(c: Container) -> tuple[float, float]:
    start = _midnight(c.clock.now())
    return start, start + DAY_S


def _yesterday(c: Container) -> tuple[float, float]:
    start = _midnight(c.clock.now())
    return start - DAY_S, start


@router.get("")
async def money_home() -> Response:
    return RedirectResponse("/console/money/margins", status_code=303)


# ---- margins -------------------------------------------------------------------------------------------


@router.get("/margins")
async def margins_page(request: Request, session: Op, c: Ctr) -> Response:
    p = request.query_params
    by = p.get("by") or "channel"
    errors: list[str] = []
    t0, t1 = _today(c)
    try:
        if by not in MarginBy.__members__.values():
            raise InvalidRequest("By: channel, product or merchant.")
        t0, t1 = _period({"from": p.get("from", ""), "to": p.get("to", "")}, (t0, t1))
    except TopupError as e:
        errors.append(e.message)
        by = "channel"
    items, totals = await _margins(c, t0, t1, by)
    form = {"from": _form_time(t0), "to": _form_time(t1), "by": by}
    chart = margin_bars(items, label=f"Revenue, cost and margin by {by}")
    return page(
        request,
        "money_margins.html",
        session,
        form=form,
        errors=errors,
        items=items,
        totals=totals,
        chart=chart,
        bys=[str(b) for b in MarginBy],
        csv_query=f"from={form['from']}&to={form['to']}&by={by}",
    )


async def _margins(c: Container, t0: float, t1: float, by: str) -> tuple[list[MarginLine], MarginLine]:
    async with c.db.reads() as tx:
        return await margins.margins(tx, t0, t1, MarginBy(by))


@router.get("/margins.csv")
async def margins_csv(request: Request, session: Op, c: Ctr) -> Response:
    p = request.query_params
    by = p.get("by") or "channel"
    if by not in MarginBy.__members__.values():
        raise InvalidRequest("By: channel, product or merchant.")
    t0, t1 = _period({"from": p.get("from", ""), "to": p.get("to", "")}, _today(c))
    items, totals = await _margins(c, t0, t1, by)
    name = f"margins-{by}-{_form_time(t0)}-{_form_time(t1)}.csv".replace(":", "")
    return money_routes.csv_download(money_routes.margins_csv(by, items, totals), name)


# ---- statements ----------------------------------------------------------------------------------------


async def _statements_page(
    request: Request, session: Session, c: Container, status: int = 200, **extra: Any
) -> Response:
    async with c.db.transaction() as tx:
        channels = sorted((await c.cache.fresh(tx)).channels)
        items = await statement_views.list_statements(tx, None, 100)
    # Closing a day: yesterday's statement by default; a practice statement: today's attempts.
    t0, t1 = _yesterday(c)
    form = {"channel": channels[0] if channels else "", "from": _form_time(t0), "to": _form_time(t1)}
    form.update(extra.pop("form", {}))
    t0, t1 = _today(c)
    practice = {"channel": form["channel"], "from": _form_time(t0), "to": _form_time(t1)}
    return page(
        request,
        "money_statements.html",
        session,
        status=status,
        items=items,
        channels=channels,
        form=form,
        practice=practice,
        **extra,
    )


@router.get("/statements")
async def statements_page(request: Request, session: Op, c: Ctr) -> Response:
    return await _statements_page(request, session, c)


@router.post("/statements")
async def upload_statement(request: Request, user: OperatorPost, c: Ctr) -> Response:
    """Reconcile an uploaded statement file, then show it."""
    form = await request.form()
    values = {k: str(form.get(k) or "").strip() for k in ("channel", "from", "to", "format")}
    upload = form.get("file")
    try:
        if not values["channel"]:
            raise InvalidRequest("Choose the channel whose statement this is.")
        if not isinstance(upload, UploadFile):
            raise InvalidRequest("Choose the statement file (CSV: supplier_ref,status,amount).")
        t0, t1 = _period(values, _yesterday(c))
        body = await upload.read()
        out, _ = await money_routes.reconcile(
            c, user.actor, values["channel"], t0, t1, body, values["format"] or "csv"
        )
    except TopupError as e:
        details = (e.details or {}).get("errors") if isinstance(e.details, dict) else None
        return await _statements_page(
            request, user.session, c, status=e.status, errors=[e.message, *(details or [])[1:]], form=values
        )
    return RedirectResponse(f"/console/money/statements/{out['statement_id']}", status_code=303)


@router.get("/statements/sample.csv")
async def sample_statement(request: Request, session: Op, c: Ctr) -> Response:
    """A statement made from the channel's own attempts (for drills), optionally with discrepancies."""
    p = request.query_params
    code = p.get("channel") or ""
    t0, t1 = _period({"from": p.get("from", ""), "to": p.get("to", "")}, _today(c))
    async with c.db.reads() as tx:
        if code not in (await c.cache.get(tx)).channels:
            raise InvalidRequest(f"No channel {code}.")
        planted = p.get("with_discrepancies") in ("1", "on", "true")
        body = await statements.sample(
            tx, code, t0, t1, with_discrepancies=planted, seed=int(c.clock.now()) % 1000
        )
    return money_routes.csv_download(body, f"statement-{code}-{_form_time(t0)}.csv".replace(":", ""))


@router.get("/statements/{statement_id}")
async def statement_page(request: Request, statement_id: str, session: Op, c: Ctr) -> Response:
    kind = request.query_params.get("kind") or None
    if kind is not None and kind not in DiscrepancyKind.__members__.values():
        kind = None
    async with c.db.reads() as tx:
        view = await statement_views.summary(tx, statement_id)
        found = await statement_views.discrepancies(tx, statement_id, kind, PAGE_ROWS)
        exceptions = await statement_views.exceptions_of(tx, statement_id, found)
    rows = []
    for d in found:
        ours = d.ours or {}
        rows.append({**d.public(), "at_stake": d.at_stake, "exception": exceptions.get(str(ours.get("ref")))})
    return page(
        request,
        "money_statement.html",
        session,
        s=view,
        rows=rows,
        kind=kind,
        statement_exception=exceptions.get(statement_id),
        shown=len(rows),
        limit=PAGE_ROWS,
    )


@router.get("/statements/{statement_id}/discrepancies.csv")
async def statement_csv(statement_id: str, session: Op, c: Ctr) -> Response:
    async with c.db.reads() as tx:
        await statement_views.read_header(tx, statement_id)
        found = await statement_views.discrepancies(tx, statement_id)
    return StreamingResponse(
        statement_views.discrepancies_csv(found),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{statement_id}-discrepancies.csv"'},
    )


@router.post("/statements/{statement_id}/resolve/{exception_id}")
async def resolve(
    request: Request, statement_id: str, exception_id: str, user: OperatorPost, c: Ctr
) -> Response:
    """Resolve an exception the statement raised, and come back to the statement."""
    form = await request.form()
    note = str(form.get("note") or "").strip()
    await admin_routes.resolve_exception(exception_id, c, user.actor, {"note": note, "by": user.actor.name})
    return RedirectResponse(f"/console/money/statements/{statement_id}", status_code=303)


# ---- supplier accounts and prepayments --------------------------------------------------------------------


@router.get("/suppliers")
async def suppliers_page(request: Request, session: Op, c: Ctr) -> Response:
    async with c.db.transaction() as tx:
        codes = sorted((await c.cache.fresh(tx)).channels)
        accounts = await costs.supplier_accounts(tx, codes)
    reference = f"console-{int(c.clock.now())}"
    return page(request, "money_suppliers.html", session, accounts=accounts, reference=reference)


@router.post("/suppliers/{code}/prepay")
async def prepay(request: Request, code: str, user: AdminPost, c: Ctr) -> Response:
    form = await request.form()
    amount = str(form.get("amount") or "").strip()
    reference = str(form.get("reference") or "").strip()
    if not amount.isdigit() or not 0 < int(amount) <= 10**12 or not 0 < len(reference) <= 128:
        raise InvalidRequest("A prepayment needs an amount in fen (a whole number above 0) and a reference.")
    body = money_routes.PrepaymentIn(amount=int(amount), reference=reference)
    await money_routes.prepay(code, body, c, user.actor)
    return RedirectResponse("/console/money/suppliers", status_code=303)
