"""DingConnect (SPEC section 6 "dingconnect"): JSON with PascalCase fields, the key in an `api_key` header.

Two halves: the codec (`transfer_body`, `international_number`, `dispatch_outcome`, `query_outcome`,
`balance_outcome`) is pure and tested against hand-written vectors; `DingConnect` sends and times out.
DingConnect puts its errors inside HTTP 200 bodies (`ResultCode` + `ErrorCodes`) and sends no callbacks,
so every order is carried to its end by `ListTransferRecords`. It does not reliably dedupe
`DistributorRef`, which is why a supplier ref is sent once and never again (SPEC section 6).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
import orjson
import phonenumbers

from topup.adapters.suppliers.transport import NoReply, build, join, json_object, ms_since, raw_text, send
from topup.domain import suppliers as port
from topup.domain.suppliers import BalanceOutcome, DispatchOutcome, QueryOutcome

NAME = "dingconnect"
SUCCESS_RESULT = 1
REJECT_RESULTS = frozenset({4, 5})
INSUFFICIENT_BALANCE = "InsufficientBalance"
MOBILE_TYPES = frozenset({"mobile_airtime", "mobile_data"})
PENDING_STATES = frozenset({"Submitted", "Processing"})
QUERY_STATES: dict[str, port.QueryStatus] = {
    "Complete": "success",
    "Failed": "failed",
    "Submitted": "processing",
    "Processing": "processing",
}
MAX_SKU_LEN = 100
MAX_KEY_LEN = 200


# ---- codec ---------------------------------------------------------------------------------------


def decimal_text(value: Any) -> str:
    """A positive amount as plain decimal text (`50`, `7.5`); ValueError for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError(f"not an amount: {value!r}")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None
    if not amount.is_finite() or amount <= 0:
        raise ValueError(f"not a positive amount: {value!r}")
    return format(amount.normalize(), "f")


def international_number(account: str, business_type: str) -> str | None:
    """`AccountNumber`: a phone number in international form without `+` (13800138000 ->
    8613800138000); other accounts as they are. None for a mobile account that is not a number."""
    if business_type not in MOBILE_TYPES:
        return account
    try:
        number = phonenumbers.parse(account, "CN")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164).lstrip("+")


def transfer_body(entry: Mapping[str, Any], account_number: str, supplier_ref: str) -> bytes:
    """The `SendTransfer` body; `SendValue` is written as a JSON number straight from its decimal text."""
    send_value = orjson.Fragment(decimal_text(entry["SendValue"]).encode())
    return orjson.dumps(
        {
            "SkuCode": str(entry["SkuCode"]),
            "SendValue": send_value,
            "SendCurrencyIso": str(entry["SendCurrencyIso"]),
            "AccountNumber": account_number,
            "DistributorRef": supplier_ref,
            "ValidateOnly": False,
        }
    )


def _result_code(data: Mapping[str, Any]) -> int | None:
    value = data.get("ResultCode")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _result_label(result: int | None) -> str:
    return "unexpected_reply" if result is None else f"result_code_{result}"


def _is_currency(text: str) -> bool:
    return len(text) == 3 and text.isascii() and text.isalpha()


