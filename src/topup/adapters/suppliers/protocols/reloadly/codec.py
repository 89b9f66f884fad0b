"""The pure half of the `reloadly` protocol: product entries, the order body, and what Reloadly's replies
and webhooks mean in platform terms (SPEC section 6 `reloadly`). No I/O here."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from topup.adapters.suppliers.transport import json_object, text
from topup.domain import suppliers as port
from topup.domain.suppliers import BalanceOutcome, DispatchOutcome, QueryOutcome

WEBHOOK_WINDOW_S = 300
DUPLICATE_REF = "CUSTOM_IDENTIFIER_ALREADY_USED"
REJECTING_HTTP = frozenset({400, 403, 404, 422})
ORDER_KINDS: dict[str, port.DispatchKind] = {
    "SUCCESSFUL": "succeeded",
    "PROCESSING": "accepted",
    "FAILED": "failed",
    "REFUNDED": "failed",
}
STATUSES: dict[str, port.CallbackStatus] = {
    "SUCCESSFUL": "success",
    "PROCESSING": "processing",
    "FAILED": "failed",
    "REFUNDED": "failed",
}
MOBILE_TYPES = frozenset({"mobile_airtime", "mobile_data"})
REQUIRED_CREDENTIALS = ("client_id", "client_secret", "webhook_secret")
CREDENTIALS = (*REQUIRED_CREDENTIALS, "auth_url")
PRODUCT_FIELDS = {f.lower(): f for f in ("operatorId", "amount", "useLocalAmount", "countryCode")}
"""Known entry fields by their loose spelling, to catch `operator_id` or `countrycode`."""


@dataclass(frozen=True)
class Product:
    """One `products` entry: what Reloadly is asked to top up for one of our products."""

    operator_id: int
    amount: Decimal
    use_local_amount: bool = False
    country_code: str = "CN"

    @classmethod
    def parse(cls, entry: Any) -> Product:
        """The entry checked; raises `InvalidChannelConfig` naming the entry's field."""
        if not isinstance(entry, Mapping):
            raise port.InvalidChannelConfig("", "must be an object")
        for key in entry:
            near = PRODUCT_FIELDS.get(str(key).replace("_", "").lower())
            if near is not None and near != key:
                raise port.InvalidChannelConfig(str(key), f"unknown field; did you mean {near!r}?")
        operator_id = entry.get("operatorId")
        if isinstance(operator_id, str) and operator_id.isascii() and operator_id.isdigit():
            operator_id = int(operator_id)
        if not isinstance(operator_id, int) or isinstance(operator_id, bool) or operator_id <= 0:
            raise port.InvalidChannelConfig("operatorId", "required, a positive integer")
        local = entry.get("useLocalAmount", False)
        if not isinstance(local, bool):
            raise port.InvalidChannelConfig("useLocalAmount", "must be true or false")
        country = entry.get("countryCode", "CN")
        if (
            not isinstance(country, str)
            or len(country) != 2
            or not country.isascii()
            or not country.isalpha()
        ):
            raise port.InvalidChannelConfig("countryCode", "must be an ISO 3166 alpha-2 code")
        return cls(operator_id, parse_amount(entry.get("amount")), local, country.upper())

    def as_config(self) -> dict[str, Any]:
        whole = self.amount == self.amount.to_integral_value()
        # A float keeps the exact decimal text here: at most 2 decimals and 12 integer digits.
        amount: int | float = int(self.amount) if whole else float(self.amount)
        return {
            "operatorId": self.operator_id,
            "amount": amount,
            "useLocalAmount": self.use_local_amount,
            "countryCode": self.country_code,
        }


def parse_amount(value: Any) -> Decimal:
    """A positive amount with at most 2 decimals, exactly as written (`10.5` stays `10.5`)."""
    problem = port.InvalidChannelConfig("amount", "required, a positive number with at most 2 decimals")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise problem
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise problem from None
    if not amount.is_finite() or amount <= 0 or amount >= 10**12 or amount != round(amount, 2):
        raise problem
    return amount


