"""The merchant pages and the JSON endpoints their scripts call (session-authenticated, CSRF-checked)."""

from __future__ import annotations

import secrets
from typing import Annotated, Any
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.responses import FileResponse, RedirectResponse, Response

from topup.adapters.db.queries import merchant_views
from topup.bootstrap import Container
from topup.domain import ledger as L
from topup.domain.errors import InvalidRequest, NotFound, TopupError
from topup.domain.orders import MERCHANT_ORDER_ID, OrderStatus
from topup.entrypoints.api.batch_routes import csv_response
from topup.entrypoints.api.deps import container
from topup.entrypoints.api.responses import JSONOut
from topup.entrypoints.web.auth import LOGIN_CSRF_COOKIE, api_session, current, web_auth
from topup.entrypoints.web.render import STATIC, STATIC_FILES, page
from topup.entrypoints.websession import Session, csrf_ok
from topup.services import batches, ledger, orders

router = APIRouter(include_in_schema=False)
Ctr = Annotated[Container, Depends(container)]
Api = Annotated[Session, Depends(api_session)]
MAX_VALIDATE_ROWS = 2000
SINCE_OVERLAP_S = 10.0


def _login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def _safe_next(value: str | None) -> str:
    """Only local paths: never redirect a login to another site."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/batches"


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


async def _json(request: Request) -> Any:
    try:
        return orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError:
        raise InvalidRequest("body is not valid JSON") from None


@router.get("/web/static/{name}")
async def static(name: str) -> Response:
    if name not in STATIC_FILES:
        return Response(status_code=404)
    return FileResponse(
        STATIC / name, media_type=STATIC_FILES[name], headers={"Cache-Control": "public, max-age=60"}
    )


# ---- login ---------------------------------------------------------------------------------------


def _login_page(
    request: Request, error: str | None = None, status: int = 200, merchant_id: str = ""
) -> Response:
    token = secrets.token_urlsafe(24)
    resp = page(
        request,
        "login.html",
        None,
        token,
        status=status,
        error=error,
        merchant_id=merchant_id,
        next=_safe_next(request.query_params.get("next")),
    )
    resp.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, httponly=True, samesite="strict", path="/login")
    return resp


@router.get("/login")
async def login_form(request: Request) -> Response:
    if current(request) is not None:
        return RedirectResponse("/batches", status_code=303)
    return _login_page(request)


@router.post("/login")
async def login(request: Request, c: Ctr) -> Response:
    form = await request.form()
    merchant_id = str(form.get("merchant_id") or "").strip()[:64]
    password = str(form.get("password") or "")[:200]
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not cookie or not secrets.compare_digest(cookie, str(form.get("csrf") or "")):
        return _login_page(request, "The form expired; please try again.", 403, merchant_id)
    auth = web_auth(request)
    keys = [f"ip:{_client(request)}", f"merchant:{merchant_id}"]
    wait = max(auth.throttle.retry_after(k) for k in keys)
    if wait > 0:
        return _login_page(
            request,
            f"Too many failed attempts. Try again in {int(wait) + 1} s.",
            429,
            merchant_id,
        )
    if not merchant_id or not password or not await auth.check_password(c, merchant_id, password):
        for k in keys:
            auth.throttle.failed(k)
        return _login_page(request, "Unknown merchant id or wrong password.", 401, merchant_id)
    for k in keys:
        auth.throttle.succeeded(k)
    resp = RedirectResponse(_safe_next(str(form.get("next") or "")), status_code=303)
    auth.sessions.login(resp, merchant_id)
    resp.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return resp


@router.post("/logout")
async def logout(request: Request) -> Response:
    session = current(request)
    form = await request.form()
    if session is not None and not csrf_ok(session, str(form.get("csrf") or "")):
        return Response("CSRF token missing or wrong", status_code=403)
    resp = RedirectResponse("/login", status_code=303)
    web_auth(request).sessions.logout(resp)
    return resp


@router.get("/")
async def home(request: Request) -> Response:
    return RedirectResponse("/batches" if current(request) else "/login", status_code=303)


# ---- pages ---------------------------------------------------------------------------------------


@router.get("/batches")
async def batches_page(request: Request, c: Ctr) -> Response:
    s = current(request)
    if s is None:
        return _login_redirect(request)
    async with c.db.transaction() as tx:
        items = await batches.list_batches(tx, s.subject, limit=100)
    return page(request, "batches.html", s.subject, s.csrf, items=items)


@router.get("/batches/new")
async def new_batch_page(request: Request, c: Ctr) -> Response:
    s = current(request)
    if s is None:
        return _login_redirect(request)
    async with c.db.transaction() as tx:
        snap = await c.cache.get(tx)
        bal = await ledger.balance(tx, s.subject)
    products = [p.public() for p in sorted(snap.products.values(), key=lambda p: p.code) if p.enabled]
    return page(request, "batch_new.html", s.subject, s.csrf, products=products, balance=bal)


@router.get("/batches/{batch_id}")
async def batch_page(batch_id: str, request: Request, c: Ctr) -> Response:
    s = current(request)
    if s is None:
        return _login_redirect(request)
    async with c.db.transaction() as tx:
        try:
            row = await batches.get_batch(tx, batch_id, s.subject)
        except NotFound:
            return page(
                request,
                "error.html",
                s.subject,
                s.csrf,
                status=404,
                title="Batch not found",
                message="There is no such batch for your account.",
            )
        b = await batches.render_batch(tx, row, c.payments, with_rows=False)
        bal = await ledger.balance(tx, s.subject)
    return page(request, "batch.html", s.subject, s.csrf, batch=b, balance=bal)


@router.get("/batches/{batch_id}/results.csv")
async def batch_csv(batch_id: str, request: Request, c: Ctr) -> Response:
    s = current(request)
    if s is None:
        return _login_redirect(request)
    async with c.db.transaction() as tx:
        try:
            row = await batches.get_batch(tx, batch_id, s.subject)
        except NotFound:
            return Response("not found", status_code=404)
        text = await batches.results_csv(tx, row)
    return csv_response(text, row.id)


@router.get("/orders")
async def orders_page(request: Request, c: Ctr) -> Response:
    s = current(request)
    if s is None:
        return _login_redirect(request)
    status = request.query_params.get("status") or None
    if status not in {None, *(str(x) for x in OrderStatus)}:
        status = None
    batch_id = request.query_params.get("batch_id") or None
    if batch_id and not MERCHANT_ORDER_ID.match(batch_id):
        batch_id = None
    cursor = (request.query_params.get("cursor") or "")[:200] or None
    async with c.db.transaction() as tx:
        try:
            listing = await orders.list_orders(
                tx, s.subject, status=status, batch_id=batch_id, limit=50, cursor=cursor
            )
        except TopupError:
            listing = await orders.list_orders(tx, s.subject, status=status, batch_id=batch_id, limit=50)
    return page(
        request,
        "orders.html",
        s.subject,
        s.csrf,
        listing=listing,
        status_filter=status,
        batch_id=batch_id,
        statuses=[str(x) for x in OrderStatus],
    )


@router.get("/balance")
async def balance_page(request: Request, c: Ctr) -> Response:
    s = current(request)
    if s is None:
        return _login_redirect(request)
    accounts = [L.available_account(s.subject), L.held_account(s.subject)]
    async with c.db.transaction() as tx:
        bal = await ledger.balance(tx, s.subject)
        rows = await merchant_views.balance_postings(tx, accounts, limit=200)
    moves: dict[str, dict[str, Any]] = {}
    for r in rows:
        m = moves.setdefault(
            r.id,
            {
                "kind": r.kind,
                "reference": r.order_id or r.payment_id or r.reference,
                "at": r.created_at,
                "available": 0,
                "held": 0,
            },
        )
        m["available" if r.account_id == accounts[0] else "held"] += r.amount
    return page(request, "balance.html", s.subject, s.csrf, balance=bal, moves=list(moves.values())[:100])


# ---- JSON for the page scripts --------------------------------------------------------------------


@router.post("/web/api/validate")
async def validate(request: Request, session: Api, c: Ctr) -> JSONOut:
    """Runs the single-order checks (orders.resolve) on rows as they are typed; nothing is stored."""
    body = await _json(request)
    rows = body.get("rows") if isinstance(body, dict) else None
    if not isinstance(rows, list) or len(rows) > MAX_VALIDATE_ROWS:
        raise InvalidRequest(f"rows: a list of at most {MAX_VALIDATE_ROWS}")
    async with c.db.transaction() as tx:
        snap = await c.cache.get(tx)
    out = []
    for r in batches.validate_rows(snap, rows):
        v = r.pop("validated", None)
        if v is not None:
            r.update(price=v.product.price, carrier=v.brand, account=v.account)
        out.append(r)
    return JSONOut({"items": out})


@router.post("/web/api/batches")
async def web_create_batch(request: Request, session: Api, c: Ctr) -> JSONOut:
    body = await _json(request)
    async with c.db.transaction() as tx:
        snap = await c.cache.get(tx)
        out, created = await batches.create_batch(
            tx, snap, session.subject, body, allow_private_notify=c.settings.allow_private_notify_urls
        )
    out.pop("rows", None)
    return JSONOut(out, status_code=201 if created else 200)


@router.post("/web/api/batches/{batch_id}/payment")
async def web_pay(batch_id: str, request: Request, session: Api, c: Ctr) -> JSONOut:
    body = await _json(request)
    async with c.db.transaction() as tx:
        out, created = await batches.pay(tx, c.payments, session.subject, batch_id, body)
    out["order_ids"] = len(out["order_ids"])  # the page needs the count, not 10,000 ids
    return JSONOut(out, status_code=201 if created else 200)


@router.post("/web/api/batches/{batch_id}/cancel")
async def web_cancel(batch_id: str, session: Api, c: Ctr) -> JSONOut:
    async with c.db.transaction() as tx:
        out = await batches.cancel(tx, c.payments, session.subject, batch_id)
    out.pop("rows", None)
    return JSONOut(out)


@router.get("/web/api/batches/{batch_id}")
async def web_batch_state(batch_id: str, request: Request, session: Api, c: Ctr) -> JSONOut:
    """The batch and its rows' order statuses; `since` (the last `next_since`) sends changed rows only."""
    since: float | None = None
    raw = request.query_params.get("since")
    if raw:
        try:
            since = float(raw)
        except ValueError:
            raise InvalidRequest("since: a number") from None
    async with c.db.transaction() as tx:
        row = await batches.get_batch(tx, batch_id, session.subject)
        b = await batches.render_batch(tx, row, c.payments, with_rows=False)
        if b["payment"]:
            b["payment"]["order_ids"] = len(b["payment"]["order_ids"])
        states = await batches.order_states(tx, batch_id, since)
        # Overlap the next poll by a margin: a transaction that began earlier may commit later.
        next_since = tx.now - SINCE_OVERLAP_S
    rows = []
    for r in row.rows:
        st = states.get(r.get("order_id") or "")
        if since is not None and st is None:
            continue
        rows.append(
            {
                "row": r["row"],
                "product_code": r.get("product_code"),
                "account": r.get("account"),
                "order_id": r.get("order_id"),
                "status": st["status"] if st else r["status"],
                "price": st["price"] if st else None,
                "error": (r.get("error") or {}).get("message") if not st else st["failure_reason"],
                "error_code": (r.get("error") or {}).get("code") if not st else None,
            }
        )
    return JSONOut({"batch": b, "rows": rows, "next_since": next_since, "full": since is None})
