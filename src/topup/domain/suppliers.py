"""The supplier port: what the routing engine asks of any supplier protocol, and what it gets back.

Pure types and money rules only. Each protocol (`topup.adapters.suppliers.protocols.<name>`) implements
`SupplierProtocol`; the engine never knows which one it talks to (SPEC section 6).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, Protocol

DispatchKind = Literal["accepted", "succeeded", "failed", "rejected", "unknown"]
QueryStatus = Literal["success", "failed", "processing", "not_found", "error"]
CallbackStatus = Literal["success", "failed", "processing"]
RAW_LIMIT = 2000


@dataclass(frozen=True)
class ChannelAccess:
    """What a protocol needs of one channel: where it is, its (decrypted) secrets and product names."""

    code: str
    protocol: str
    base_url: str
    credentials: Mapping[str, Any]
    products: Mapping[str, Mapping[str, Any]]
    options: Mapping[str, Any]
    timeout_s: float
    callback_url: str
    """The platform's static callback URL for this channel: `<public>/callbacks/<protocol>/<code>`."""


@dataclass(frozen=True)
class DispatchRequest:
    """One attempt as the engine hands it to a protocol."""

    supplier_ref: str
    ref: str
    """The platform's own attempt ref, `<order_id>-<no>`."""
    product_code: str
    business_type: str
    account: str
    face_value: int
    carrier: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class QueryRequest:
    """A status question about one attempt."""

    supplier_ref: str
    ref: str
    product_code: str
    business_type: str


@dataclass
class DispatchOutcome:
    """What a dispatch told us: `rejected`/`failed` are definite failures, `succeeded` a definite success."""

    kind: DispatchKind
    supplier_order_id: str | None = None
    code: str | None = None
    message: str | None = None
    http_status: int | None = None
    latency_ms: float = 0.0
    raw: str | None = None
    cost: int | None = None
    """What the supplier says it charged, in fen, when it says so."""

    @classmethod
    def accepted(cls, supplier_order_id: str | None = None, **kw: Any) -> DispatchOutcome:
        return cls("accepted", supplier_order_id=supplier_order_id, **kw)

    @classmethod
    def rejected(cls, code: str = "rejected", message: str | None = None, **kw: Any) -> DispatchOutcome:
        return cls("rejected", code=code, message=message, **kw)

    @classmethod
    def unknown(cls, code: str, message: str | None = None, **kw: Any) -> DispatchOutcome:
        return cls("unknown", code=code, message=message, **kw)


@dataclass
class QueryOutcome:
    """A status query's answer; `error` when no valid answer came back (ask again later)."""

    status: QueryStatus
    code: str | None = None
    message: str | None = None
    http_status: int | None = None
    latency_ms: float = 0.0
    raw: str | None = None
    supplier_order_id: str | None = None


@dataclass
class BalanceOutcome:
    """A balance query's answer: `amount` in minor units of `currency`, or an error."""

    ok: bool
    amount: int | None = None
    currency: str | None = None
    code: str | None = None
    message: str | None = None
    http_status: int | None = None
    raw: str | None = None

    @classmethod
    def failed(cls, code: str, message: str | None = None, **kw: Any) -> BalanceOutcome:
        return cls(False, code=code, message=message, **kw)


@dataclass(frozen=True)
class CallbackRequest:
    """An incoming callback as received: the request target as sent, lower-cased headers, raw body."""

    method: str
    target: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class CallbackData:
    """A verified callback in platform terms."""

    supplier_ref: str
    status: CallbackStatus
    supplier_order_id: str | None = None
    code: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class Ack:
    """The protocol's acknowledgement of a stored callback."""

    status_code: int = 200
    body: bytes = b""
    media_type: str = "text/plain"


