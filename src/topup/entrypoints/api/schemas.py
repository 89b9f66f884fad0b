"""Request and response schemas of the HTTP API (they are also the OpenAPI document)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

Code = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")]
Url = Annotated[str, StringConstraints(pattern=r"^https?://[^\s]{1,1990}$", max_length=2000)]
Fen = Annotated[int, Field(ge=0, le=10**12)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)


class OrderIn(Strict):
    merchant_order_id: Code
    product_code: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    account: Annotated[str, StringConstraints(min_length=1, max_length=254)]
    notify_url: Url | None = None
    extra: dict[str, Any] | None = None

    @field_validator("extra")
    @classmethod
    def small_extra(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is not None and len(repr(v)) > 4000:
            raise ValueError("extra is limited to 4000 characters")
        if v is not None:
            # extra is fingerprinted, stored and sent on with orjson: it must survive that.
            try:
                plain = orjson.loads(orjson.dumps(v)) == v  # NaN / Infinity do not survive
            except TypeError:
                plain = False
            if not plain:
                raise ValueError(
                    "extra must be plain JSON: finite numbers, integers within 64 bits, valid Unicode text"
                )
        return v


class AttemptOut(BaseModel):
    no: int
    channel: str
    ref: str
    supplier_ref: str
    """The attempt's reference in the supplier's own format (the ref itself for topup-json)."""
    status: Literal["pending", "succeeded", "failed", "abandoned"]
    reason: str | None
    started_at: str
    finished_at: str | None


class OrderOut(BaseModel):
    order_id: str
    merchant_order_id: str
    batch_id: str | None
    business_type: str
    product_code: str
    account: str
    carrier: str | None
    region: str | None = None
    """The mobile number's home province, ISO 3166-2:CN (`CN-GD`), or null (SPEC 7)."""
    face_value: int
    price: int
    status: Literal["pending_payment", "processing", "succeeded", "failed", "cancelled"]
    failure_reason: str | None
    attempts: list[AttemptOut]
    created_at: str
    updated_at: str
    completed_at: str | None


class OrderList(BaseModel):
    items: list[OrderOut]
    next_cursor: str | None


class ProductOut(BaseModel):
    code: str
    business_type: str
    brand: str | None
    name: str
    face_value: int
    price: int


class ProductList(BaseModel):
    items: list[ProductOut]
    next_cursor: str | None = None


class BalanceOut(BaseModel):
    available: int
    held: int
    currency: Literal["CNY"]


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorOut(BaseModel):
    error: ErrorBody


BusinessTypeName = Literal["mobile_airtime", "mobile_data", "fuel_card", "membership"]


class ProductIn(Strict):
    business_type: BusinessTypeName
    brand: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    face_value: Annotated[int, Field(gt=0, le=10**9)]
    price: Annotated[int, Field(gt=0, le=10**9)]
    enabled: bool = True


class ChannelIn(Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    protocol: Annotated[str, StringConstraints(min_length=1, max_length=32)] = "topup-json"
    base_url: Url
    # topup-json's signing secret; also accepted as `credentials.secret`.
    secret: Annotated[str, StringConstraints(min_length=8, max_length=200)] | None = None
    timeout_s: Annotated[float, Field(gt=0, le=86400)] = 30.0
    max_wait_s: Annotated[float, Field(gt=0, le=7 * 86400)] = 600.0
    supports_query: bool = True
    enabled: bool = True
    # The protocol's own fields (SPEC section 6), checked by the protocol.
    credentials: Annotated[dict[str, Any], Field(max_length=20)] = Field(default_factory=dict)
    products: Annotated[dict[Code, dict[str, Any]], Field(max_length=1000)] = Field(default_factory=dict)
    options: Annotated[dict[str, Any], Field(max_length=50)] = Field(default_factory=dict)
    # Supplier operations (SPEC 7): pause below this balance (minor units of the supplier's currency),
    # check the balance this often, start at most this many dispatches in any 1 s.
    min_balance: Fen | None = None
    balance_check_s: Annotated[float, Field(ge=0.05, le=86400)] = 300.0
    rate_limit_per_s: Annotated[int, Field(ge=1, le=1000)] | None = None


class ChannelOut(BaseModel):
    code: str
    name: str
    protocol: str
    base_url: str
    timeout_s: float
    max_wait_s: float
    supports_query: bool
    enabled: bool
    credentials: dict[str, Any] = Field(default_factory=dict)
    """Secret fields masked."""
    products: dict[str, dict[str, Any]] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    min_balance: int | None = None
    balance_check_s: float = 300.0
    rate_limit_per_s: int | None = None
    paused: str | None = None
    """`low_balance` while the last balance check was below `min_balance` (SPEC 7), else null."""


Brand = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")]
Region = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}-[A-Za-z]{2}$")]


class MemberIn(Strict):
    channel: Code
    priority: Annotated[int, Field(ge=-1_000_000, le=1_000_000)] = 0
    weight: Annotated[int, Field(ge=0, le=1_000_000)] = 1
    costs: dict[Code, Annotated[int, Field(ge=0, le=10**9)]] = Field(default_factory=dict)
    # Coverage (SPEC 7): the carriers and home regions (ISO 3166-2:CN) this member serves; absent = all.
    carriers: Annotated[list[Brand], Field(min_length=1, max_length=20)] | None = None
    regions: Annotated[list[Region], Field(min_length=1, max_length=40)] | None = None


class GroupIn(Strict):
    business_type: BusinessTypeName
    brand: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    strategy: Literal["priority", "cost", "success_rate", "weighted"] = "priority"
    sticky: bool = True
    recovery_s: Annotated[float, Field(ge=0, le=30 * 86400)] = 300.0
    members: Annotated[list[MemberIn], Field(max_length=100)] = Field(default_factory=list)


class GroupOut(BaseModel):
    code: str
    business_type: str
    brand: str | None
    strategy: str
    sticky: bool
    recovery_s: float
    members: list[dict[str, Any]]
    active_channel: str | None
    ranking: list[str]
    switched_at: str | None = None
    probe_order_id: str | None = None


class MerchantIn(Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    secret: Annotated[str, StringConstraints(min_length=16, max_length=200)]
    password: Annotated[str, StringConstraints(min_length=8, max_length=200)] | None = None
    notify_url: Url | None = None


class MerchantOut(BaseModel):
    id: str
    name: str
    notify_url: str | None
    has_password: bool


class CreditIn(Strict):
    amount: Annotated[int, Field(gt=0, le=10**12)]
    reference: Annotated[str, StringConstraints(min_length=1, max_length=128)]


class CreditOut(BaseModel):
    merchant_id: str
    reference: str
    amount: int
    balance: BalanceOut


class CallbackIn(Strict):
    ref: Annotated[str, StringConstraints(min_length=1, max_length=80)]
    supplier_order_id: Annotated[str, StringConstraints(max_length=200)] | None = None
    status: Literal["success", "failed"]
    code: Annotated[str, StringConstraints(max_length=200)] | None = None
    message: Annotated[str, StringConstraints(max_length=1000)] | None = None


class LedgerCheckOut(BaseModel):
    balanced: bool
    postings_sum: int
    transfers: int
    unbalanced_transfers: int
    mismatched_accounts: list[dict[str, Any]]
    negative_accounts: list[str]
