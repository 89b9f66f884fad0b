"""The simulator speaking Juhe (聚合数据, SPEC section 6 `juhe`): `ofpay/mobile` and `ofpay/sinopec`.

Requests are form-encoded (or query parameters, which Juhe also reads) and answered with HTTP 200 and a
JSON `error_code`. Credentials come from `behaviour.credentials` (`openid`, `key`; `key` defaults to the
channel's `secret`). Callbacks are form-encoded, go to `behaviour.callback_url` (Juhe takes it from its
console) and are retried three times. Codes chosen by this mode where the spec names none (see
docs/suppliers/juhe.md): 10001 wrong key, 10004 bad sign, 208501 bad parameters, 208517 balance too
low (`options.insufficient_code`), 208516 unknown orderid (`options.not_found_code`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

import orjson
from fastapi import FastAPI, Request, Response

from topup.adapters.suppliers.simulator.behaviour import Outcome
from topup.domain.suppliers import yuan_to_fen

from . import failing_front_end, gibberish, reply_delay

if TYPE_CHECKING:
    from topup.adapters.suppliers.simulator.engine import Channel, SimOrder, Simulator

NAME = "juhe"
CALLBACK_RETRIES = 3
"""Juhe gives up after three more tries."""

DEFAULT_OPENID = "JHsimulatedopenid"
WRONG_KEY = 10001  # Juhe's documented "错误的请求KEY"
BAD_SIGN = 10004  # "错误的OPENID": a sign made with another openid; see the docs
BAD_PARAMS = 208501
INSUFFICIENT_CODE = 208517
NOT_FOUND_CODE = 208516
ORDERID = re.compile(r"[A-Za-z0-9]{8,32}")
# Fixed-value Sinopec/PetroChina products (proid -> yuan per card); other proids top up `cardnum` yuan.
PROID_YUAN = {"10000": 50, "10001": 100, "10003": 500, "10004": 1000}
STATES = {"processing": "0", "success": "1", "failed": "9"}


def _md5(*values: str) -> str:
    return hashlib.md5("".join(values).encode("utf-8")).hexdigest()


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison that also takes non-ASCII input."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _error(code: int, reason: str) -> dict[str, Any]:
    return {"reason": reason, "result": None, "error_code": code}


def _yuan(fen: int) -> str:
    return f"{Decimal(fen) / 100:.2f}"


def credentials(channel: Channel) -> tuple[str, str]:
    """The channel's (openid, key)."""
    creds = channel.behaviour.credentials
    return str(creds.get("openid") or DEFAULT_OPENID), str(creds.get("key") or channel.behaviour.secret)


def _option_code(channel: Channel, name: str, default: int) -> int:
    value = channel.behaviour.options.get(name, default)
    return int(value) if _digits(str(value)) else default


async def _params(request: Request) -> dict[str, str]:
    """Query parameters and form fields (the body wins), as Juhe reads either."""
    params = dict(request.query_params)
    if request.method == "POST":
        body = (await request.body()).decode("utf-8", errors="replace")
        params.update(parse_qsl(body, keep_blank_values=True))
    return params


def _amount(fuel: bool, params: dict[str, str]) -> int | None:
    """What the order takes from the balance, in fen; None when `cardnum` does not fit the product."""
    cardnum, proid = params.get("cardnum", ""), params.get("proid", "")
    if fuel and proid in PROID_YUAN:
        # A fixed-value card product: cardnum counts cards.
        return PROID_YUAN[proid] * 100 * int(cardnum) if _digits(cardnum) and int(cardnum) > 0 else None
    try:
        amount = yuan_to_fen(cardnum)
    except ValueError:
        return None
    return amount if amount > 0 else None


def _order_reply(channel: Channel, order: SimOrder, params: dict[str, str]) -> dict[str, Any]:
    """The `onlineorder` answer for a newly taken order, kept for repeats of its orderid."""
    behaviour = channel.behaviour
    if order.outcome is Outcome.INSUFFICIENT:
        return _error(_option_code(channel, "insufficient_code", INSUFFICIENT_CODE), "账户余额不足")
    state = "0"
    if order.outcome is Outcome.REJECTED:
        if _digits(behaviour.reject_code):
            return _error(int(behaviour.reject_code), "simulated rejection")
        state = "9"
    return {
        "reason": "订单提交成功，等待充值" if state == "0" else "充值撤销",
        "result": {
            "cardid": params.get("proid") or "sim",
            "cardnum": params.get("cardnum"),
            "ordercash": _yuan(order.request.get("amount", 0)),
            "sporder_id": order.supplier_order_id,
            "uorderid": order.ref,
            "game_userid": order.account,
            "game_state": state,
        },
        "error_code": 0,
    }


def _family(order: SimOrder | None) -> str | None:
    return None if order is None else order.request.get("family")


def _not_taken(order: SimOrder | None) -> bool:
    """An order Juhe refused with an error_code never existed there: a query does not find it."""
    return order is None or order.reply.get("error_code") not in (0, None)


