"""Juhe (聚合数据) airtime `ofpay/mobile` and fuel cards `ofpay/sinopec` (SPEC section 6, `juhe`).

Two halves: pure codec functions (forms, MD5 signs, reply and callback mapping; no I/O) and `Juhe`, the thin
transport that sends them. Only `error_code` 0 with a known `game_state`, and the codes the spec lists as
"the order was not taken", are definite; every other reply is `unknown`, so the platform queries first.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

import httpx

from topup.adapters.suppliers.transport import NoReply, build, join, json_object, ms_since, raw_text, send
from topup.domain import suppliers as port
from topup.domain.suppliers import BalanceOutcome, DispatchOutcome, QueryOutcome

NAME = "juhe"
AIRTIME = "mobile_airtime"
FUEL = "fuel_card"
# error_code values after which Juhe did not take the order: key, account, IP and maintenance errors.
REJECT_CODES = frozenset({*(str(c) for c in range(10001, 10010)), "10020", "10021"})
CHARGE_TYPES = {"sinopec": 1, "petrochina": 2}
PRODUCT_FIELDS = ("cardnum", "proid", "chargeType")
OPTION_FIELDS = ("not_found_codes",)
QUERY_STATES: dict[str, port.QueryStatus] = {"0": "processing", "1": "success", "9": "failed"}
CALLBACK_STATES: dict[str, port.CallbackStatus] = {"1": "success", "9": "failed"}
ACK = port.Ack(200, b"success", "text/plain")


# ---- codec ---------------------------------------------------------------------------------------


def md5_sign(*values: str) -> str:
    """Lower-case hex MD5 over the plain concatenation of `values` (UTF-8), as Juhe signs."""
    return hashlib.md5("".join(values).encode("utf-8")).hexdigest()


def airtime_form(openid: str, key: str, phoneno: str, cardnum: str, orderid: str) -> dict[str, str]:
    sign = md5_sign(openid, key, phoneno, cardnum, orderid)
    return {"phoneno": phoneno, "cardnum": cardnum, "orderid": orderid, "key": key, "sign": sign}


def fuel_form(
    openid: str, key: str, proid: str, cardnum: str, game_userid: str, orderid: str, charge_type: int
) -> dict[str, str]:
    sign = md5_sign(openid, key, proid, cardnum, game_userid, orderid)
    return {
        "proid": proid,
        "cardnum": cardnum,
        "orderid": orderid,
        "game_userid": game_userid,
        "chargeType": str(charge_type),
        "key": key,
        "sign": sign,
    }


def callback_sign(key: str, sporder_id: str, orderid: str) -> str:
    return md5_sign(key, sporder_id, orderid)


def family_path(business_type: str) -> str:
    """The URL family of a business type: fuel cards under `ofpay/sinopec`, the rest `ofpay/mobile`."""
    return "/ofpay/sinopec" if business_type == FUEL else "/ofpay/mobile"


def _code(value: Any) -> str | None:
    """`error_code` as text (Juhe sends a number; a numeric string is accepted), None if absent/odd."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    return str(value).strip() or None


def _text(value: Any) -> str | None:
    return None if value is None or isinstance(value, dict | list) else str(value)


def _cost(value: Any) -> int | None:
    try:
        return port.yuan_to_fen(value)
    except ValueError:
        return None


def dispatch_outcome(status: int, body: bytes, orderid: str, **common: Any) -> DispatchOutcome:
    """Map an `onlineorder` reply (HTTP status and body) to a dispatch outcome."""
    if status != 200:
        return DispatchOutcome("unknown", code=f"http_{status}", **common)
    data = json_object(body)
    if data is None:
        return DispatchOutcome.unknown("malformed_reply", "reply is not a JSON object", **common)
    code, reason = _code(data.get("error_code")), _text(data.get("reason"))
    if code is None:
        return DispatchOutcome.unknown("malformed_reply", "reply has no error_code", **common)
    if code != "0":
        if code in REJECT_CODES:
            return DispatchOutcome.rejected(code, reason, **common)
        return DispatchOutcome.unknown(code, reason, **common)
    result = data.get("result")
    if not isinstance(result, dict):
        return DispatchOutcome.unknown("unexpected_reply", "error_code 0 without a result", **common)
    uorderid = result.get("uorderid")
    if uorderid is not None and str(uorderid) != orderid:
        return DispatchOutcome.unknown("ref_mismatch", f"reply is for {uorderid!r}", **common)
    state, sporder_id = _code(result.get("game_state")), _text(result.get("sporder_id"))
    if state == "0":
        return DispatchOutcome("accepted", sporder_id, cost=_cost(result.get("ordercash")), **common)
    if state == "1":
        return DispatchOutcome("succeeded", sporder_id, cost=_cost(result.get("ordercash")), **common)
    if state == "9":
        return DispatchOutcome("rejected", sporder_id, code="game_state_9", message=reason, **common)
    return DispatchOutcome.unknown("unexpected_reply", f"game_state={state!r}", **common)


