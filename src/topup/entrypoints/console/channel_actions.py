"""The console's channel form: the protocol's own credential, product and option fields, secrets never
shown, and a "check connection" button that asks the supplier for its balance."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from topup.bootstrap import Container
from topup.domain.errors import TopupError
from topup.domain.suppliers import fen_to_yuan
from topup.entrypoints.api import admin_routes
from topup.entrypoints.api.deps import container
from topup.entrypoints.console import forms
from topup.entrypoints.console.auth import ConsoleRoute, operator
from topup.entrypoints.console.render import page
from topup.entrypoints.console.roles import AdminPost, OperatorPost
from topup.entrypoints.websession import Session
from topup.services import balances
from topup.services.catalog import Channel

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
Op = Annotated[Session, Depends(operator)]
Ctr = Annotated[Container, Depends(container)]


def _protocols(c: Container) -> list[dict[str, Any]]:
    """What the form shows per protocol (topup-json's secret is the form's own `secret` field)."""
    return [
        {
            "name": name,
            "credential_fields": [f for f in a.credential_fields if name != "topup-json"],
            "secret_fields": list(a.secret_fields),
            "product_fields": list(a.product_fields),
            "option_fields": list(a.option_fields),
            "has_balance": a.has_balance,
            "has_callbacks": a.has_callbacks,
        }
        for name, a in sorted(c.suppliers.items())
    ]


def _fields(c: Container) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    return {name: (a.credential_fields, a.secret_fields) for name, a in c.suppliers.items()}


async def _channel(c: Container, code: str) -> Channel | None:
    if not code:
        return None
    async with c.db.transaction() as tx:
        return (await c.cache.fresh(tx)).channels.get(code)


def _values(ch: Channel) -> dict[str, Any]:
    values: dict[str, Any] = {
        "code": ch.code,
        "name": ch.name,
        "protocol": ch.protocol,
        "base_url": ch.base_url,
        "timeout_s": f"{ch.timeout_s:g}",
        "max_wait_s": f"{ch.max_wait_s:g}",
        "min_balance": "" if ch.min_balance is None else str(ch.min_balance),
        "balance_check_s": f"{ch.balance_check_s:g}",
        "rate_limit_per_s": "" if ch.rate_limit_per_s is None else str(ch.rate_limit_per_s),
        "supports_query": "on" if ch.supports_query else "",
        "enabled": "on" if ch.enabled else "",
        "products": json.dumps(dict(ch.products), indent=1, ensure_ascii=False) if ch.products else "",
        "options": json.dumps(dict(ch.options), ensure_ascii=False) if ch.options else "",
    }
    for name, value in ch.credentials.items():
        if name not in ch.secret_fields:  # secrets are never sent back to a browser
            values[f"cred.{ch.protocol}.{name}"] = str(value)
    return values


def _form_page(
    request: Request,
    session: Session,
    c: Container,
    values: dict[str, Any],
    new: bool,
    status: int = 200,
    **extra: Any,
) -> Response:
    protocol = values.get("protocol") or "topup-json"
    callback = f"{c.settings.callback_base()}/callbacks/{protocol}/{values.get('code')}"
    return page(
        request,
        "channel_form.html",
        session,
        status=status,
        v=values,
        new=new,
        protocols=_protocols(c),
        callback_url=callback,
        **extra,
    )


@router.get("/edit/channel")
async def channel_form(request: Request, session: Op, c: Ctr) -> Response:
    code = request.query_params.get("code", "")
    ch = await _channel(c, code)
    values: dict[str, Any] = {
        "code": code,
        "protocol": "topup-json",
        "timeout_s": "30",
        "max_wait_s": "600",
        "balance_check_s": "300",
        "supports_query": "on",
        "enabled": "on",
    }
    if ch is not None:
        values = _values(ch)
    return _form_page(request, session, c, values, new=ch is None)


@router.post("/edit/channel")
async def save_channel(request: Request, user: AdminPost, c: Ctr) -> Response:
    session = user.session
    form = await request.form()
    ch = await _channel(c, str(form.get("code") or ""))
    try:
        code = forms.code_of(form)
        existing = (ch.protocol, ch.credentials) if ch is not None else None
        body = forms.channel(form, existing=existing, fields=_fields(c))
        await admin_routes.put_channel(code, body, c, user.actor, Response())
    except (forms.FormError, TopupError) as e:
        errors = e.messages if isinstance(e, forms.FormError) else [e.message]
        values = {k: str(v) for k, v in form.items() if k != "csrf" and k != "secret"}
        secret_inputs = {f"cred.{p['name']}.{f}" for p in _protocols(c) for f in p["secret_fields"]}
        values = {k: v for k, v in values.items() if k not in secret_inputs}
        return _form_page(request, session, c, values, new=ch is None, status=400, errors=errors)
    return RedirectResponse(f"/console/catalog?done=saved&what=Channel+{code}", status_code=303)


@router.post("/edit/channel/check")
async def check_connection(request: Request, user: OperatorPost, c: Ctr) -> Response:
    session = user.session
    """Run the supplier's balance query now and show what it said on the channel's form."""
    form = await request.form()
    ch = await _channel(c, str(form.get("code") or ""))
    if ch is None:
        return RedirectResponse("/console/catalog", status_code=303)
    try:
        out = await balances.check_balance(c.db, c.cache, c.suppliers, ch.code, c.settings.callback_base())
    except TopupError as e:
        return _form_page(request, session, c, _values(ch), new=False, status=502, check_error=e.message)
    amount = f"{fen_to_yuan(out['amount'])} {out['currency']}"
    return _form_page(request, session, c, _values(ch), new=False, check_ok=f"Connected: balance {amount}")
