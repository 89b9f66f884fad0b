"""The simulator speaking 福禄开放平台 (`fulu`, SPEC section 6): every call is `POST /sim/{code}`.

Like Fulu it checks `app_key` and the character-sorted MD5 signature of each request, answers
`{"code", "message", "result": "<JSON string>", "sign"}` with `sign` over the `result` string, and posts
signed JSON callbacks to the channel's `callback_url` (Fulu takes it from its console, not the order).
The signing here is written independently of the adapter's codec, so each checks the other.

Credentials: `behaviour.credentials` `{"app_key", "app_secret"}` (defaults: `sim-app-key` and the
behaviour's `secret`). Options: `prices` (`{product_id: fen}`, what a direct order costs the simulated
balance; default 0), `processing_state` (the word for a pending order, `processing` or `untreated`) and
`max_clock_skew_s` (how far the request's China-time `timestamp` may be from the clock; default 600).
The error codes below are this simulator's; docs/suppliers/fulu.md lists them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response

from topup.adapters.suppliers.simulator.behaviour import Outcome
from topup.domain.suppliers import yuan_to_fen

from . import failing_front_end, gibberish, reply_delay

if TYPE_CHECKING:
    from topup.adapters.suppliers.simulator.engine import Channel, SimOrder, Simulator

NAME = "fulu"
DEFAULT_APP_KEY = "sim-app-key"
CHINA = timezone(timedelta(hours=8))
MOBILE, DIRECT = "fulu.order.mobile.add", "fulu.order.direct.add"
QUERY, BALANCE = "fulu.order.info.get", "fulu.user.info.get"

OK = (0, "接口调用成功")
BAD_REQUEST = (1000, "参数错误")
BAD_APP_KEY = (1001, "app_key不存在")
BAD_SIGN = (1002, "签名验证失败")
BAD_METHOD = (1003, "接口方法不存在")
NOT_FOUND = (2001, "订单不存在")
REJECTED = (3001, "商品暂不可用")  # when behaviour.reject_code is not a number
INSUFFICIENT = (4001, "账户余额不足")


def _text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def sign(signed_text: str, secret: str) -> str:
    """Fulu's rule: the characters sorted, the secret appended, lower-case hex MD5 of the UTF-8 bytes."""
    return hashlib.md5(("".join(sorted(signed_text)) + secret).encode("utf-8")).hexdigest()


def china_time(now: float) -> str:
    return datetime.fromtimestamp(now, CHINA).strftime("%Y-%m-%d %H:%M:%S")


def keys(channel: Channel) -> tuple[str, str]:
    """The channel's (app_key, app_secret)."""
    creds = channel.behaviour.credentials
    return str(creds.get("app_key") or DEFAULT_APP_KEY), str(
        creds.get("app_secret") or channel.behaviour.secret
    )


def reply(
    answer: tuple[int, str], secret: str | None, result: dict[str, Any] | None = None, detail: str = ""
) -> Response:
    """A Fulu reply; signed over the `result` string when the caller's secret is known."""
    code, message = answer
    result_text = _text(result) if result is not None else ""
    body = {
        "code": code,
        "message": f"{message}: {detail}" if detail else message,
        "result": result_text,
        "sign": sign(result_text, secret) if secret is not None else "",
    }
    return Response(_text(body).encode("utf-8"), media_type="application/json")


def _order_result(channel: Channel, ref: str, order: SimOrder | None, state: str) -> dict[str, Any]:
    request = order.request if order is not None else {}
    return {
        "order_id": order.supplier_order_id if order is not None else "",
        "customer_order_no": ref,
        "product_id": request.get("product_id") or 0,
        "charge_account": order.account if order is not None else "",
        "buy_num": 1,
        "order_type": 1 if request.get("method") == MOBILE else 4,
        "order_price": float(Decimal(int(request.get("amount") or 0)) / 100),
        "order_state": state,  # the name in Fulu's SDKs
        "order_status": state,  # the name in SPEC section 6
        "create_time": request.get("created", ""),
        "finish_time": "",
        "operator_serial_number": "",
    }


