"""福禄开放平台 (`fulu`, SPEC section 6): one gateway URL, a signed JSON envelope, replies whose `result` is
itself a JSON string.

Every call is `POST {base_url}` with `{"app_key", "method", "timestamp", "version", "format", "charset",
"sign_type", "app_auth_token", "biz_content": "<JSON text>", "sign"}`. Fulu's signature is unusual: take the
compact JSON text of the object without `sign`, sort its *characters*, append `app_secret` and take the
lower-case hex MD5. Replies are signed the same way over the `result` string, callbacks over the callback
object without `sign`. The codec half (`json_text`, `fulu_sign`, `envelope`, `read_reply` and the
classifiers) is pure; `Fulu` adds the transport. Any code not configured as definite is `unknown`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import httpx

from topup.adapters.suppliers.transport import NoReply, build, ms_since, raw_text, send, text
from topup.domain import suppliers as port
from topup.domain.suppliers import BalanceOutcome, DispatchOutcome, QueryOutcome

NAME = "fulu"
CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")  # no DST since 1991: a fixed offset is exact
AIRTIME = "mobile_airtime"
METHOD_MOBILE = "fulu.order.mobile.add"
METHOD_DIRECT = "fulu.order.direct.add"
METHOD_QUERY = "fulu.order.info.get"
METHOD_BALANCE = "fulu.user.info.get"
CODE_OPTIONS = ("reject_codes", "not_found_codes", "insufficient_codes")
QUERY_STATES = {
    "success": "success",
    "failed": "failed",
    "processing": "processing",
    "untreated": "processing",
}
TEXT_LIMIT = 200


# ---- codec ---------------------------------------------------------------------------------------


def json_text(value: Any) -> str:
    """Compact JSON as Fulu signs it: no spaces, non-ASCII and `/` unescaped, a Decimal as written."""
    if isinstance(value, Mapping):
        members = (f"{json.dumps(str(k), ensure_ascii=False)}:{json_text(v)}" for k, v in value.items())
        return "{" + ",".join(members) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(json_text(v) for v in value) + "]"
    if isinstance(value, Decimal):
        return str(value)  # keeps `46.3000` as received, so a re-serialised callback signs the same
    return json.dumps(value, ensure_ascii=False)


def fulu_sign(signed_text: str, secret: str) -> str:
    """Lower-case hex MD5 of the text's characters sorted by code point, then `secret` (UTF-8)."""
    return hashlib.md5(("".join(sorted(signed_text)) + secret).encode("utf-8")).hexdigest()


def sign_object(obj: Mapping[str, Any], secret: str) -> str:
    """The signature of a JSON object: over its compact text without the `sign` member."""
    return fulu_sign(json_text({k: v for k, v in obj.items() if k != "sign"}), secret)


def same_sign(expected: str, given: Any) -> bool:
    return isinstance(given, str) and hmac.compare_digest(expected.encode(), given.strip().lower().encode())


def china_time(now: float) -> str:
    """Fulu's `timestamp`: `YYYY-MM-DD HH:MM:SS` in China time (UTC+8)."""
    return datetime.fromtimestamp(now, CHINA).strftime("%Y-%m-%d %H:%M:%S")


def envelope(app_key: str, secret: str, method: str, biz: Mapping[str, Any], now: float) -> dict[str, str]:
    """The signed request object of one call."""
    fields = {
        "app_key": app_key,
        "method": method,
        "timestamp": china_time(now),
        "version": "2.0",
        "format": "json",
        "charset": "utf-8",
        "sign_type": "md5",
        "app_auth_token": "",
        "biz_content": json_text(biz),
    }
    fields["sign"] = sign_object(fields, secret)
    return fields


def parse_json(body: bytes | str) -> Any:
    """JSON with decimals kept exact (`Decimal`); raises ValueError for anything that is not JSON."""
    try:
        return json.loads(body, parse_float=Decimal)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


