"""The sandbox gateway's hosted pay page (a stand-in for a third-party payment provider).

Pay / Decline queue the gateway's signed notify to `/sandbox/notify`; the payer is sent back to the
batch page, which shows the outcome once the notify has been applied.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from topup.bootstrap import Container
from topup.domain.errors import TopupError
from topup.entrypoints.api.deps import container
from topup.entrypoints.web.render import page

router = APIRouter(include_in_schema=False)
Ctr = Annotated[Container, Depends(container)]


async def _show(request: Request, c: Container, payment_id: str, error: str | None, status: int) -> Response:
    payments = c.payments
    async with c.db.transaction() as tx:
        try:
            p = await payments.get(tx, payment_id[:64])
        except TopupError:
            return page(
                request, "sandbox_pay.html", None, None, status=404, payment=None, error="No such payment."
            )
        orders = len((await payments.render(tx, p))["order_ids"])
    return page(
        request,
        "sandbox_pay.html",
        None,
        None,
        status=status,
        payment=p,
        orders=orders,
        token=payments.page_token(p.id),
        error=error,
        expired=p.status == "pending" and p.expires_at is not None and c.clock.now() >= p.expires_at,
    )


@router.get("/sandbox/pay/{payment_id}")
async def pay_page(payment_id: str, request: Request, c: Ctr) -> Response:
    return await _show(request, c, payment_id, None, 200)


@router.post("/sandbox/pay/{payment_id}")
async def decide(payment_id: str, request: Request, c: Ctr) -> Response:
    form = await request.form()
    payments = c.payments
    try:
        async with c.db.transaction() as tx:
            p = await payments.gateway_decide(
                tx, payment_id[:64], str(form.get("decision") or ""), str(form.get("token") or "")
            )
    except TopupError as e:
        return await _show(request, c, payment_id, e.message, e.status)
    target = f"/batches/{p.batch_id}?payment=submitted" if p.batch_id else f"/sandbox/pay/{p.id}"
    return RedirectResponse(target, status_code=303)
