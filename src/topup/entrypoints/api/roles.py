"""Who may call an operator route: `requires(Role.X)` on every `/admin/v1` route.

    from topup.entrypoints.api.roles import Role, requires

    router = APIRouter(prefix="/admin/v1", dependencies=[requires(Role.VIEWER)])   # reads

    @router.post("/channels/{code}/statements", dependencies=[requires(Role.OPERATOR)])
    async def post_statement(...): ...

    @router.put("/things/{code}")
    async def put_thing(code: str, actor: Annotated[Actor, requires(Role.ADMIN)]): ...  # for the audit log

A bearer token is the admin token (full rights) or an operator API token (its role, capped at its
operator's). Missing or unknown: 401 `unauthorized`; a role below the route's: 403 `forbidden`.
A route under a router guarded only by `admin_auth` that declares no role needs `admin` (the safe default).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.params import Depends as DependsParam

from topup.domain.errors import Forbidden, Unauthorized
from topup.domain.roles import Actor, Role, Via

__all__ = ["Actor", "AsAdmin", "AsOperator", "AsViewer", "Role", "authenticate", "declared_role", "requires"]

_STATE = "topup_actor"
_UNSET = object()


def client_address(request: Request) -> str | None:
    return request.client.host if request.client is not None else None


async def authenticate(request: Request) -> Actor:
    """The caller of an operator route (401 when there is none); computed once per request."""
    cached = getattr(request.state, _STATE, None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    from topup.entrypoints.api.deps import app_container, bearer_matches
    from topup.services import operators

    c = app_container(request)
    address = client_address(request)
    actor: Actor | None
    if bearer_matches(request, c.settings.admin_token):
        actor = Actor("admin", Role.ADMIN, Via.API, address, "admin-token")
    else:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        actor = None
        if scheme.lower() == "bearer" and token.strip():
            actor = await operators.authenticate_token(c.db, token.strip(), address)
    if actor is None:
        raise Unauthorized("operator endpoints need Authorization: Bearer <admin or operator API token>")
    setattr(request.state, _STATE, actor)
    return actor


def check(actor: Actor, needed: Role) -> None:
    if not actor.can(needed):
        raise Forbidden(f"this needs the {needed} role; {actor.name} has {actor.role}")


def requires(role: Role) -> Any:
    """The dependency for a route (or router) that needs at least `role`; it yields the `Actor`."""

    async def needs_role(request: Request) -> Actor:
        actor = await authenticate(request)
        check(actor, role)
        return actor

    needs_role.role = role  # type: ignore[attr-defined]
    needs_role.__name__ = f"requires_{role}"
    return Depends(needs_role)


def role_of(call: Callable[..., Coroutine[Any, Any, Any]] | Any) -> Role | None:
    """The role a dependency callable declares (None for any other dependency)."""
    role = getattr(call, "role", None)
    return role if isinstance(role, Role) else None


def declared_role(route: Any) -> Role | None:
    """The highest role a route's dependencies (its router's included) declare, or None."""
    cached = getattr(route, "_topup_role", _UNSET)
    if cached is not _UNSET:
        return cached if isinstance(cached, Role) else None
    found: list[Role] = []

    def walk(dependant: Any) -> None:
        for dep in getattr(dependant, "dependencies", []):
            role = role_of(dep.call)
            if role is not None:
                found.append(role)
            walk(dep)

    walk(getattr(route, "dependant", None))
    result = max(found, key=lambda r: r.rank) if found else None
    if route is not None:
        route._topup_role = result
    return result


async def admin_auth(request: Request) -> str:
    """Router-level guard of the operator API: authenticates, then enforces the route's declared role
    (`admin` when it declares none, so an unannotated new route is never open to viewers)."""
    actor = await authenticate(request)
    check(actor, declared_role(request.scope.get("route")) or Role.ADMIN)
    return actor.name


def is_role_dependency(dep: Any) -> bool:
    return isinstance(dep, DependsParam) and role_of(dep.dependency) is not None


# Handler parameters that declare the role and receive the caller (for the audit log).
AsViewer = Annotated[Actor, requires(Role.VIEWER)]
AsOperator = Annotated[Actor, requires(Role.OPERATOR)]
AsAdmin = Annotated[Actor, requires(Role.ADMIN)]