def query_outcome(status: int, body: bytes, not_found_codes: frozenset[str], **common: Any) -> QueryOutcome:
    """Map an `ordersta` reply to a query outcome; `error` means ask again later."""
    if status != 200:
        return QueryOutcome("error", code=f"http_{status}", **common)
    data = json_object(body)
    if data is None:
        return QueryOutcome("error", code="malformed_reply", message="reply is not a JSON object", **common)
    code, reason = _code(data.get("error_code")), _text(data.get("reason"))
    if code is None:
        return QueryOutcome("error", code="malformed_reply", message="reply has no error_code", **common)
    if code != "0":
        return QueryOutcome("not_found" if code in not_found_codes else "error", code, reason, **common)
    result = data.get("result")
    state = _code(result.get("game_state")) if isinstance(result, dict) else None
    mapped = QUERY_STATES.get(state or "")
    if mapped is None or not isinstance(result, dict):
        return QueryOutcome("error", code="unexpected_reply", message=f"game_state={state!r}", **common)
    sporder_id = _text(result.get("sporder_id"))
    return QueryOutcome(mapped, message=reason, supplier_order_id=sporder_id, **common)


def balance_outcome(status: int, body: bytes, **common: Any) -> BalanceOutcome:
    """Map a `yue` reply: `result.money` in yuan -> fen, CNY."""
    if status != 200:
        return BalanceOutcome.failed(f"http_{status}", **common)
    data = json_object(body)
    if data is None:
        return BalanceOutcome.failed("malformed_reply", "reply is not a JSON object", **common)
    code, reason = _code(data.get("error_code")), _text(data.get("reason"))
    if code != "0":
        return BalanceOutcome.failed(code or "malformed_reply", reason, **common)
    result = data.get("result")
    money = result.get("money") if isinstance(result, dict) else None
    try:
        amount = port.yuan_to_fen(money)
    except ValueError:
        return BalanceOutcome.failed("malformed_reply", f"money={money!r}", **common)
    return BalanceOutcome(True, amount, "CNY", **common)


