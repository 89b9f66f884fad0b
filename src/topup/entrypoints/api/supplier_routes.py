"""Operator API for supplier operations (SPEC section 7): a group's coverage grid."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from topup.bootstrap import Container
from topup.domain import routing as R
from topup.entrypoints.api.deps import admin_auth, container
from topup.entrypoints.api.responses import JSONOut
from topup.entrypoints.api.roles import Role, requires
from topup.entrypoints.api.schemas import ErrorOut
from topup.services import coverage

router = APIRouter(
    prefix="/admin/v1",
    dependencies=[Depends(admin_auth)],
    responses={401: {"model": ErrorOut}, 404: {"model": ErrorOut}},
)

Ctr = Annotated[Container, Depends(container)]


@router.get("/groups/{code}/coverage", dependencies=[requires(Role.VIEWER)])
async def group_coverage(code: str, c: Ctr) -> JSONOut:
    """The group's carrier x province grid: who an order of each cell would try, in order; `gap`
    cells are answered `no_route` at intake."""
    async with c.db.transaction() as tx:
        snap = await c.cache.fresh(tx)
        group = snap.groups.get(code)
        rates = None
        if group is not None and group.strategy == R.Strategy.SUCCESS_RATE:
            rates = await c.fulfilment.success_rates(tx, [m.channel for m in group.members])
    return JSONOut(coverage.grid_view(snap, code, rates))
