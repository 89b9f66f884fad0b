"""The console's audit log (filters: since, actor, object; read only) and operator accounts (admin)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from topup.bootstrap import Container
from topup.domain.errors import InvalidRequest, TopupError
from topup.domain.roles import Role
from topup.entrypoints.api.deps import container
from topup.entrypoints.api.security_routes import parse_since
from topup.entrypoints.console.auth import ConsoleRoute, operator
from topup.entrypoints.console.render import page
from topup.entrypoints.console.roles import AdminPost
from topup.entrypoints.websession import Session
from topup.services import audit, operators

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
Op = Annotated[Session, Depends(operator)]
Ctr = Annotated[Container, Depends(container)]
PAGE = 100


@router.get("/audit")
async def audit_page(request: Request, session: Op, c: Ctr) -> Response:
    q = request.query_params
    filters = {k: (q.get(k) or "").strip()[:200] for k in ("since", "actor", "object")}
    cursor = q.get("cursor") or ""
    error = None
    items: list[dict[str, Any]] = []
    try:
        since = parse_since(filters["since"] or None)
        async with c.db.transaction() as tx:
            items = await audit.entries(
                tx,
                since=since,
                actor=filters["actor"] or None,
                obj=filters["object"] or None,
                before_id=int(cursor) if cursor.isdigit() else None,
                limit=PAGE,
            )
    except InvalidRequest as e:
        error = e.message
    more = None
    if len(items) == PAGE:
        more = "/console/audit?" + urlencode(
            {**{k: v for k, v in filters.items() if v}, "cursor": items[-1]["id"]}
        )
    return page(request, "audit.html", session, items=items, f=filters, error=error, more=more)


@router.get("/operators")
async def operators_page(request: Request, session: Op, c: Ctr) -> Response:
    async with c.db.transaction() as tx:
        accounts = await operators.list_all(tx)
        tokens = {a["name"]: await operators.tokens(tx, a["name"]) for a in accounts}
    return page(
        request,
        "operators.html",
        session,
        accounts=accounts,
        tokens=tokens,
        roles=[r.value for r in Role],
        error=request.query_params.get("error"),
    )


def _back(error: str | None = None, done: str | None = None, what: str = "") -> RedirectResponse:
    query = urlencode({"error": error} if error else {"done": done or "saved", "what": what})
    return RedirectResponse(f"/console/operators?{query}", status_code=303)


def _role(value: Any) -> Role | None:
    return operators.parse_role(str(value)) if value else None


@router.post("/operators")
async def save_operator(request: Request, user: AdminPost, c: Ctr) -> Response:
    """Create an account, or change an existing one's password and/or role."""
    form = await request.form()
    name = str(form.get("name") or "").strip()
    password = str(form.get("password") or "") or None
    try:
        role = _role(form.get("role"))
        async with c.db.transaction() as tx:
            await operators.put(tx, user.actor, name, password=password, role=role)
    except TopupError as e:
        return _back(error=e.message)
    return _back(what=f"Operator {name}")


@router.post("/operators/{name}/remove")
async def remove_operator(name: str, user: AdminPost, c: Ctr) -> Response:
    try:
        async with c.db.transaction() as tx:
            await operators.remove(tx, user.actor, name)
    except TopupError as e:
        return _back(error=e.message)
    return _back(done="removed", what=f"Operator {name}")


@router.post("/operators/{name}/tokens")
async def issue_token(request: Request, name: str, user: AdminPost, c: Ctr) -> Response:
    """Issue an API token and show it once (it is not stored, only its hash)."""
    form = await request.form()
    label = str(form.get("label") or "console").strip()[:100] or "console"
    try:
        async with c.db.transaction() as tx:
            role = _role(form.get("role")) or await operators.role_of(tx, name) or Role.VIEWER
            token, shown = await operators.issue_token(tx, user.actor, name, label, role)
    except TopupError as e:
        return _back(error=e.message)
    response = page(request, "token_issued.html", user.session, token=token, t=shown)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/operators/{name}/tokens/{token_id}/revoke")
async def revoke_token(name: str, token_id: str, user: AdminPost, c: Ctr) -> Response:
    try:
        async with c.db.transaction() as tx:
            await operators.revoke_token(tx, user.actor, name, token_id)
    except TopupError as e:
        return _back(error=e.message)
    return _back(done="revoked", what=f"Token {token_id}")