def _stale(timestamp: Any, now: float, max_skew_s: float) -> str | None:
    """What is wrong with the request's China-time `timestamp`, if anything."""
    try:
        sent = datetime.strptime(str(timestamp), "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA)
    except ValueError:
        return "timestamp must be YYYY-MM-DD HH:MM:SS (China time)"
    if abs(sent.timestamp() - now) > float(max_skew_s):
        return "timestamp is too far from the gateway's clock"
    return None


def _parse_order(method: str, biz: dict[str, Any], channel: Channel) -> dict[str, Any] | str:
    """The order as `Simulator.take_order` wants it, or what is wrong with it."""
    ref = biz.get("customer_order_no")
    if not isinstance(ref, str) or not ref:
        return "customer_order_no is required"
    if method == MOBILE:
        account, product_id = biz.get("charge_phone"), None
        try:
            amount = yuan_to_fen(biz.get("charge_value"))
        except ValueError:
            return "charge_value must be an amount in yuan"
    else:
        account, product_id, buy_num = biz.get("charge_account"), biz.get("product_id"), biz.get("buy_num")
        if product_id in (None, "") or isinstance(product_id, bool):
            return "product_id is required"
        if isinstance(buy_num, bool) or not isinstance(buy_num, int) or buy_num < 1:
            return "buy_num must be a positive integer"
        prices = channel.behaviour.options.get("prices") or {}
        amount = int(prices.get(str(product_id), 0)) * buy_num
    if not isinstance(account, str) or not account:
        return "charge_phone / charge_account is required"
    return {"ref": ref, "account": account, "amount": amount, "method": method, "product_id": product_id}


def register(app: FastAPI, sim: Simulator, now: Callable[[], float]) -> None:
    async def order(channel: Channel, method: str, biz: dict[str, Any], secret: str) -> Response:
        payload = _parse_order(method, biz, channel)
        if isinstance(payload, str):
            return reply(BAD_REQUEST, secret, detail=payload)
        channel.dispatches[payload["ref"]] += 1
        refused = await failing_front_end(channel)
        if refused is not None:
            return refused
        payload.update(callback_url=channel.behaviour.callback_url or "", created=china_time(now()))
        taken, is_new = sim.take_order(channel, payload)
        if is_new:
            await sim.start_callbacks(channel, taken)
        await reply_delay(channel)
        if channel.behaviour.malformed_reply:
            return gibberish()
        if taken.outcome is Outcome.INSUFFICIENT:
            return reply(INSUFFICIENT, secret)
        if taken.outcome is Outcome.REJECTED:
            code = channel.behaviour.reject_code.strip()
            answer = (int(code), "simulated rejection") if code.lstrip("-").isdigit() else REJECTED
            return reply(answer, secret)
        state = channel.behaviour.options.get("processing_state") or "processing"
        return reply(OK, secret, _order_result(channel, taken.ref, taken, state))

    def query(channel: Channel, biz: dict[str, Any], secret: str) -> Response:
        ref = biz.get("customer_order_no")
        if not isinstance(ref, str) or not ref:
            return reply(BAD_REQUEST, secret, detail="customer_order_no is required")
        status, found = sim.query_status(channel, ref)
        if status == "not_found":
            return reply(NOT_FOUND, secret)
        state: str = status
        if status == "processing":
            state = channel.behaviour.options.get("processing_state") or "processing"
        return reply(OK, secret, _order_result(channel, ref, found, state))

    def balance(channel: Channel, secret: str) -> Response:
        amount = channel.behaviour.balance
        yuan = float(Decimal(10**12 if amount is None else amount) / 100)
        return reply(OK, secret, {"name": f"simulated {channel.code}", "balance": yuan, "is_open": 1})

    @app.post("/sim/{code}")
    async def gateway(code: str, request: Request) -> Response:
        channel = sim.channels.get(code)
        if channel is None or channel.behaviour.protocol != NAME:
            message = f"no simulated {NAME} channel {code!r}"
            error = {"error": {"code": "not_found", "message": message, "details": None}}
            return Response(_text(error).encode("utf-8"), status_code=404, media_type="application/json")
        app_key, secret = keys(channel)
        try:
            call = json.loads(await request.body())
        except (ValueError, RecursionError):
            return reply(BAD_REQUEST, None, detail="body is not JSON")
        if not isinstance(call, dict):
            return reply(BAD_REQUEST, None, detail="body is not a JSON object")
        if call.get("app_key") != app_key:
            return reply(BAD_APP_KEY, None)
        given = call.get("sign")
        expected = sign(_text({k: v for k, v in call.items() if k != "sign"}), secret)
        if not isinstance(given, str) or given.lower() != expected:
            return reply(BAD_SIGN, secret)
        stale = _stale(call.get("timestamp"), now(), channel.behaviour.options.get("max_clock_skew_s", 600))
        if stale:
            return reply(BAD_REQUEST, secret, detail=stale)
        method, biz_text = call.get("method"), call.get("biz_content")
        try:
            biz = json.loads(biz_text, parse_float=Decimal) if isinstance(biz_text, str) else None
        except (ValueError, RecursionError):
            biz = None
        if not isinstance(biz, dict):
            return reply(BAD_REQUEST, secret, detail="biz_content must be a JSON object text")
        if method in (MOBILE, DIRECT):
            return await order(channel, method, biz, secret)
        if method == QUERY:
            return query(channel, biz, secret)
        if method == BALANCE:
            return balance(channel, secret)
        return reply(BAD_METHOD, secret, detail=str(method))


def callback(
    channel: Channel, order: SimOrder, status: str, now: float
) -> tuple[bytes, dict[str, str]] | None:
    """Fulu's callback: a JSON object of strings, signed over itself without `sign`."""
    if not order.callback_url:
        return None  # no URL configured in the (simulated) console: Fulu would not call back
    success = status == "success"
    price = Decimal(int(order.request.get("amount") or 0)) / 100
    body = {
        "order_id": order.supplier_order_id,
        "charge_finish_time": china_time(now),
        "customer_order_no": order.ref,
        "order_status": status,
        "recharge_description": "充值成功" if success else f"充值失败 ({channel.behaviour.failure_code})",
        "product_id": str(order.request.get("product_id") or ""),
        "price": f"{price:.4f}",
        "buy_num": "1",
        "operator_serial_number": f"SIM{order.supplier_order_id}" if success else "",
    }
    body["sign"] = sign(_text(body), keys(channel)[1])
    return _text(body).encode("utf-8"), {"Content-Type": "application/json; charset=utf-8"}
