"""The simulator speaking DingConnect (SPEC section 6 "dingconnect").

Quirks of the real service it keeps: errors come inside HTTP 200 bodies (`ResultCode` 4/5 with
`ErrorCodes`), except a short account balance, which is an HTTP 500 carrying `InsufficientBalance`; a wrong
`api_key` header gets a bare 401; there are no callbacks (the status query carries every order); and a
repeated `DistributorRef` is NOT deduplicated: it makes a second transfer (listed in
`channel.state["transfers"][ref]` and charged again), so a test can show the platform never sends one twice.

Mode options (`behaviour.options`): `currency` (of the balance and the amounts, default `CNY`) and
`reject_result_code` (4 or 5, default 4). The account lists (`fail_accounts`, ...) hold `AccountNumber`s
as sent, in international form (`8613800138000`).
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import FastAPI, Request, Response

from topup.adapters.suppliers.simulator.behaviour import Outcome
from topup.domain.suppliers import fen_to_yuan, minor_units

from . import failing_front_end, gibberish, reply_delay

if TYPE_CHECKING:
    from topup.adapters.suppliers.simulator.engine import Channel, SimOrder, Simulator

NAME = "dingconnect"
UNAUTHORIZED = {"Message": "Authorization has been denied for this request."}
QUERY_STATES = {"success": "Complete", "failed": "Failed", "processing": "Processing"}
REQUIRED = ("SkuCode", "SendValue", "SendCurrencyIso", "AccountNumber", "DistributorRef")


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _errors(code: str, context: str | None = None) -> list[dict[str, Any]]:
    return [{"Code": code, "Context": context}]


def _number(text: str) -> orjson.Fragment:
    """A JSON number written from exact decimal text."""
    return orjson.Fragment(text.encode())


def _api_key(channel: Channel) -> str:
    return str(channel.behaviour.credentials.get("api_key") or channel.behaviour.secret)


def _parse_transfer(body: bytes) -> dict[str, Any] | str:
    """The SendTransfer request as a take_order payload, or what is wrong with it."""
    try:
        data = json.loads(body, parse_float=Decimal)
    except ValueError:
        return "body is not JSON"
    if not isinstance(data, dict):
        return "body is not a JSON object"
    missing = [f for f in REQUIRED if data.get(f) in (None, "")]
    if missing:
        return f"missing {', '.join(missing)}"
    if data.get("ValidateOnly") not in (None, False):
        return "ValidateOnly transfers are not simulated"
    value = data["SendValue"]
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return "SendValue must be a number"
    try:
        amount = minor_units(value, str(data["SendCurrencyIso"]))
    except ValueError as exc:
        return f"SendValue: {exc}"
    return {
        **data,
        "SendValue": format(Decimal(value).normalize(), "f"),
        "ref": str(data["DistributorRef"]),
        "account": str(data["AccountNumber"]),
        "amount": amount,
    }


def _record(
    channel: Channel, ref: str, order: SimOrder | None, state: str, transfer_ref: str | None
) -> dict[str, Any]:
    request = order.request if order is not None else {}
    currency = str(request.get("SendCurrencyIso") or channel.behaviour.options.get("currency") or "CNY")
    return {
        "TransferId": {"TransferRef": transfer_ref, "DistributorRef": ref},
        "SkuCode": request.get("SkuCode"),
        "Price": {"SendValue": _number(str(request.get("SendValue") or "0")), "SendCurrencyIso": currency},
        "AccountNumber": request.get("AccountNumber"),
        "ProcessingState": state,
    }


def _option_int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _failure_code(channel: Channel, order: SimOrder | None) -> str:
    if order is not None and order.outcome is Outcome.REJECTED:
        return channel.behaviour.reject_code
    return channel.behaviour.failure_code


def _settled_state(order: SimOrder, now: float) -> str:
    """What the transfer looks like right now: settled only once its delay has passed."""
    if order.settles_at is None or now < order.settles_at:
        return "Submitted"
    return "Complete" if order.outcome is Outcome.SUCCESS else "Failed"


def _repeat(channel: Channel, order: SimOrder) -> bool:
    """DingConnect takes a repeated DistributorRef as a new transfer; False when the balance is short."""
    behaviour = channel.behaviour
    if order.outcome in (Outcome.SUCCESS, Outcome.SILENT) and behaviour.balance is not None:
        if order.amount > behaviour.balance:
            return False
        behaviour.balance -= order.amount
    transfers = channel.state.setdefault("transfers", {}).setdefault(order.ref, [])
    transfers.append(f"{order.supplier_order_id}-{len(transfers) + 1}")
    return True


def _transfer_reply(channel: Channel, order: SimOrder, insufficient: bool, now: float) -> Response:
    behaviour = channel.behaviour
    if insufficient or order.outcome is Outcome.INSUFFICIENT:
        errors = _errors("InsufficientBalance", "simulated supplier balance too low")
        return _json({"ResultCode": 3, "ErrorCodes": errors, "TransferRecord": None}, 500)
    if order.outcome is Outcome.REJECTED:
        result = _option_int(behaviour.options.get("reject_result_code"), 4)
        record = _record(channel, order.ref, order, "Failed", None)
        errors = _errors(behaviour.reject_code, order.account)
        return _json({"ResultCode": result, "ErrorCodes": errors, "TransferRecord": record})
    state = _settled_state(order, now)
    transfer_ref = channel.state["transfers"][order.ref][-1]
    errors = _errors(behaviour.failure_code, "simulated failure") if state == "Failed" else []
    record = _record(channel, order.ref, order, state, transfer_ref)
    return _json({"ResultCode": 1, "ErrorCodes": errors, "TransferRecord": record})


def register(app: FastAPI, sim: Simulator, now: Callable[[], float]) -> None:
    def authenticated(request: Request, code: str) -> Channel | Response:
        channel = sim.channels.get(code)
        if channel is None or channel.behaviour.protocol != NAME:
            return _json({"Message": f"no simulated {NAME} channel {code!r}"}, 404)
        sent = request.headers.get("api_key", "")
        if not hmac.compare_digest(sent.encode(), _api_key(channel).encode()):
            return _json(UNAUTHORIZED, 401)
        return channel

    @app.post("/sim/{code}/SendTransfer")
    async def send_transfer(code: str, request: Request) -> Response:
        channel = authenticated(request, code)
        if isinstance(channel, Response):
            return channel
        payload = _parse_transfer(await request.body())
        if isinstance(payload, str):
            return _json({"ResultCode": 2, "ErrorCodes": _errors("BadRequest", payload)}, 400)
        ref = payload["ref"]
        channel.dispatches[ref] += 1
        errors = _errors("SimulatedHttpStatus", "simulated front-end failure")
        refused = await failing_front_end(channel, orjson.dumps({"ResultCode": 3, "ErrorCodes": errors}))
        if refused is not None:
            return refused
        order, is_new = sim.take_order(channel, payload)
        insufficient = False
        if is_new and order.outcome not in (Outcome.REJECTED, Outcome.INSUFFICIENT):
            channel.state.setdefault("transfers", {})[ref] = [order.supplier_order_id]
        elif not is_new and order.outcome not in (Outcome.REJECTED, Outcome.INSUFFICIENT):
            insufficient = not _repeat(channel, order)
        await reply_delay(channel)
        if channel.behaviour.malformed_reply:
            return gibberish()
        return _transfer_reply(channel, order, insufficient, asyncio.get_running_loop().time())

    @app.post("/sim/{code}/ListTransferRecords")
    async def list_transfer_records(code: str, request: Request) -> Response:
        channel = authenticated(request, code)
        if isinstance(channel, Response):
            return channel
        try:
            data = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            data = None
        ref = data.get("DistributorRef") if isinstance(data, dict) else None
        if not isinstance(data, dict) or not isinstance(ref, str) or not ref:
            return _json({"ResultCode": 2, "ErrorCodes": _errors("BadRequest", "DistributorRef")}, 400)
        take = data.get("Take")
        status, order = sim.query_status(channel, ref)
        items: list[dict[str, Any]] = []
        if status != "not_found":
            transfer_ref = channel.state.get("transfers", {}).get(ref, [None])[0]
            failed = status == "failed"
            items.append(
                {
                    "TransferRecord": _record(channel, ref, order, QUERY_STATES[status], transfer_ref),
                    "ResultCode": 1,
                    "ErrorCodes": _errors(_failure_code(channel, order)) if failed else [],
                }
            )
        if isinstance(take, int) and take >= 0:
            items = items[:take]
        return _json({"ResultCode": 1, "ErrorCodes": [], "Items": items})

    @app.get("/sim/{code}/GetBalance")
    async def get_balance(code: str, request: Request) -> Response:
        channel = authenticated(request, code)
        if isinstance(channel, Response):
            return channel
        amount = channel.behaviour.balance
        currency = str(channel.behaviour.options.get("currency") or "CNY")
        balance = _number(fen_to_yuan(10**12 if amount is None else amount))
        return _json({"Balance": balance, "CurrencyIso": currency, "ResultCode": 1, "ErrorCodes": []})


def callback(
    channel: Channel, order: SimOrder, status: str, now: float
) -> tuple[bytes, dict[str, str]] | None:
    """DingConnect sends no callbacks: the query carries every order."""
    return None
