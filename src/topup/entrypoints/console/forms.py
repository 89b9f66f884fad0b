"""HTML form fields -> the admin API's own request schemas: the console accepts exactly what the API does."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from topup.entrypoints.api.schemas import ChannelIn, CreditIn, GroupIn, ProductIn

M = TypeVar("M", bound=BaseModel)
CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
MAX_MEMBER_ROWS = 100
MEMBER_FIELDS = ("channel", "priority", "weight", "costs", "carriers", "regions")

LABELS = {
    "timeout_s": "Timeout (s)",
    "max_wait_s": "Max wait (s)",
    "recovery_s": "Recovery (s)",
    "base_url": "Base URL",
    "face_value": "Face value (fen)",
    "price": "Price (fen)",
    "amount": "Amount (fen)",
    "business_type": "Business type",
}


class FormError(Exception):
    """One or more fields are wrong; `messages` are ready to show next to the form."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


def _label(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] == "members" and len(parts) >= 2 and parts[1].isdigit():
        rest = " ".join(LABELS.get(p, p) for p in parts[2:])
        return f"Member row {int(parts[1]) + 1} {rest}".strip()
    return " ".join(LABELS.get(p, p.replace("_", " ").capitalize()) for p in parts) or "Form"


def messages_of(e: ValidationError) -> list[str]:
    return [f"{_label(tuple(err['loc']))}: {err['msg']}" for err in e.errors()]


def validate(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise FormError(messages_of(e)) from None


def _text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _optional(data: dict[str, Any], form: Mapping[str, Any], *names: str) -> None:
    """Blank inputs fall back to the schema's default instead of failing as ''."""
    for name in names:
        value = _text(form, name)
        if value:
            data[name] = value


def code_of(form: Mapping[str, Any]) -> str:
    code = _text(form, "code")
    if not CODE.match(code):
        raise FormError(["Code: 1-64 characters of A-Z a-z 0-9 _ . -"])
    return code


def product(form: Mapping[str, Any]) -> ProductIn:
    data: dict[str, Any] = {
        "business_type": _text(form, "business_type"),
        "brand": _text(form, "brand") or None,
        "name": _text(form, "name"),
        "face_value": _text(form, "face_value"),
        "price": _text(form, "price"),
        "enabled": form.get("enabled") is not None,
    }
    return validate(ProductIn, data)


def channel(
    form: Mapping[str, Any],
    existing_secret: str | None = None,
    *,
    existing: tuple[str, Mapping[str, Any]] | None = None,
    fields: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] | None = None,
) -> ChannelIn:
    """A channel from the form. The console never shows secrets, so it cannot echo them: a blank
    secret keeps the stored one (`existing`: the stored protocol and credentials; `fields`: each
    protocol's credential fields and which of them are secret). topup-json's secret is `secret`;
    other protocols' credentials are `cred.<protocol>.<field>`; products and options are JSON."""
    protocol = _text(form, "protocol") or "topup-json"
    stored = dict(existing[1]) if existing is not None and existing[0] == protocol else {}
    data: dict[str, Any] = {
        "name": _text(form, "name"),
        "protocol": protocol,
        "base_url": _text(form, "base_url"),
        "supports_query": form.get("supports_query") is not None,
        "enabled": form.get("enabled") is not None,
        "products": _json_field(form, "products", "Products"),
        "options": _json_field(form, "options", "Options"),
    }
    if protocol == "topup-json":
        secret = form.get("secret") if isinstance(form.get("secret"), str) else ""
        if not secret:
            secret = existing_secret if existing_secret is not None else stored.get("secret")
            if secret is None:
                raise FormError(["Secret: required for a new channel (at least 8 characters)"])
        data["secret"] = secret
    else:
        credential_fields, secret_fields = (fields or {}).get(protocol, ((), ()))
        credentials: dict[str, Any] = {}
        for name in credential_fields:
            value = _text(form, f"cred.{protocol}.{name}")
            if not value and name in secret_fields and name in stored:
                value = stored[name]
            if value:
                credentials[name] = value
        data["credentials"] = credentials
    _optional(data, form, "timeout_s", "max_wait_s", "min_balance", "balance_check_s", "rate_limit_per_s")
    return validate(ChannelIn, data)


def _json_field(form: Mapping[str, Any], name: str, label: str) -> dict[str, Any]:
    text = _text(form, name)
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as e:
        raise FormError([f"{label}: not valid JSON ({e})"]) from None
    if not isinstance(value, dict):
        raise FormError([f"{label}: must be a JSON object"])
    return value


def parse_costs(text: str, row: int) -> dict[str, str]:
    """`airtime.50=4900, airtime.100=9800` -> {code: fen}; the schema checks the numbers."""
    costs: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in re.split(r"[,\n;]", text))):
        code, sep, value = item.partition("=")
        if not sep or not code.strip() or not value.strip():
            raise FormError([f"Member row {row} costs: write product=fen pairs, e.g. airtime.50=4900"])
        costs[code.strip()] = value.strip()
    return costs


def group(form: Mapping[str, Any]) -> GroupIn:
    members: list[dict[str, Any]] = []
    errors: list[str] = []
    for i in range(MAX_MEMBER_ROWS):
        ch = _text(form, f"member-{i}-channel")
        if not ch:
            continue
        m: dict[str, Any] = {"channel": ch}
        _optional(m, form, f"member-{i}-priority", f"member-{i}-weight")
        m = {k.removeprefix(f"member-{i}-"): v for k, v in m.items()}
        try:
            m["costs"] = parse_costs(_text(form, f"member-{i}-costs"), len(members) + 1)
        except FormError as e:
            errors += e.messages
        # Coverage (SPEC 7): blank covers all.
        for name in ("carriers", "regions"):
            items = [p for p in re.split(r"[\s,;]+", _text(form, f"member-{i}-{name}")) if p]
            if items:
                m[name] = items
        members.append(m)
    if errors:
        raise FormError(errors)
    data: dict[str, Any] = {
        "business_type": _text(form, "business_type"),
        "brand": _text(form, "brand") or None,
        "sticky": form.get("sticky") is not None,
        "members": members,
    }
    _optional(data, form, "strategy", "recovery_s")
    return validate(GroupIn, data)


def deposit(form: Mapping[str, Any]) -> CreditIn:
    return validate(CreditIn, {"amount": _text(form, "amount"), "reference": _text(form, "reference")})


def costs_text(costs: Mapping[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(costs.items()))
