"""Operator accounts (console sign-in, a role each) and their API tokens; every change is audited."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

from topup.domain.errors import InvalidRequest, NotFound
from topup.domain.roles import Actor, Role, Via
from topup.services import audit
from topup.services.merchants import hash_password
from topup.services.ports.operators import OperatorRow, TokenRow
from topup.services.uow import Transactions, UnitOfWork

NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MIN_PASSWORD = 10
TOKEN_PREFIX = "tgo_"


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise InvalidRequest("operator names are 1-64 of A-Z a-z 0-9 _ . -")
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidRequest(f"passwords need at least {MIN_PASSWORD} characters")
    return password


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise InvalidRequest(f"role: {value!r} is not one of {', '.join(r.value for r in Role)}") from None


def _public(row: OperatorRow) -> dict[str, Any]:
    return {"name": row.id, "role": row.role, "created_at": row.created_at}


async def get(uow: UnitOfWork, name: str) -> dict[str, Any] | None:
    row = await uow.operators.get(name)
    return None if row is None else _public(row)


async def role_of(uow: UnitOfWork, name: str) -> Role | None:
    role = await uow.operators.role_of(name)
    return None if role is None else _role(role)


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        return Role.VIEWER  # an unknown stored value grants the least


async def list_all(uow: UnitOfWork) -> list[dict[str, Any]]:
    rows = await uow.operators.list_all()
    tokens = await uow.operators.live_tokens()
    counts: dict[str, int] = {}
    for tok in tokens:
        counts[tok.operator_id] = counts.get(tok.operator_id, 0) + 1
    return [{**_public(r), "tokens": counts.get(r.id, 0)} for r in rows]


async def put(
    uow: UnitOfWork, actor: Actor, name: str, *, password: str | None = None, role: Role | None = None
) -> tuple[dict[str, Any], bool]:
    """Create an account (password required; role defaults to viewer) or change its password and/or role."""
    check_name(name)
    if password is not None:
        check_password(password)
    before = await get(uow, name)
    if before is None:
        if password is None:
            raise InvalidRequest("password: required for a new operator")
        await uow.operators.add(name, hash_password(password), str(role or Role.VIEWER))
    else:
        values: dict[str, Any] = {}
        if password is not None:
            values["password_hash"] = hash_password(password)
        if role is not None:
            values["role"] = str(role)
        if values:
            await uow.operators.change(name, values)
    after = await get(uow, name)
    assert after is not None
    shown_before = None if before is None else {**before, "password": "****"}
    shown_after = {**after, "password": "****" if password is None else "**** (changed)"}
    await audit.record(uow, actor, "operator.put", f"operator:{name}", shown_before, shown_after)
    return after, before is None


async def remove(uow: UnitOfWork, actor: Actor, name: str) -> None:
    """Remove the account and revoke its tokens; its sessions end at their next request."""
    before = await get(uow, name)
    if before is None:
        raise NotFound(f"no operator {name}")
    await uow.operators.remove(name)
    await audit.record(uow, actor, "operator.remove", f"operator:{name}", before, None)


# ---- API tokens ----------------------------------------------------------------------------------


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _token_public(row: TokenRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "operator": row.operator_id,
        "name": row.name,
        "role": row.role,
        "created_at": row.created_at,
        "revoked_at": row.revoked_at,
    }


async def issue_token(
    uow: UnitOfWork, actor: Actor, operator: str, name: str, role: Role
) -> tuple[str, dict[str, Any]]:
    """A new API token for `operator` with `role` (at most the account's). The token is returned once."""
    account_role = await role_of(uow, operator)
    if account_role is None:
        raise NotFound(f"no operator {operator}")
    if not account_role.allows(role):
        raise InvalidRequest(f"role: {operator} is {account_role}; a token cannot have more ({role})")
    if not 1 <= len(name) <= 100:
        raise InvalidRequest("name: 1-100 characters")
    token_id = secrets.token_hex(8)
    token = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
    row = await uow.operators.add_token(token_id, operator, name, str(role), _hash(token))
    shown = _token_public(row)
    await audit.record(uow, actor, "token.issue", f"token:{token_id}", None, shown)
    return token, shown


async def tokens(uow: UnitOfWork, operator: str) -> list[dict[str, Any]]:
    return [_token_public(r) for r in await uow.operators.tokens(operator)]


async def revoke_token(uow: UnitOfWork, actor: Actor, operator: str, token_id: str) -> dict[str, Any]:
    row = await uow.operators.token(token_id, operator)
    if row is None:
        raise NotFound(f"no token {token_id} for operator {operator}")
    before = _token_public(row)
    if row.revoked_at is None:
        await uow.operators.revoke_token(token_id)
        after = {**before, "revoked_at": uow.now}
        await audit.record(uow, actor, "token.revoke", f"token:{token_id}", before, after)
        return after
    return before


async def authenticate_token(db: Transactions, token: str, address: str | None) -> Actor | None:
    """The operator behind an API token (role: the token's, capped at the account's), or None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    token_id, sep, _ = token[len(TOKEN_PREFIX) :].partition("_")
    if not sep or not token_id or len(token_id) > 32:
        return None
    async with db.transaction() as uow:
        row = await uow.operators.token_login(token_id)
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.token_hash.encode(), _hash(token).encode()):
        return None
    token_role, account_role = _role(row.role), _role(row.account_role)
    role = token_role if account_role.allows(token_role) else account_role
    return Actor(row.id, role, Via.API, address, f"token:{token_id}")