def _errors(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    errors = data.get("ErrorCodes")
    if not isinstance(errors, list):
        return []
    return [e for e in errors if isinstance(e, Mapping)]


def _first_error(data: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The first `ErrorCodes[]` entry as (Code, Context)."""
    for error in _errors(data):
        code = error.get("Code")
        if code is not None:
            context = error.get("Context")
            return str(code), None if context is None else str(context)
    return None, None


def _record(data: Mapping[str, Any]) -> Mapping[str, Any]:
    record = data.get("TransferRecord")
    return record if isinstance(record, Mapping) else {}


def _transfer_id(record: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(TransferRef, DistributorRef) of a transfer record."""
    ids = record.get("TransferId")
    if not isinstance(ids, Mapping):
        return None, None
    ref, distributor_ref = ids.get("TransferRef"), ids.get("DistributorRef")
    return (
        None if ref is None else str(ref),
        None if distributor_ref is None else str(distributor_ref),
    )


def dispatch_outcome(
    status: int, body: bytes, supplier_ref: str, common: Mapping[str, Any] | None = None
) -> DispatchOutcome:
    """Classify a `SendTransfer` reply. Only the rows the spec names are definite; the rest is unknown."""
    kw: dict[str, Any] = dict(common or {})
    kw.setdefault("http_status", status)
    data = json_object(body)
    if status != 200:
        codes = {str(e.get("Code")) for e in _errors(data or {})}
        if status == 500 and INSUFFICIENT_BALANCE in codes:
            return DispatchOutcome.rejected(INSUFFICIENT_BALANCE, "DingConnect balance too low", **kw)
        return DispatchOutcome.unknown(f"http_{status}", **kw)
    if data is None:
        return DispatchOutcome.unknown("malformed_reply", "reply is not a JSON object", **kw)
    result = _result_code(data)
    error_code, context = _first_error(data)
    if result in REJECT_RESULTS:
        return DispatchOutcome.rejected(error_code or f"result_code_{result}", context, **kw)
    if result != SUCCESS_RESULT:
        message = f"ResultCode={data.get('ResultCode')!r}" + (f" {error_code}" if error_code else "")
        return DispatchOutcome.unknown(_result_label(result), message, **kw)
    record = _record(data)
    transfer_ref, distributor_ref = _transfer_id(record)
    if distributor_ref is not None and distributor_ref != supplier_ref:
        return DispatchOutcome.unknown("ref_mismatch", f"reply is for {distributor_ref!r}", **kw)
    state = record.get("ProcessingState")
    kw["supplier_order_id"] = transfer_ref
    if state == "Complete":
        return DispatchOutcome("succeeded", **kw)
    if state in PENDING_STATES:
        return DispatchOutcome("accepted", **kw)
    if state == "Failed":
        return DispatchOutcome("failed", code=error_code or "Failed", message=context, **kw)
    return DispatchOutcome.unknown("unexpected_reply", f"ProcessingState={state!r}", **kw)


def query_outcome(
    status: int, body: bytes, supplier_ref: str, common: Mapping[str, Any] | None = None
) -> QueryOutcome:
    """Classify a `ListTransferRecords` reply; `error` whenever it is not a clear answer."""
    kw: dict[str, Any] = dict(common or {})
    kw.setdefault("http_status", status)
    if status != 200:
        return QueryOutcome("error", code=f"http_{status}", **kw)
    data = json_object(body)
    if data is None:
        return QueryOutcome("error", code="malformed_reply", message="reply is not a JSON object", **kw)
    result = _result_code(data)
    if result != SUCCESS_RESULT:
        error_code, context = _first_error(data)
        return QueryOutcome("error", code=_result_label(result), message=error_code or context, **kw)
    items = data.get("Items")
    if not isinstance(items, list):
        return QueryOutcome("error", code="malformed_reply", message="Items is not a list", **kw)
    if not items:
        return QueryOutcome("not_found", **kw)
    item = items[0] if isinstance(items[0], Mapping) else {}
    record = _record(item)
    transfer_ref, distributor_ref = _transfer_id(record)
    if distributor_ref is not None and distributor_ref != supplier_ref:
        return QueryOutcome("error", code="ref_mismatch", message=f"item is for {distributor_ref!r}", **kw)
    state = record.get("ProcessingState")
    query_status = QUERY_STATES.get(state) if isinstance(state, str) else None
    if query_status is None:
        return QueryOutcome("error", code="unexpected_reply", message=f"ProcessingState={state!r}", **kw)
    code: str | None = None
    message: str | None = None
    if query_status == "failed":
        code, message = _first_error(item)
        code = code or "Failed"
    return QueryOutcome(query_status, code=code, message=message, supplier_order_id=transfer_ref, **kw)


def balance_outcome(status: int, body: bytes, raw: str | None = None) -> BalanceOutcome:
    """Read `GetBalance`: `Balance` (read as an exact decimal) in minor units of `CurrencyIso`."""
    kw: dict[str, Any] = {"http_status": status, "raw": raw}
    if status != 200:
        return BalanceOutcome.failed(f"http_{status}", **kw)
    try:
        data = json.loads(body, parse_float=Decimal)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return BalanceOutcome.failed("malformed_reply", "reply is not a JSON object", **kw)
    result = _result_code(data)
    if "ResultCode" in data and result != SUCCESS_RESULT:
        error_code, context = _first_error(data)
        return BalanceOutcome.failed(_result_label(result), error_code or context, **kw)
    amount, currency = data.get("Balance"), data.get("CurrencyIso")
    if not isinstance(currency, str) or not _is_currency(currency.strip()):
        return BalanceOutcome.failed("malformed_reply", f"CurrencyIso={currency!r}", **kw)
    currency = currency.strip().upper()
    if isinstance(amount, bool) or not isinstance(amount, int | Decimal | str):
        return BalanceOutcome.failed("malformed_reply", f"Balance={amount!r}", **kw)
    try:
        minor = port.minor_units(amount, currency)
    except ValueError as exc:
        return BalanceOutcome.failed("malformed_reply", f"Balance: {exc}", **kw)
    return BalanceOutcome(True, minor, currency, **kw)


# ---- the adapter ---------------------------------------------------------------------------------


class DingConnect:
    """The `dingconnect` protocol on the supplier port."""

    name = NAME
    has_callbacks = False
    has_balance = True
    credential_fields: tuple[str, ...] = ("api_key",)
    secret_fields: tuple[str, ...] = ("api_key",)
    product_fields: tuple[str, ...] = ("SkuCode", "SendValue", "SendCurrencyIso")
    option_fields: tuple[str, ...] = ()

    def __init__(self, client: httpx.AsyncClient, now: Callable[[], float]) -> None:
        self._client = client
        self._now = now

    def validate(
        self, credentials: Mapping[str, Any], products: Mapping[str, Any], options: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, Any]]:
        api_key = credentials.get("api_key")
        if not isinstance(api_key, str) or not 1 <= len(api_key.strip()) <= MAX_KEY_LEN:
            raise port.InvalidChannelConfig("credentials.api_key", f"required, 1-{MAX_KEY_LEN} characters")
        extra = set(credentials) - {"api_key"}
        if extra:
            raise port.InvalidChannelConfig("credentials", f"unknown fields {sorted(extra)}")
        return {"api_key": api_key.strip()}, {c: _product(c, e) for c, e in products.items()}, dict(options)

    def serves(self, channel: port.ChannelAccess, product_code: str, business_type: str) -> bool:
        entry = channel.products.get(product_code)
        return isinstance(entry, Mapping) and all(entry.get(f) is not None for f in self.product_fields)

    def supplier_ref(self, order_id: str, attempt_no: int) -> str:
        return port.compact_ref(order_id, attempt_no)

    async def dispatch(self, channel: port.ChannelAccess, req: port.DispatchRequest) -> DispatchOutcome:
        # Refusals found before sending are definite: DingConnect never saw the order.
        entry = channel.products.get(req.product_code)
        if entry is None or not self.serves(channel, req.product_code, req.business_type):
            return DispatchOutcome.rejected("product_not_configured", f"no products.{req.product_code}")
        account_number = international_number(req.account, req.business_type)
        if account_number is None:
            return DispatchOutcome.rejected("invalid_account", f"{req.account!r} is not a phone number")
        try:
            body = transfer_body(entry, account_number, req.supplier_ref)
        except ValueError as exc:
            return DispatchOutcome.rejected("product_not_configured", f"products.{req.product_code}: {exc}")
        started = time.perf_counter()
        try:
            response = await self._send(channel, "POST", "/SendTransfer", body)
        except NoReply as exc:
            return DispatchOutcome.unknown(exc.code, exc.message, latency_ms=ms_since(started))
        common = {"latency_ms": ms_since(started), "raw": raw_text(response)}
        return dispatch_outcome(response.status_code, response.content, req.supplier_ref, common)

    async def query(self, channel: port.ChannelAccess, req: port.QueryRequest) -> QueryOutcome:
        body = orjson.dumps({"DistributorRef": req.supplier_ref, "Take": 1})
        started = time.perf_counter()
        try:
            response = await self._send(channel, "POST", "/ListTransferRecords", body)
        except NoReply as exc:
            return QueryOutcome("error", exc.code, exc.message, latency_ms=ms_since(started))
        common = {"latency_ms": ms_since(started), "raw": raw_text(response)}
        return query_outcome(response.status_code, response.content, req.supplier_ref, common)

    async def balance(self, channel: port.ChannelAccess) -> BalanceOutcome:
        try:
            response = await self._send(channel, "GET", "/GetBalance", b"")
        except NoReply as exc:
            return BalanceOutcome.failed(exc.code, exc.message)
        return balance_outcome(response.status_code, response.content, raw_text(response))

    def parse_callback(
        self, channel: port.ChannelAccess, request: port.CallbackRequest, now: float
    ) -> port.CallbackData:
        raise port.CallbackRefused(
            "malformed", "DingConnect sends no callbacks; its orders are settled by status queries"
        )

    def ack(self, data: port.CallbackData, outcome: str = "") -> port.Ack:
        return port.Ack(200, b"", "text/plain")  # never used: no callback is ever accepted

    async def _send(self, channel: port.ChannelAccess, method: str, path: str, body: bytes) -> httpx.Response:
        headers = {"api_key": str(channel.credentials.get("api_key", "")), "Accept": "application/json"}
        if body:
            headers["Content-Type"] = "application/json"
        url = join(channel.base_url, path)
        request = build(self._client, method, url, channel.timeout_s, content=body or None, headers=headers)
        return await send(self._client, request, channel.timeout_s)


def _product(code: str, entry: Any) -> dict[str, Any]:
    """One normalised `products` entry: all three DingConnect fields required, other fields kept."""
    where = f"products.{code}"
    if not isinstance(entry, Mapping):
        raise port.InvalidChannelConfig(where, "must be an object")
    sku = entry.get("SkuCode")
    if not isinstance(sku, str) or not 1 <= len(sku.strip()) <= MAX_SKU_LEN:
        raise port.InvalidChannelConfig(f"{where}.SkuCode", f"required, 1-{MAX_SKU_LEN} characters")
    try:
        send_value = decimal_text(entry.get("SendValue"))
    except ValueError:
        raise port.InvalidChannelConfig(f"{where}.SendValue", "required, a positive decimal amount") from None
    currency = entry.get("SendCurrencyIso")
    if not isinstance(currency, str) or not _is_currency(currency.strip()):
        raise port.InvalidChannelConfig(f"{where}.SendCurrencyIso", "required, an ISO 4217 code like CNY")
    return {
        **entry,
        "SkuCode": sku.strip(),
        "SendValue": send_value,
        "SendCurrencyIso": currency.strip().upper(),
    }


def create(client: httpx.AsyncClient, now: Callable[[], float]) -> DingConnect:
    return DingConnect(client, now)
