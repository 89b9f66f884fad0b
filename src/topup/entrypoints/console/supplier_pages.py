"""The console's channel page (SPEC section 7): settings, pause, balance chart and checks, the orders
waiting for a rate-limited channel, and the groups it serves with their coverage."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from topup.bootstrap import Container
from topup.domain.errors import NotFound
from topup.domain.regions import region_name
from topup.domain.suppliers import fen_to_yuan
from topup.entrypoints.api.deps import container
from topup.entrypoints.console.auth import ConsoleRoute, operator
from topup.entrypoints.console.balance_chart import balance_line
from topup.entrypoints.console.render import page
from topup.entrypoints.websession import Session
from topup.services import balances, rate_limits
from topup.services.coverage import coverage_of

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
Op = Annotated[Session, Depends(operator)]
Ctr = Annotated[Container, Depends(container)]
CHART_CHECKS = 200


def shown(amount: int | None, currency: str | None) -> str:
    """Minor units as a plain decimal with the currency: `12345, CNY` -> `123.45 CNY`."""
    if amount is None:
        return "-"
    return f"{fen_to_yuan(amount)} {currency or ''}".strip()


@router.get("/channels/{code}")
async def channel_page(request: Request, code: str, session: Op, c: Ctr) -> Response:
    async with c.db.transaction() as tx:
        snap = await c.cache.fresh(tx)
        ch = snap.channels.get(code)
        if ch is None:
            raise NotFound(f"channel {code} does not exist")
        checks = await balances.history(tx, code, CHART_CHECKS)
        waiting = await rate_limits.waiting_orders(tx, code)
        waiting_total = (await rate_limits.waiting(tx)).get(code, 0)
    for check in checks:
        check["shown"] = shown(check["amount"], check["currency"])
    ok = [b for b in reversed(checks) if b["ok"]]
    last = ok[-1] if ok else None
    groups: list[dict[str, Any]] = []
    for g in sorted(snap.groups.values(), key=lambda g: g.code):
        for m in g.members:
            if m.channel == code:
                cov = coverage_of(m)
                regions = [f"{r} {region_name(r)}" for r in cov.get("regions", [])]
                groups.append({"code": g.code, "carriers": cov.get("carriers"), "regions": regions})
    adapter = c.suppliers.get(ch.protocol)
    chart = balance_line(ok, ch.min_balance, label=f"{code}: supplier balance at each check")
    return page(
        request,
        "channel.html",
        session,
        ch=ch,
        last=last,
        low=last is not None and ch.min_balance is not None and last["amount"] < ch.min_balance,
        checks=checks[:30],
        chart=chart,
        has_balance=bool(adapter and adapter.has_balance),
        min_shown=shown(ch.min_balance, last["currency"] if last else None),
        waiting=waiting,
        waiting_total=waiting_total,
        groups=groups,
    )
