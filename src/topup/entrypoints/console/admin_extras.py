"""Small operator endpoints the console and the CLI share (`/admin/v1`, bearer token)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from topup.bootstrap import Container
from topup.entrypoints.api.deps import admin_auth, container
from topup.entrypoints.api.responses import JSONOut
from topup.entrypoints.api.roles import Actor, AsOperator, Role, requires
from topup.entrypoints.api.schemas import ErrorOut
from topup.entrypoints.console import stats
from topup.services import audited

router = APIRouter(
    prefix="/admin/v1",
    dependencies=[Depends(admin_auth)],
    responses={401: {"model": ErrorOut}, 404: {"model": ErrorOut}},
    tags=["operator"],
)
Ctr = Annotated[Container, Depends(container)]


@router.get("/overview", dependencies=[requires(Role.VIEWER)])
async def overview(c: Ctr, window_s: Annotated[float, Query(gt=0, le=7 * 86400)] = stats.WINDOW_S) -> JSONOut:
    """Orders of the window by status, success rate, failovers, open exceptions and work lag."""
    step = max(60.0, window_s / 60)
    async with c.db.transaction() as tx:
        out: dict[str, Any] = await stats.overview(tx, c.clock.now(), window_s, step)
    out.pop("_series")
    return JSONOut(out)


async def _set_enabled(c: Container, actor: Actor, code: str, enabled: bool) -> JSONOut:
    async with c.db.transaction() as tx:
        await audited.set_channel_enabled(tx, actor, code, enabled)
        snap = await c.cache.fresh(tx)
    c.cache.invalidate()
    return JSONOut(snap.channels[code].public())


@router.post("/channels/{code}/enable")
async def enable_channel(code: str, c: Ctr, actor: AsOperator) -> JSONOut:
    """Route to this channel again (members of groups use it in their usual order)."""
    return await _set_enabled(c, actor, code, True)


@router.post("/channels/{code}/disable")
async def disable_channel(code: str, c: Ctr, actor: AsOperator) -> JSONOut:
    """Stop routing new attempts to this channel; attempts in flight finish normally."""
    return await _set_enabled(c, actor, code, False)
