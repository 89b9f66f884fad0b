"""Operator API for one channel: read it (credentials masked), ask its supplier for the balance."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from topup.bootstrap import Container
from topup.clock import rfc3339
from topup.domain.errors import NotFound
from topup.entrypoints.api.deps import admin_auth, container
from topup.entrypoints.api.responses import JSONOut
from topup.entrypoints.api.roles import Role, requires
from topup.entrypoints.api.schemas import ErrorOut
from topup.services import balances, rate_limits

router = APIRouter(
    prefix="/admin/v1",
    dependencies=[Depends(admin_auth)],
    responses={401: {"model": ErrorOut}, 404: {"model": ErrorOut}},
)

Ctr = Annotated[Container, Depends(container)]


def _balance_view(b: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if b is None else {**b, "checked_at": rfc3339(b["checked_at"])}


@router.get("/channels/{code}", dependencies=[requires(Role.VIEWER)])
async def get_channel(code: str, c: Ctr) -> JSONOut:
    async with c.db.transaction() as tx:
        channel = (await c.cache.fresh(tx)).channels.get(code)
        if channel is None:
            raise NotFound(f"channel {code} does not exist")
        last = await balances.last_balance(tx, code)
        waiting = (await rate_limits.waiting(tx)).get(code, 0)
    adapter = c.suppliers.get(channel.protocol)
    return JSONOut(
        {
            **channel.public(),
            "callback_url": channel.access(c.settings.callback_base()).callback_url
            if adapter is not None and adapter.has_callbacks
            else None,
            "balance": _balance_view(last),
            # SPEC 7: `paused` (from `public()`) says why; since when, and orders waiting for a turn.
            "paused_at": rfc3339(channel.paused_at),
            "rate_limit_waiting": waiting,
        }
    )


@router.get(
    "/channels/{code}/balance", responses={502: {"model": ErrorOut}}, dependencies=[requires(Role.OPERATOR)]
)
async def check_balance(code: str, c: Ctr) -> JSONOut:
    """Ask the supplier now ("check connection"); the answer is kept in the channel's history."""
    out = await balances.check_balance(c.db, c.cache, c.suppliers, code, c.settings.callback_base())
    return JSONOut(_balance_view(out))


@router.get("/channels/{code}/balances", dependencies=[requires(Role.VIEWER)])
async def balance_history(code: str, c: Ctr, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> JSONOut:
    async with c.db.transaction() as tx:
        if code not in (await c.cache.fresh(tx)).channels:
            raise NotFound(f"channel {code} does not exist")
        items = await balances.history(tx, code, limit)
    return JSONOut(
        {"items": [{**i, "checked_at": rfc3339(i["checked_at"])} for i in items], "next_cursor": None}
    )


@router.get("/protocols", dependencies=[requires(Role.VIEWER)])
async def protocols(c: Ctr) -> JSONOut:
    """The supplier protocols this build speaks and the fields each one takes."""
    return JSONOut(
        {
            "items": [
                {
                    "name": name,
                    "credential_fields": list(a.credential_fields),
                    "secret_fields": list(a.secret_fields),
                    "product_fields": list(a.product_fields),
                    "option_fields": list(a.option_fields),
                    "has_callbacks": a.has_callbacks,
                    "has_balance": a.has_balance,
                }
                for name, a in sorted(c.suppliers.items())
            ],
            "next_cursor": None,
        }
    )