def register(app: FastAPI, sim: Simulator, now: Callable[[], float]) -> None:
    async def channel_and_params(request: Request, code: str) -> tuple[Channel, dict[str, str]] | Response:
        channel = sim.channels.get(code)
        if channel is None or channel.behaviour.protocol != NAME:
            return _json({"error": {"code": "not_found", "message": f"no simulated {NAME} channel"}}, 404)
        params = await _params(request)
        if not _same(params.get("key", ""), credentials(channel)[1]):
            return _json(_error(WRONG_KEY, "错误的请求KEY"))
        return channel, params

    async def online_order(code: str, request: Request, fuel: bool) -> Response:
        checked = await channel_and_params(request, code)
        if isinstance(checked, Response):
            return checked
        channel, params = checked
        openid, key = credentials(channel)
        orderid = params.get("orderid", "")
        account = params.get("game_userid" if fuel else "phoneno", "")
        amount = _amount(fuel, params)
        if not ORDERID.fullmatch(orderid) or not account or amount is None:
            return _json(_error(BAD_PARAMS, "参数错误: orderid, cardnum and the account are required"))
        if fuel and params.get("chargeType") not in ("1", "2"):
            return _json(_error(BAD_PARAMS, "参数错误: chargeType must be 1 or 2"))
        signed = (
            (params.get("proid", ""), params.get("cardnum", ""), account, orderid)
            if fuel
            else (account, params.get("cardnum", ""), orderid)
        )
        if not _same(params.get("sign", "").lower(), _md5(openid, key, *signed)):
            return _json(_error(BAD_SIGN, "错误的校验值"))
        channel.dispatches[orderid] += 1
        refused = await failing_front_end(channel, orjson.dumps(_error(10014, "系统内部异常")))
        if refused is not None:
            return refused
        family = "sinopec" if fuel else "mobile"
        payload = {"ref": orderid, "account": account, "amount": amount, "family": family}
        order, is_new = sim.take_order(channel, payload)
        if is_new:
            order.reply = _order_reply(channel, order, params)
            await sim.start_callbacks(channel, order)
        await reply_delay(channel)
        if channel.behaviour.malformed_reply:
            return gibberish()
        return _json(order.reply)

    async def order_status(code: str, request: Request, family: str) -> Response:
        checked = await channel_and_params(request, code)
        if isinstance(checked, Response):
            return checked
        channel, params = checked
        orderid = params.get("orderid", "")
        if not orderid:
            return _json(_error(BAD_PARAMS, "参数错误: orderid is required"))
        status, order = sim.query_status(channel, orderid)
        # An order refused with an error_code, or placed under the other family, is not found here.
        if channel.behaviour.query_answer is None and (_not_taken(order) or _family(order) != family):
            status = "not_found"
        if status == "not_found" or order is None:
            return _json(_error(_option_code(channel, "not_found_code", NOT_FOUND_CODE), "订单不存在"))
        result = {
            "uordercash": _yuan(order.amount),
            "sporder_id": order.supplier_order_id,
            "game_state": STATES[status],
        }
        return _json({"reason": "查询成功", "result": result, "error_code": 0})

    @app.api_route("/sim/{code}/ofpay/mobile/onlineorder", methods=["GET", "POST"])
    async def mobile_order(code: str, request: Request) -> Response:
        return await online_order(code, request, fuel=False)

    @app.api_route("/sim/{code}/ofpay/sinopec/onlineorder", methods=["GET", "POST"])
    async def fuel_order(code: str, request: Request) -> Response:
        return await online_order(code, request, fuel=True)

    @app.api_route("/sim/{code}/ofpay/mobile/ordersta", methods=["GET", "POST"])
    async def mobile_status(code: str, request: Request) -> Response:
        return await order_status(code, request, "mobile")

    @app.api_route("/sim/{code}/ofpay/sinopec/ordersta", methods=["GET", "POST"])
    async def fuel_status(code: str, request: Request) -> Response:
        return await order_status(code, request, "sinopec")

    @app.get("/sim/{code}/ofpay/mobile/yue")
    async def balance(code: str, request: Request) -> Response:
        checked = await channel_and_params(request, code)
        if isinstance(checked, Response):
            return checked
        channel, params = checked
        openid, key = credentials(channel)
        timestamp = params.get("timestamp", "")
        if not _digits(timestamp):
            return _json(_error(BAD_PARAMS, "参数错误: timestamp is required"))
        if not _same(params.get("sign", "").lower(), _md5(openid, key, timestamp)):
            return _json(_error(BAD_SIGN, "错误的校验值"))
        amount = channel.behaviour.balance
        money = _yuan(10**12 if amount is None else amount)
        return _json({"reason": "查询成功", "result": {"money": money}, "error_code": 0})


def callback(
    channel: Channel, order: SimOrder, status: str, now: float
) -> tuple[bytes, dict[str, str]] | None:
    """The form-encoded result notice, or None when the channel has no `callback_url` configured."""
    if not order.callback_url:
        return None
    _, key = credentials(channel)
    fields = {
        "sporder_id": order.supplier_order_id,
        "orderid": order.ref,
        "sta": "1" if status == "success" else "9",
    }
    if status != "success":
        fields["err_msg"] = f"simulated failure {channel.behaviour.failure_code}"
    fields["sign"] = _md5(key, order.supplier_order_id, order.ref)
    return urlencode(fields).encode(), {"Content-Type": "application/x-www-form-urlencoded"}