def parse_callback_body(key: str, body: bytes) -> port.CallbackData:
    """Verify and map a form-encoded callback; raises `CallbackRefused`."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise port.CallbackRefused("malformed", "malformed callback: body is not a form") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise port.CallbackRefused("malformed", f"malformed callback: {name} given twice")
        fields[name] = value
    sporder_id, orderid = fields.get("sporder_id", ""), fields.get("orderid", "")
    if not sporder_id or not orderid or len(sporder_id) > 64 or len(orderid) > 64:
        raise port.CallbackRefused("malformed", "malformed callback: sporder_id and orderid are required")
    expected = callback_sign(key, sporder_id, orderid)
    received = fields.get("sign", "").strip().lower().encode("utf-8")
    if not key or not hmac.compare_digest(expected.encode("ascii"), received):
        raise port.CallbackRefused("unauthorized", "callback sign does not match")
    status = CALLBACK_STATES.get(fields.get("sta", ""))
    if status is None:
        raise port.CallbackRefused("malformed", f"malformed callback: sta={fields.get('sta')!r}")
    return port.CallbackData(
        supplier_ref=orderid,
        status=status,
        supplier_order_id=sporder_id,
        code=None if status == "success" else "sta_9",
        message=fields.get("err_msg", "")[:500] or None,
    )


# ---- configuration -------------------------------------------------------------------------------


def _required_text(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise port.InvalidChannelConfig(field, "required, 1-200 characters")
    return value.strip()


def _entry(code: str, entry: Any) -> dict[str, Any]:
    where = f"products.{code}"
    if not isinstance(entry, Mapping):
        raise port.InvalidChannelConfig(where, "must be an object")
    misspelt = _misspelt(entry, PRODUCT_FIELDS)
    if misspelt:
        raise port.InvalidChannelConfig(f"{where}.{misspelt}", f"did you mean one of {PRODUCT_FIELDS}?")
    out = dict(entry)
    if "cardnum" in entry:
        cardnum = entry["cardnum"]
        try:
            fen = port.yuan_to_fen(cardnum) if isinstance(cardnum, int | str) else 0
        except ValueError:
            fen = 0
        if fen <= 0:
            raise port.InvalidChannelConfig(
                f"{where}.cardnum", "a positive amount (yuan, at most 2 decimals)"
            )
        out["cardnum"] = port.fen_to_yuan(fen)
    if "proid" in entry:
        proid = entry["proid"]
        if isinstance(proid, bool) or not isinstance(proid, int | str) or not str(proid).strip().isalnum():
            raise port.InvalidChannelConfig(f"{where}.proid", "Juhe's product id (letters and digits)")
        if "cardnum" not in entry:
            raise port.InvalidChannelConfig(f"{where}.cardnum", "required with proid (fuel cards)")
        out["proid"] = str(proid).strip()
    if "chargeType" in entry:
        if "proid" not in entry:
            raise port.InvalidChannelConfig(f"{where}.chargeType", "only for fuel-card entries (with proid)")
        if str(entry["chargeType"]) not in ("1", "2") or isinstance(entry["chargeType"], bool):
            raise port.InvalidChannelConfig(f"{where}.chargeType", "1 (Sinopec) or 2 (PetroChina)")
        out["chargeType"] = int(entry["chargeType"])
    price = entry.get("price")
    if "price" in entry and (isinstance(price, bool) or not isinstance(price, int) or price < 0):
        raise port.InvalidChannelConfig(f"{where}.price", "a non-negative integer in fen")
    return out


def _squashed(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "").rstrip("s")


def _misspelt(given: Mapping[str, Any], known: tuple[str, ...]) -> str | None:
    """A key that is one of `known` but for case, separators or a plural (other keys are kept as they are,
    e.g. a product's `price` in fen, SPEC section 8)."""
    squashed = {_squashed(k) for k in known}
    return next((k for k in given if k not in known and _squashed(str(k)) in squashed), None)


def _codes(values: Any) -> list[str]:
    items = values if isinstance(values, list | tuple) else [values]
    for value in items:
        if isinstance(value, bool) or not isinstance(value, int | str) or not 1 <= len(str(value)) <= 64:
            raise port.InvalidChannelConfig("options.not_found_codes", "a list of codes (strings or numbers)")
    return sorted(port.as_code_set(items))


# ---- the adapter ---------------------------------------------------------------------------------


class Juhe:
    """The `juhe` protocol on the supplier port. Never raises for anything Juhe or the network does."""

    name = NAME
    has_callbacks = True
    has_balance = True
    credential_fields: tuple[str, ...] = ("openid", "key")
    secret_fields: tuple[str, ...] = ("openid", "key")
    product_fields: tuple[str, ...] = PRODUCT_FIELDS
    option_fields: tuple[str, ...] = OPTION_FIELDS

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
        misspelt = _misspelt(options, OPTION_FIELDS)
        if misspelt:
            raise port.InvalidChannelConfig(f"options.{misspelt}", f"did you mean one of {OPTION_FIELDS}?")
        opts = dict(options)
        if "not_found_codes" in options:
            opts["not_found_codes"] = _codes(options["not_found_codes"])
        return creds, entries, opts

    def serves(self, channel: port.ChannelAccess, product_code: str, business_type: str) -> bool:
        entry = channel.products.get(product_code)
        if business_type == AIRTIME:
            return entry is None or "proid" not in entry  # cardnum defaults to the face value
        if business_type == FUEL:
            return entry is not None and "proid" in entry and "cardnum" in entry
        return False

    def supplier_ref(self, order_id: str, attempt_no: int) -> str:
        ref = port.compact_ref(order_id, attempt_no)
        if len(ref) >= 8:
            return ref
        # Juhe wants 8-32 characters; a short id is hashed (as compact_ref does for long ones).
        return hashlib.sha256(order_id.encode()).hexdigest()[:16] + f"A{attempt_no}"

    async def dispatch(self, channel: port.ChannelAccess, req: port.DispatchRequest) -> DispatchOutcome:
        openid, key = self._credentials(channel)
        entry = channel.products.get(req.product_code) or {}
        if req.business_type == AIRTIME:
            cardnum = str(entry.get("cardnum") or port.fen_to_yuan(req.face_value))
            form = airtime_form(openid, key, req.account, cardnum, req.supplier_ref)
        elif req.business_type == FUEL and "proid" in entry and "cardnum" in entry:
            charge_type = entry.get("chargeType") or CHARGE_TYPES.get(req.carrier or "")
            if charge_type is None:
                message = f"no chargeType for card issuer {req.carrier!r}"
                return DispatchOutcome.rejected("unsupported_issuer", message)
            form = fuel_form(
                openid,
                key,
                str(entry["proid"]),
                str(entry["cardnum"]),
                req.account,
                req.supplier_ref,
                int(charge_type),
            )
        else:
            message = f"juhe does not serve {req.product_code!r} ({req.business_type})"
            return DispatchOutcome.rejected("not_served", message)
        url = join(channel.base_url, family_path(req.business_type) + "/onlineorder")
        started = time.perf_counter()
        try:
            request = build(self._client, "POST", url, channel.timeout_s, data=form)
            response = await send(self._client, request, channel.timeout_s)
        except NoReply as exc:
            return DispatchOutcome.unknown(exc.code, exc.message, latency_ms=ms_since(started))
        common = _common(response, ms_since(started))
        return dispatch_outcome(response.status_code, response.content, req.supplier_ref, **common)

    async def query(self, channel: port.ChannelAccess, req: port.QueryRequest) -> QueryOutcome:
        _, key = self._credentials(channel)
        url = join(channel.base_url, family_path(req.business_type) + "/ordersta")
        params = {"key": key, "orderid": req.supplier_ref}
        not_found = port.as_code_set(channel.options.get("not_found_codes"))
        started = time.perf_counter()
        try:
            request = build(self._client, "GET", url, channel.timeout_s, params=params)
            response = await send(self._client, request, channel.timeout_s)
        except NoReply as exc:
            return QueryOutcome("error", exc.code, exc.message, latency_ms=ms_since(started))
        common = _common(response, ms_since(started))
        return query_outcome(response.status_code, response.content, not_found, **common)

    async def balance(self, channel: port.ChannelAccess) -> BalanceOutcome:
        openid, key = self._credentials(channel)
        timestamp = str(int(self._now()))
        params = {"key": key, "timestamp": timestamp, "sign": md5_sign(openid, key, timestamp)}
        url = join(channel.base_url, "/ofpay/mobile/yue")
        try:
            request = build(self._client, "GET", url, channel.timeout_s, params=params)
            response = await send(self._client, request, channel.timeout_s)
        except NoReply as exc:
            return BalanceOutcome.failed(exc.code, exc.message)
        common = {"http_status": response.status_code, "raw": raw_text(response)}
        return balance_outcome(response.status_code, response.content, **common)

    def parse_callback(
        self, channel: port.ChannelAccess, request: port.CallbackRequest, now: float
    ) -> port.CallbackData:
        return parse_callback_body(self._credentials(channel)[1], request.body)

    def ack(self, data: port.CallbackData, outcome: str = "") -> port.Ack:
        return ACK

    @staticmethod
    def _credentials(channel: port.ChannelAccess) -> tuple[str, str]:
        return str(channel.credentials.get("openid", "")), str(channel.credentials.get("key", ""))


def _common(response: httpx.Response, latency_ms: float) -> dict[str, Any]:
    return {"http_status": response.status_code, "latency_ms": latency_ms, "raw": raw_text(response)}


def create(client: httpx.AsyncClient, now: Callable[[], float]) -> Juhe:
    return Juhe(client, now)
