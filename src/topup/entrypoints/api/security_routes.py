"""Operator API for the audit log (read only) and for operator accounts and their API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from topup.bootstrap import Container
from topup.clock import rfc3339
from topup.domain.errors import InvalidRequest
from topup.entrypoints.api.deps import admin_auth, container
from topup.entrypoints.api.responses import JSONOut
from topup.entrypoints.api.roles import AsAdmin, Role, requires
from topup.entrypoints.api.schemas import ErrorOut
from topup.services import audit, operators

router = APIRouter(
    prefix="/admin/v1",
    dependencies=[Depends(admin_auth)],
    responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut}},
    tags=["security"],
)
Ctr = Annotated[Container, Depends(container)]


def parse_since(value: str | None) -> float | None:
    """RFC 3339 (`2025-01-31T08:00:00Z`) or unix seconds."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise InvalidRequest("since: an RFC 3339 time or unix seconds") from None


def entry_view(e: dict[str, Any]) -> dict[str, Any]:
    return {**e, "at": rfc3339(e["at"])}


@router.get("/audit", dependencies=[requires(Role.VIEWER)])
async def audit_log(
    c: Ctr,
    since: Annotated[str | None, Query(max_length=40)] = None,
    actor: Annotated[str | None, Query(max_length=100)] = None,
    object: Annotated[str | None, Query(max_length=200)] = None,  # noqa: A002 - the documented parameter
    limit: Annotated[int, Query(ge=1, le=audit.MAX_LIMIT)] = 100,
    cursor: Annotated[str | None, Query(max_length=20, pattern=r"^\d+$")] = None,
) -> JSONOut:
    """Audit entries, newest first: `since` (RFC 3339 or unix seconds), `actor` (exact), `object`
    (`channel:supA`, or a kind such as `channel`). Read only: no route changes or deletes an entry."""
    async with c.db.transaction() as tx:
        items = await audit.entries(
            tx,
            since=parse_since(since),
            actor=actor,
            obj=object,
            before_id=int(cursor) if cursor else None,
            limit=limit,
        )
    next_cursor = str(items[-1]["id"]) if len(items) == limit else None
    return JSONOut({"items": [entry_view(e) for e in items], "next_cursor": next_cursor})


class OperatorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str | None = Field(default=None, min_length=operators.MIN_PASSWORD, max_length=200)
    role: Role | None = None


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    role: Role | None = None


def _operator_view(o: dict[str, Any]) -> dict[str, Any]:
    return {**o, "created_at": rfc3339(o["created_at"])}


def _token_view(tok: dict[str, Any]) -> dict[str, Any]:
    return {**tok, "created_at": rfc3339(tok["created_at"]), "revoked_at": rfc3339(tok["revoked_at"])}


@router.get("/operators", dependencies=[requires(Role.VIEWER)])
async def list_operators(c: Ctr) -> JSONOut:
    async with c.db.transaction() as tx:
        items = await operators.list_all(tx)
    return JSONOut({"items": [_operator_view(o) for o in items], "next_cursor": None})


@router.put("/operators/{name}", responses={201: {}})
async def put_operator(name: str, body: OperatorIn, c: Ctr, actor: AsAdmin) -> JSONOut:
    """Create an account (`password` required, `role` viewer unless given) or change its password/role."""
    async with c.db.transaction() as tx:
        out, created = await operators.put(tx, actor, name, password=body.password, role=body.role)
    return JSONOut(_operator_view(out), status_code=201 if created else 200)


@router.delete("/operators/{name}")
async def delete_operator(name: str, c: Ctr, actor: AsAdmin) -> JSONOut:
    """Remove the account and revoke its tokens; its console sessions end at their next request."""
    async with c.db.transaction() as tx:
        await operators.remove(tx, actor, name)
    return JSONOut({"name": name, "removed": True})


@router.get("/operators/{name}/tokens", dependencies=[requires(Role.VIEWER)])
async def list_tokens(name: str, c: Ctr) -> JSONOut:
    async with c.db.transaction() as tx:
        items = await operators.tokens(tx, name)
    return JSONOut({"items": [_token_view(tok) for tok in items], "next_cursor": None})


@router.post("/operators/{name}/tokens", status_code=201)
async def issue_token(name: str, body: TokenIn, c: Ctr, actor: AsAdmin) -> JSONOut:
    """A new API token with `role` (the account's unless given, never more). `token` is shown only here."""
    async with c.db.transaction() as tx:
        role = body.role or await operators.role_of(tx, name) or Role.VIEWER
        token, shown = await operators.issue_token(tx, actor, name, body.name, role)
    return JSONOut({**_token_view(shown), "token": token}, status_code=201)


@router.delete("/operators/{name}/tokens/{token_id}")
async def revoke_token(name: str, token_id: str, c: Ctr, actor: AsAdmin) -> JSONOut:
    async with c.db.transaction() as tx:
        out = await operators.revoke_token(tx, actor, name, token_id)
    return JSONOut(_token_view(out))
