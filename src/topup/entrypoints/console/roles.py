"""Who may do what in the console: `console_requires(Role.X, post=True)` on every console action.

    @router.post("/channels/{code}/statements")
    async def upload(request: Request, user: OperatorPost):   # console_requires(Role.OPERATOR, post=True)
        ... user.session (for the page), user.actor (for the audit log)

Pages (GET) need only a signed-in operator of any role (`Op`); templates hide what the role cannot do
with `can("operator")` / `can("admin")`, and the server refuses it anyway (a 403 page).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from topup.domain.errors import Forbidden
from topup.domain.roles import Actor, Role
from topup.entrypoints.console.auth import operator, operator_post
from topup.entrypoints.websession import Session

__all__ = ["AdminPost", "ConsoleUser", "OperatorPost", "Role", "actor_of", "console_requires"]


@dataclass(frozen=True)
class ConsoleUser:
    session: Session
    actor: Actor


def actor_of(request: Request) -> Actor | None:
    """The signed-in operator of this request (set by the `operator` dependency), if any."""
    actor = getattr(request.state, "topup_actor", None)
    return actor if isinstance(actor, Actor) else None


def console_requires(role: Role, *, post: bool = False) -> Any:
    """A console route that needs at least `role`; `post=True` also checks the form's CSRF token."""

    async def needs_role(request: Request) -> ConsoleUser:
        session = await (operator_post if post else operator)(request)
        actor = actor_of(request)
        assert actor is not None
        if not actor.can(role):
            raise Forbidden(f"This needs the {role} role; you are signed in as {actor.role}.")
        return ConsoleUser(session, actor)

    needs_role.role = role  # type: ignore[attr-defined]
    needs_role.__name__ = f"console_requires_{role}"
    return Depends(needs_role)


# Console POST handlers: a signed-in operator with at least this role, CSRF checked.
OperatorPost = Annotated[ConsoleUser, console_requires(Role.OPERATOR, post=True)]
AdminPost = Annotated[ConsoleUser, console_requires(Role.ADMIN, post=True)]