def number_text(amount: Decimal) -> bytes:
    """A decimal as a JSON number without trailing zeros: `10`, `10.5`, `0.01`."""
    return format(amount.normalize(), "f").encode("ascii")


def order_body(product: Product, supplier_ref: str, account: str) -> bytes:
    """The JSON body of `POST /topups`; `amount` is a JSON number written from the decimal itself."""
    return orjson.dumps(
        {
            "operatorId": product.operator_id,
            "amount": orjson.Fragment(number_text(product.amount)),
            "useLocalAmount": product.use_local_amount,
            "customIdentifier": supplier_ref,
            "recipientPhone": {"countryCode": product.country_code, "number": account},
        }
    )


def _fen(value: Any) -> int | None:
    try:
        fen = port.yuan_to_fen(value)
    except ValueError:
        return None
    return fen if fen >= 0 else None


def reported_cost(data: Mapping[str, Any]) -> int | None:
    """What a top-up reply says it charged, in fen, when it charged in CNY (no exchange rates here)."""
    info = data.get("balanceInfo")
    if isinstance(info, Mapping) and info.get("currencyCode") == "CNY" and info.get("cost") is not None:
        return _fen(info.get("cost"))
    if data.get("requestedAmountCurrencyCode") != "CNY":
        return None
    requested, discount = data.get("requestedAmount"), data.get("discount")
    if discount is not None and data.get("discountCurrencyCode") == "CNY":
        paid, off = _fen(requested), _fen(discount)
        return None if paid is None or off is None or off > paid else paid - off
    return _fen(requested)


def classify_order(status_code: int, body: bytes, supplier_ref: str) -> DispatchOutcome:
    """A `POST /topups` reply as a dispatch outcome (without latency and raw text)."""
    data = json_object(body)
    if status_code == 200:
        if data is None:
            return DispatchOutcome.unknown("malformed_reply", "reply is not a JSON object", http_status=200)
        status = data.get("status")
        kind = ORDER_KINDS.get(status) if isinstance(status, str) else None
        if kind is None:
            return DispatchOutcome.unknown("unexpected_reply", f"status={status!r}", http_status=200)
        if data.get("customIdentifier") not in (None, supplier_ref):
            message = f"reply is for {data['customIdentifier']!r}"
            return DispatchOutcome.unknown("ref_mismatch", message, http_status=200)
        outcome = DispatchOutcome(kind, supplier_order_id=text(data.get("transactionId")), http_status=200)
        if kind == "failed":
            outcome.code, outcome.message = status, text(data.get("message"))
        if kind == "succeeded":
            outcome.cost = reported_cost(data)
        return outcome
    code = data.get("errorCode") if data is not None else None
    detail = text(data.get("message")) if data is not None else None
    if status_code in REJECTING_HTTP and isinstance(code, str) and code and code != DUPLICATE_REF:
        return DispatchOutcome.rejected(code, detail, http_status=status_code)
    if code == DUPLICATE_REF:  # maybe our own earlier order: only the query can tell
        return DispatchOutcome.unknown(DUPLICATE_REF, detail, http_status=status_code)
    return DispatchOutcome.unknown(f"http_{status_code}", detail, http_status=status_code)


def classify_query(status_code: int, body: bytes, supplier_ref: str) -> QueryOutcome:
    """A `GET /topups/reports/transactions?customIdentifier=` reply as a query outcome."""
    if status_code != 200:
        return QueryOutcome("error", code=f"http_{status_code}", http_status=status_code)
    data = json_object(body)
    content = data.get("content") if data is not None else None
    if not isinstance(content, list):
        return QueryOutcome("error", code="malformed_reply", message="no content list", http_status=200)
    if not content:
        return QueryOutcome("not_found", http_status=200)
    ours = [
        t for t in content if isinstance(t, Mapping) and t.get("customIdentifier") in (None, supplier_ref)
    ]
    if not ours:
        return QueryOutcome(
            "error", code="ref_mismatch", message="no transaction for our ref", http_status=200
        )
    status = ours[0].get("status")
    mapped = STATUSES.get(status) if isinstance(status, str) else None
    if mapped is None:
        return QueryOutcome("error", code="unexpected_reply", message=f"status={status!r}", http_status=200)
    return QueryOutcome(
        mapped,
        code=status if mapped == "failed" else None,
        http_status=200,
        supplier_order_id=text(ours[0].get("transactionId")),
    )