class ReplyError(Exception):
    """A reply that cannot be trusted: `malformed_reply` or `bad_signature`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Reply:
    """A verified Fulu reply: `code` as text, `result` the decoded result object (None if it is not one)."""

    code: str
    message: str | None
    result: Mapping[str, Any] | None


def read_reply(body: bytes, secret: str) -> Reply:
    """Parse `{"code", "message", "result": "<JSON>", "sign"}` and check `sign` (over the `result` string
    itself) when it is given; raises `ReplyError`."""
    try:
        data = parse_json(body)
    except ValueError:
        raise ReplyError("malformed_reply", "reply is not JSON") from None
    code = data.get("code") if isinstance(data, dict) else None
    if isinstance(code, bool) or not isinstance(code, int | str) or not str(code).strip():
        raise ReplyError("malformed_reply", "reply has no code")
    result, sign = data.get("result"), data.get("sign")
    if sign not in (None, ""):
        signed = result if isinstance(result, str) else "" if result is None else json_text(result)
        if not same_sign(fulu_sign(signed, secret), sign):
            raise ReplyError("bad_signature", "reply signature does not match")
    decoded: Any = result
    if isinstance(result, str) and result.strip():
        try:
            decoded = parse_json(result)
        except ValueError:
            decoded = None
    return Reply(str(code).strip(), text(data.get("message")), decoded if isinstance(decoded, dict) else None)


def _common(response: httpx.Response, latency_ms: float) -> dict[str, Any]:
    return {"http_status": response.status_code, "latency_ms": latency_ms, "raw": raw_text(response)}


def dispatch_outcome(
    response: httpx.Response, secret: str, options: Mapping[str, Any], latency_ms: float = 0.0
) -> DispatchOutcome:
    """Code 0 accepted; `insufficient_codes` and `reject_codes` rejected; anything else unknown."""
    common = _common(response, latency_ms)
    if response.status_code != 200:
        return DispatchOutcome.unknown(f"http_{response.status_code}", **common)
    try:
        reply = read_reply(response.content, secret)
    except ReplyError as exc:
        return DispatchOutcome.unknown(exc.code, exc.message, **common)
    if reply.code == "0":
        order_id = reply.result.get("order_id") if reply.result is not None else None
        return DispatchOutcome.accepted(text(order_id), **common)
    if reply.code in port.as_code_set(options.get("insufficient_codes")):
        # The platform's own name for a short supplier account (section 7); Fulu's code stays in the message.
        message = f"{reply.code}: {reply.message or 'insufficient balance'}"
        return DispatchOutcome.rejected("insufficient_balance", message, **common)
    if reply.code in port.as_code_set(options.get("reject_codes")):
        return DispatchOutcome.rejected(reply.code, reply.message, **common)
    return DispatchOutcome.unknown(reply.code, reply.message, **common)


def query_outcome(
    response: httpx.Response, secret: str, ref: str, options: Mapping[str, Any], latency_ms: float = 0.0
) -> QueryOutcome:
    """`result.order_status` (Fulu's SDKs: `order_state`) mapped; a `not_found_codes` code is not_found."""
    common = _common(response, latency_ms)
    if response.status_code != 200:
        return QueryOutcome("error", f"http_{response.status_code}", **common)
    try:
        reply = read_reply(response.content, secret)
    except ReplyError as exc:
        return QueryOutcome("error", exc.code, exc.message, **common)
    if reply.code != "0":
        not_found = reply.code in port.as_code_set(options.get("not_found_codes"))
        return QueryOutcome("not_found" if not_found else "error", reply.code, reply.message, **common)
    result = reply.result
    if result is None:
        return QueryOutcome("error", "malformed_reply", "result is not a JSON object", **common)
    state = result.get("order_status", result.get("order_state"))
    status = QUERY_STATES.get(state) if isinstance(state, str) else None
    if status is None:
        return QueryOutcome("error", "unexpected_reply", f"order_status={state!r}", **common)
    if result.get("customer_order_no") not in (None, ref):
        message = f"reply is for {result['customer_order_no']!r}"
        return QueryOutcome("error", "ref_mismatch", message, **common)
    return QueryOutcome(
        status,  # type: ignore[arg-type]  # a value of QUERY_STATES
        message=text(result.get("recharge_description")),
        supplier_order_id=text(result.get("order_id")),
        **common,
    )


def balance_outcome(response: httpx.Response, secret: str) -> BalanceOutcome:
    """`result.balance` in yuan -> fen (CNY)."""
    common: dict[str, Any] = {"http_status": response.status_code, "raw": raw_text(response)}
    if response.status_code != 200:
        return BalanceOutcome.failed(f"http_{response.status_code}", **common)
    try:
        reply = read_reply(response.content, secret)
    except ReplyError as exc:
        return BalanceOutcome.failed(exc.code, exc.message, **common)
    if reply.code != "0":
        return BalanceOutcome.failed(reply.code, reply.message, **common)
    balance = reply.result.get("balance") if reply.result is not None else None
    try:
        amount = port.yuan_to_fen(balance)
    except ValueError:
        return BalanceOutcome.failed("malformed_reply", f"balance={balance!r}", **common)
    return BalanceOutcome(True, amount, "CNY", **common)


# ---- channel configuration -----------------------------------------------------------------------


def _required_text(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > TEXT_LIMIT:
        raise port.InvalidChannelConfig(field, f"required, 1-{TEXT_LIMIT} characters")
    return value.strip()


def _entry(code: str, entry: Any) -> dict[str, Any]:
    field = f"products.{code}"
    if not isinstance(entry, Mapping):
        raise port.InvalidChannelConfig(field, "must be an object")
    normal = dict(entry)
    if "product_id" in entry:
        pid = entry["product_id"]
        digits = str(pid).strip() if isinstance(pid, int | str) and not isinstance(pid, bool) else ""
        if not (digits.isascii() and digits.isdigit()) or int(digits) <= 0:
            raise port.InvalidChannelConfig(f"{field}.product_id", "must be Fulu's numeric product id")
        normal["product_id"] = int(digits)
    if "charge_value" in entry:
        try:
            fen = port.yuan_to_fen(entry["charge_value"])
        except ValueError:
            fen = 0
        if fen <= 0:
            raise port.InvalidChannelConfig(f"{field}.charge_value", "must be a positive yuan amount")
        normal["charge_value"] = port.fen_to_yuan(fen)
    return normal


def _codes(value: Any, field: str) -> list[str]:
    values = value if isinstance(value, list) else [value]
    if any(isinstance(v, bool) or not isinstance(v, int | str) or not str(v).strip() for v in values):
        raise port.InvalidChannelConfig(field, "must be a list of codes (numbers or strings)")
    return sorted({str(v).strip() for v in values})


# ---- the adapter ---------------------------------------------------------------------------------


class Fulu:
    """The `fulu` protocol on the supplier port. Never raises for anything Fulu or the network does."""

    name = NAME
    has_callbacks = True
    has_balance = True
    credential_fields: tuple[str, ...] = ("app_key", "app_secret")
    secret_fields: tuple[str, ...] = ("app_secret",)
    product_fields: tuple[str, ...] = ("product_id", "charge_value")
    option_fields: tuple[str, ...] = CODE_OPTIONS

    def __init__(self, client: httpx.AsyncClient, now: Callable[[], float]) -> None:
        self._client = client
        self._now = now

    def validate(
        self, credentials: Mapping[str, Any], products: Mapping[str, Any], options: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, Any]]:
        creds = {f: _required_text(credentials.get(f), f"credentials.{f}") for f in self.credential_fields}
        extra = set(credentials) - set(self.credential_fields)
        if extra:
            raise port.InvalidChannelConfig("credentials", f"unknown fields {sorted(extra)}")
        entries = {str(code): _entry(str(code), entry) for code, entry in products.items()}
        extra = set(options) - set(self.option_fields)
        if extra:
            raise port.InvalidChannelConfig("options", f"unknown options {sorted(extra)}")
        opts = {key: _codes(options[key], f"options.{key}") for key in self.option_fields if key in options}
        return creds, entries, opts

    def serves(self, channel: port.ChannelAccess, product_code: str, business_type: str) -> bool:
        entry = channel.products.get(product_code)
        if not isinstance(entry, Mapping):
            return False  # Fulu has no default product: every product needs its entry
        return business_type == AIRTIME or bool(entry.get("product_id"))

    def supplier_ref(self, order_id: str, attempt_no: int) -> str:
        return port.compact_ref(order_id, attempt_no)

    def order_call(
        self, channel: port.ChannelAccess, req: port.DispatchRequest
    ) -> tuple[str, dict[str, Any]]:
        """The method and biz_content of an order; ValueError when the channel does not serve it."""
        if not self.serves(channel, req.product_code, req.business_type):
            raise ValueError(f"no fulu products entry serves {req.product_code!r} ({req.business_type})")
        entry = channel.products[req.product_code]
        if req.business_type == AIRTIME:
            value = Decimal(str(entry.get("charge_value") or port.fen_to_yuan(req.face_value)))
            biz = {"charge_phone": req.account, "charge_value": value, "customer_order_no": req.supplier_ref}
            return METHOD_MOBILE, biz
        biz = {
            "product_id": entry["product_id"],
            "customer_order_no": req.supplier_ref,
            "charge_account": req.account,
            "buy_num": 1,
        }
        return METHOD_DIRECT, biz

    async def dispatch(self, channel: port.ChannelAccess, req: port.DispatchRequest) -> DispatchOutcome:
        try:
            method, biz = self.order_call(channel, req)
        except (ValueError, ArithmeticError) as exc:
            return DispatchOutcome.rejected("not_served", str(exc))  # nothing was sent
        started = time.perf_counter()
        try:
            response = await self._call(channel, method, biz)
        except NoReply as exc:
            return DispatchOutcome.unknown(exc.code, exc.message, latency_ms=ms_since(started))
        return dispatch_outcome(response, self._secret(channel), channel.options, ms_since(started))

    async def query(self, channel: port.ChannelAccess, req: port.QueryRequest) -> QueryOutcome:
        started = time.perf_counter()
        try:
            response = await self._call(channel, METHOD_QUERY, {"customer_order_no": req.supplier_ref})
        except NoReply as exc:
            return QueryOutcome("error", exc.code, exc.message, latency_ms=ms_since(started))
        secret = self._secret(channel)
        return query_outcome(response, secret, req.supplier_ref, channel.options, ms_since(started))

    async def balance(self, channel: port.ChannelAccess) -> BalanceOutcome:
        try:
            response = await self._call(channel, METHOD_BALANCE, {})
        except NoReply as exc:
            return BalanceOutcome.failed(exc.code, exc.message)
        return balance_outcome(response, self._secret(channel))

    def parse_callback(
        self, channel: port.ChannelAccess, request: port.CallbackRequest, now: float
    ) -> port.CallbackData:
        # Fulu's callback carries no timestamp to bound; a replay is a repeat, which the platform ignores.
        try:
            data = parse_json(request.body)
        except ValueError:
            raise port.CallbackRefused("malformed", "malformed callback: body is not JSON") from None
        if not isinstance(data, dict):
            raise port.CallbackRefused("malformed", "malformed callback: body is not a JSON object")
        if not same_sign(sign_object(data, self._secret(channel)), data.get("sign")):
            raise port.CallbackRefused("unauthorized", "callback signature missing or wrong")
        ref, status = data.get("customer_order_no"), data.get("order_status")
        if not isinstance(ref, str) or not 1 <= len(ref) <= TEXT_LIMIT:
            raise port.CallbackRefused("malformed", "malformed callback: customer_order_no is required")
        if status not in ("success", "failed"):
            raise port.CallbackRefused("malformed", "malformed callback: order_status is not final")
        order_id, description = data.get("order_id"), data.get("recharge_description")
        for key, value in (("order_id", order_id), ("recharge_description", description)):
            if value is not None and (not isinstance(value, str | int) or len(str(value)) > 500):
                raise port.CallbackRefused("malformed", f"malformed callback: {key}")
        return port.CallbackData(
            supplier_ref=ref,
            status=status,
            supplier_order_id=text(order_id),
            message=text(description),
        )

    def ack(self, data: port.CallbackData, outcome: str = "") -> port.Ack:
        return port.Ack(200, b"success", "text/plain")  # the same text whatever the callback meant

    @staticmethod
    def _secret(channel: port.ChannelAccess) -> str:
        return str(channel.credentials.get("app_secret") or "")

    async def _call(self, channel: port.ChannelAccess, method: str, biz: Mapping[str, Any]) -> httpx.Response:
        app_key = str(channel.credentials.get("app_key") or "")
        body = json_text(envelope(app_key, self._secret(channel), method, biz, self._now())).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8"}
        request = build(
            self._client, "POST", channel.base_url, channel.timeout_s, content=body, headers=headers
        )
        return await send(self._client, request, channel.timeout_s)


def create(client: httpx.AsyncClient, now: Callable[[], float]) -> Fulu:
    return Fulu(client, now)