class CallbackRefused(Exception):
    """A callback that must change nothing: `unauthorized` (401) or `malformed` (400)."""

    def __init__(self, kind: Literal["unauthorized", "malformed"], message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class InvalidChannelConfig(ValueError):
    """A channel's credentials, products or options do not fit its protocol; `field` names where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class SupplierProtocol(Protocol):
    """One supplier wire format. Implementations never raise for anything the supplier or network does."""

    name: str
    has_callbacks: bool
    has_balance: bool
    credential_fields: tuple[str, ...]
    secret_fields: tuple[str, ...]
    product_fields: tuple[str, ...]
    option_fields: tuple[str, ...]

    def validate(
        self, credentials: Mapping[str, Any], products: Mapping[str, Any], options: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, Any]]:
        """Normalised (credentials, products, options); raises `InvalidChannelConfig`."""
        ...

    def serves(self, channel: ChannelAccess, product_code: str, business_type: str) -> bool:
        """Whether this channel can be sent the product at all (else it is not a candidate)."""
        ...

    def supplier_ref(self, order_id: str, attempt_no: int) -> str: ...

    async def dispatch(self, channel: ChannelAccess, req: DispatchRequest) -> DispatchOutcome: ...

    async def query(self, channel: ChannelAccess, req: QueryRequest) -> QueryOutcome: ...

    async def balance(self, channel: ChannelAccess) -> BalanceOutcome: ...

    def parse_callback(self, channel: ChannelAccess, request: CallbackRequest, now: float) -> CallbackData:
        """Verify and map a callback; raises `CallbackRefused`."""
        ...

    def ack(self, data: CallbackData, outcome: str = "") -> Ack:
        """The body that tells the supplier the callback was stored (also for a repeat); `outcome` is
        what it meant for the order (`completed`, `repeat`, ...), for protocols that echo it."""
        ...


# ---- shared rules --------------------------------------------------------------------------------

_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]")


def compact_ref(order_id: str, attempt_no: int, max_len: int = 32) -> str:
    """A supplier ref of letters and digits only: the order id's alphanumerics, `A`, the attempt number.

    `ord_18c2f0a1b2c3d4e5f6a7b8c` attempt 2 -> `ord18c2f0a1b2c3d4e5f6a7b8cA2`. Deterministic and unique
    (the order id is unique and `A` does not occur in its hex part); longer ids are hashed to fit.
    """
    ref = f"{_NOT_ALNUM.sub('', order_id)}A{attempt_no}"
    if len(ref) <= max_len:
        return ref
    digest = hashlib.sha256(order_id.encode()).hexdigest()
    tail = f"A{attempt_no}"
    return digest[: max_len - len(tail)] + tail


def fen_to_yuan(fen: int) -> str:
    """Exact yuan text without trailing zeros: 5000 -> `50`, 4990 -> `49.9`, 1 -> `0.01`."""
    value = (Decimal(int(fen)) / 100).normalize()
    text = format(value, "f")
    return text


def yuan_to_fen(yuan: Any) -> int:
    """Exact fen from a yuan amount given as text or a number (`"1234.50"` -> 123450); ValueError if
    it is not a number or has more than two decimals."""
    if isinstance(yuan, bool) or yuan is None:
        raise ValueError(f"not an amount: {yuan!r}")
    try:
        value = Decimal(str(yuan).strip())
    except InvalidOperation:
        raise ValueError(f"not an amount: {yuan!r}") from None
    if not value.is_finite():
        raise ValueError(f"not an amount: {yuan!r}")
    fen = value * 100
    if fen != fen.to_integral_value():
        raise ValueError(f"more than two decimals: {yuan!r}")
    return int(fen)


def minor_units(amount: Any, currency: str) -> int:
    """A decimal amount in a currency's minor units (2 decimals for CNY, USD and most others)."""
    return yuan_to_fen(amount)


def as_code_set(values: Any) -> frozenset[str]:
    """Option lists of codes compare as strings (`[10012, "10013"]`)."""
    if values is None:
        return frozenset()
    if isinstance(values, str | int):
        values = [values]
    return frozenset(str(v) for v in values)