def classify_balance(status_code: int, body: bytes) -> BalanceOutcome:
    """A `GET /accounts/balance` reply: the amount in minor units of `currencyCode`."""
    data = json_object(body)
    if status_code != 200 or data is None:
        message = text(data.get("message")) if data is not None else None
        return BalanceOutcome.failed(f"http_{status_code}", message, http_status=status_code)
    amount, currency = data.get("balance"), data.get("currencyCode")
    if not isinstance(currency, str) or not currency:
        return BalanceOutcome.failed("malformed_reply", f"currencyCode={currency!r}", http_status=200)
    try:
        if isinstance(amount, bool) or not isinstance(amount, int | float | str):
            raise ValueError(amount)
        minor = port.minor_units(amount, currency)
    except ValueError:
        return BalanceOutcome.failed("malformed_reply", f"balance={amount!r}", http_status=200)
    return BalanceOutcome(True, minor, currency, http_status=200)


def webhook_signature(secret: str, body: bytes, timestamp: str) -> str:
    """hex(HMAC-SHA256(webhook_secret, raw_body + ":" + timestamp))."""
    return hmac.new(secret.encode(), body + b":" + timestamp.encode(), hashlib.sha256).hexdigest()


def verify_webhook(secret: str, headers: Mapping[str, str], body: bytes, now: float) -> None:
    """Raise `CallbackRefused("unauthorized")` unless the headers sign `body` within 300 s of `now`."""
    ts = (headers.get("x-reloadly-request-timestamp") or "").strip()
    sig = (headers.get("x-reloadly-signature") or "").strip().lower()
    if not ts or not sig:
        raise port.CallbackRefused("unauthorized", "missing X-Reloadly-Signature or timestamp header")
    if not (ts.isascii() and ts.isdigit()):
        raise port.CallbackRefused("unauthorized", "X-Reloadly-Request-Timestamp is not an integer")
    if abs(now - int(ts)) > WEBHOOK_WINDOW_S:
        raise port.CallbackRefused("unauthorized", "timestamp outside the allowed window")
    if not hmac.compare_digest(webhook_signature(secret, body, ts), sig):
        raise port.CallbackRefused("unauthorized", "signature mismatch")


def parse_webhook(body: bytes) -> port.CallbackData:
    """An `airtime_transaction.status` webhook in platform terms; raises `CallbackRefused("malformed")`."""
    data = json_object(body)
    if data is None or data.get("type") != "airtime_transaction.status":
        raise port.CallbackRefused("malformed", "not an airtime_transaction.status webhook")
    inner = data.get("data")
    transaction = inner.get("transaction") if isinstance(inner, Mapping) else None
    if not isinstance(transaction, Mapping):
        raise port.CallbackRefused("malformed", "malformed webhook: data.transaction is required")
    ref, status = transaction.get("customIdentifier"), transaction.get("status")
    if not isinstance(ref, str) or not 1 <= len(ref) <= 200:
        raise port.CallbackRefused("malformed", "malformed webhook: customIdentifier is required")
    mapped = STATUSES.get(status) if isinstance(status, str) else None
    if mapped is None:
        raise port.CallbackRefused("malformed", f"malformed webhook: status {status!r}")
    order_id = transaction.get("transactionId")
    if order_id is not None and (not isinstance(order_id, str | int) or len(str(order_id)) > 200):
        raise port.CallbackRefused("malformed", "malformed webhook: transactionId")
    return port.CallbackData(
        supplier_ref=ref,
        status=mapped,
        supplier_order_id=text(order_id),
        code=status if mapped == "failed" else None,
    )
