"""The console's forms: sign in/out, edit products, channels and groups, deposits, resolving exceptions.

Every POST needs a signed-in operator and the session's CSRF token. Edits go through the admin API's own
handlers, so they are validated by the same schemas and rules and change nothing when refused.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from topup.adapters.db.queries import operator_views as q
from topup.bootstrap import Container
from topup.domain.errors import InvalidRequest, TopupError
from topup.entrypoints.api import admin_routes
from topup.entrypoints.api.deps import container
from topup.entrypoints.console import forms
from topup.entrypoints.console.auth import (
    LOGIN_COOKIE,
    ConsoleRoute,
    CsrfFailed,
    check_credentials,
    console_auth,
    display_name,
    login_token,
    operator,
    operator_post,
    safe_next,
    set_login_cookie,
)
from topup.entrypoints.console.render import page
from topup.entrypoints.console.roles import AdminPost, OperatorPost
from topup.entrypoints.websession import Session
from topup.services import audited
from topup.services.ports.catalog import ProductRow

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
Op = Annotated[Session, Depends(operator)]
Post = Annotated[Session, Depends(operator_post)]
Ctr = Annotated[Container, Depends(container)]

BUSINESS_TYPES = ("mobile_airtime", "mobile_data", "fuel_card", "membership")
STRATEGIES = ("priority", "cost", "success_rate", "weighted")
BLANK_MEMBER_ROWS = 3


def _done(path: str, done: str, what: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?{urlencode({'done': done, 'what': what})}", status_code=303)


def _client_key(request: Request, username: str) -> str:
    return f"{request.client.host if request.client else '?'}:{username[:64]}"


# ---- sign in / out ----------------------------------------------------------------------------


@router.get("/login")
async def login_form(request: Request) -> Response:
    auth = console_auth(request)
    if auth.sessions.read(request) is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    token = login_token(request)
    response = page(
        request, "login.html", None, next=safe_next(request.query_params.get("next")), login_csrf=token
    )
    set_login_cookie(response, token)
    return response


@router.post("/login")
async def login(request: Request, c: Ctr) -> Response:
    form = await request.form()
    username = str(form.get("username") or "").strip()
    password = str(form.get("password") or "")
    target = safe_next(str(form.get("next") or ""))
    cookie = request.cookies.get(LOGIN_COOKIE)
    submitted = str(form.get("csrf") or "")
    if not cookie or not submitted or not hmac.compare_digest(cookie, submitted):
        raise CsrfFailed()
    auth = console_auth(request)
    key = _client_key(request, username)
    wait = auth.throttle.retry_after(key)
    if wait > 0:
        response = page(
            request,
            "login.html",
            None,
            status=429,
            next=target,
            login_csrf=cookie,
            username=username,
            error=f"Too many failed attempts; try again in {wait:.0f} s.",
        )
        response.headers["Retry-After"] = str(max(1, round(wait)))
        return response
    subject = await check_credentials(c, username, password) if password else None
    if subject is None:
        auth.throttle.failed(key)
        await asyncio.sleep(0.05)  # a little friction for guessers, none for a typo
        return page(
            request,
            "login.html",
            None,
            status=401,
            next=target,
            login_csrf=cookie,
            username=username,
            error="Wrong name, password or token.",
        )
    auth.throttle.succeeded(key)
    done = RedirectResponse(target, status_code=303)
    auth.sessions.login(done, subject)
    done.delete_cookie(LOGIN_COOKIE, path="/console")
    return done


@router.post("/logout")
async def logout(request: Request, _s: Post) -> Response:
    response = RedirectResponse("/console/login", status_code=303)
    console_auth(request).sessions.logout(response)
    return response


# ---- exceptions, deposits, channel switches ---------------------------------------------------


@router.post("/exceptions/{exception_id}/resolve")
async def resolve(request: Request, exception_id: str, user: OperatorPost, c: Ctr) -> Response:
    form = await request.form()
    note = str(form.get("note") or "").strip()
    by = display_name(user.session)
    await admin_routes.resolve_exception(exception_id, c, user.actor, {"note": note, "by": by})
    return _done("/console/exceptions", "resolved", exception_id)


@router.post("/merchants/{merchant_id}/deposit")
async def deposit(request: Request, merchant_id: str, user: AdminPost, c: Ctr) -> Response:
    try:
        body = forms.deposit(await request.form())
    except forms.FormError as e:
        raise InvalidRequest(" ".join(e.messages)) from None
    answer = Response()  # the API route sets 201 for a new deposit, 200 for a replay
    await admin_routes.credit(merchant_id, body, c, user.actor, answer)
    return _done("/console/merchants", "deposited" if answer.status_code == 201 else "replayed", merchant_id)


@router.post("/channels/{code}/{action}")
async def switch_channel(code: str, action: str, user: OperatorPost, c: Ctr) -> Response:
    if action not in ("enable", "disable"):
        return Response(status_code=404)
    async with c.db.transaction() as tx:
        await audited.set_channel_enabled(tx, user.actor, code, action == "enable")
    c.cache.invalidate()
    return _done("/console/catalog", f"{action}d", code)


# ---- edit forms ---------------------------------------------------------------------------------


async def _product(c: Container, code: str) -> ProductRow | None:
    async with c.db.transaction() as tx:
        return await tx.catalog.product(code)


async def _group_exists(c: Container, code: str) -> bool:
    async with c.db.transaction() as tx:
        return await q.group_exists(tx, code)


def _form_values(form: Any) -> dict[str, str]:
    return {k: str(v) for k, v in form.items() if k not in ("csrf", "secret")}


@router.get("/edit/product")
async def product_form(request: Request, session: Op, c: Ctr) -> Response:
    code = request.query_params.get("code", "")
    row = await _product(c, code) if code else None
    values: dict[str, Any] = {"code": code, "enabled": "on"}
    if row is not None:
        values = {**row._asdict(), "brand": row.brand or "", "enabled": "on" if row.enabled else ""}
    return page(request, "product_form.html", session, v=values, new=row is None, types=BUSINESS_TYPES)


@router.post("/edit/product")
async def save_product(request: Request, user: AdminPost, c: Ctr) -> Response:
    session = user.session
    form = await request.form()
    try:
        code = forms.code_of(form)
        body = forms.product(form)
        await admin_routes.put_product(code, body, c, user.actor, Response())
    except (forms.FormError, TopupError) as e:
        errors = e.messages if isinstance(e, forms.FormError) else [e.message]
        existing = await _product(c, str(form.get("code") or ""))
        return page(
            request,
            "product_form.html",
            session,
            status=400,
            v=_form_values(form),
            new=existing is None,
            types=BUSINESS_TYPES,
            errors=errors,
        )
    return _done("/console/catalog", "saved", f"Product {code}")


async def _group_form(
    request: Request,
    session: Session,
    c: Container,
    values: dict[str, Any],
    members: list[dict[str, str]],
    new: bool,
    status: int = 200,
    errors: list[str] | None = None,
) -> Response:
    async with c.db.transaction() as tx:
        channels = sorted((await c.cache.fresh(tx)).channels)
    blank = {"channel": "", "priority": "", "weight": "", "costs": "", "carriers": "", "regions": ""}
    rows = members + [blank] * BLANK_MEMBER_ROWS
    return page(
        request,
        "group_form.html",
        session,
        status=status,
        v=values,
        members=rows,
        new=new,
        channels=channels,
        types=BUSINESS_TYPES,
        strategies=STRATEGIES,
        errors=errors or [],
    )


@router.get("/edit/group")
async def group_form(request: Request, session: Op, c: Ctr) -> Response:
    code = request.query_params.get("code", "")
    values: dict[str, Any] = {"code": code, "strategy": "priority", "sticky": "on", "recovery_s": "300"}
    members: list[dict[str, str]] = []
    view = None
    if code:
        async with c.db.transaction() as tx:
            try:
                view = await admin_routes.group_view(tx, c, code)
            except TopupError:
                view = None
    if view is not None:
        values = {
            "code": code,
            "business_type": view["business_type"],
            "brand": view["brand"] or "",
            "strategy": view["strategy"],
            "sticky": "on" if view["sticky"] else "",
            "recovery_s": f"{view['recovery_s']:g}",
        }
        members = [
            {
                "channel": m["channel"],
                "priority": str(m["priority"]),
                "weight": str(m["weight"]),
                "costs": forms.costs_text(m["costs"]),
                "carriers": ", ".join(m.get("carriers") or ()),
                "regions": ", ".join(m.get("regions") or ()),
            }
            for m in sorted(view["members"], key=lambda m: (m["priority"], m["channel"]))
        ]
    return await _group_form(request, session, c, values, members, new=view is None)


@router.post("/edit/group")
async def save_group(request: Request, user: AdminPost, c: Ctr) -> Response:
    session = user.session
    form = await request.form()
    try:
        code = forms.code_of(form)
        body = forms.group(form)
        await admin_routes.put_group(code, body, c, user.actor, Response())
    except (forms.FormError, TopupError) as e:
        errors = e.messages if isinstance(e, forms.FormError) else [e.message]
        members = [
            {f: str(form.get(f"member-{i}-{f}") or "") for f in forms.MEMBER_FIELDS}
            for i in range(forms.MAX_MEMBER_ROWS)
            if form.get(f"member-{i}-channel")
        ]
        exists = await _group_exists(c, str(form.get("code") or ""))
        return await _group_form(
            request, session, c, _form_values(form), members, new=not exists, status=400, errors=errors
        )
    return _done(f"/console/groups/{code}", "saved", f"Group {code}")
