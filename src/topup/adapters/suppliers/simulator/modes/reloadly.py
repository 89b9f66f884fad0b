"""The simulator speaking Reloadly Airtime (SPEC section 6 `reloadly`).

A channel's token endpoint is `/sim/{code}/oauth/token`, so a platform channel points
`credentials.auth_url` at the channel's own base_url. Credentials come from `behaviour.credentials`
(`client_id`, `client_secret`, `webhook_secret`; defaults in `DEFAULT_CREDENTIALS`). Quirks, from
`behaviour.options`:
- `token_ttl_s` (3600): the `expires_in` announced with each token;
- `token_valid_s` (= `token_ttl_s`): how long the simulator really honours a token, so a test can make
  tokens die early and watch the 401 -> refresh -> repeat path;
- `token_http_status`: answer every token request with this status instead;
- `synchronous` (false): a top-up answers `SUCCESSFUL` / `FAILED` at once instead of `PROCESSING`;
- `failed_status` (`FAILED`): how a failed top-up is reported (`FAILED` or `REFUNDED`);
- `currency` (`USD`): the account currency (balance, amounts and costs; no exchange rates);
- `audience`: the audience a token request must name (default: the channel's base_url).
`Channel.state` counts `token_requests` (every request to the token endpoint), `tokens_issued` and
`unauthorized` (401 answers on the API) and keeps the issued `tokens` (token -> valid until, unix s).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import FastAPI, Request, Response

from topup.adapters.suppliers.simulator.behaviour import ChannelBehaviour, Outcome

from . import failing_front_end, gibberish, json_object_or_reason, reply_delay

if TYPE_CHECKING:
    from topup.adapters.suppliers.simulator.engine import Channel, SimOrder, Simulator

NAME = "reloadly"
ACCEPT = "application/com.reloadly.topups-v1+json"
DEFAULT_CREDENTIALS = {
    "client_id": "sim-client",
    "client_secret": "sim-secret",
    "webhook_secret": "sim-webhook-secret",
}
DEFAULT_REJECT_ERROR = "INVALID_PHONE_NUMBER"
"""The `errorCode` of a rejection while `reject_code` is left at the generic default."""
GENERIC_REJECT_CODE = ChannelBehaviour.model_fields["reject_code"].default
REFUSED = (Outcome.REJECTED, Outcome.INSUFFICIENT)
LARGE_BALANCE = 10**12


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _when(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _number(value: Decimal) -> orjson.Fragment:
    """A JSON number written from the decimal itself (`10`, `10.5`), never through a float."""
    return orjson.Fragment(format(value.normalize(), "f").encode("ascii"))


def _credential(channel: Channel, key: str) -> str:
    return str(channel.behaviour.credentials.get(key) or DEFAULT_CREDENTIALS[key])


def _option(channel: Channel, key: str, default: Any) -> Any:
    value = channel.behaviour.options.get(key)
    return default if value is None else value


def _transaction_id(order: SimOrder) -> int:
    """Reloadly's ids are integers: the number at the end of the simulator's order id."""
    return int(order.supplier_order_id.rsplit("-", 1)[-1])


def _parse_topup(body: bytes) -> dict[str, Any] | str:
    """The top-up request, or what is wrong with it."""
    payload = json_object_or_reason(body)
    if isinstance(payload, str):
        return payload
    operator_id, amount = payload.get("operatorId"), payload.get("amount")
    if not isinstance(operator_id, int) or isinstance(operator_id, bool):
        return "operatorId must be an integer"
    if isinstance(amount, bool) or not isinstance(amount, int | float) or amount <= 0:
        return "amount must be a positive number"
    ref, phone = payload.get("customIdentifier"), payload.get("recipientPhone")
    if not isinstance(ref, str) or not ref:
        return "customIdentifier is required"
    if not isinstance(phone, dict) or not all(
        isinstance(phone.get(k), str) for k in ("countryCode", "number")
    ):
        return "recipientPhone must have countryCode and number"
    if not isinstance(payload.get("useLocalAmount", False), bool):
        return "useLocalAmount must be a boolean"
    return payload


def register(app: FastAPI, sim: Simulator, now: Callable[[], float]) -> None:
    def error(status: int, code: str, message: str, path: str) -> Response:
        """Reloadly's error body."""
        body: dict[str, Any] = {
            "timeStamp": _when(now()),
            "message": message,
            "path": path,
            "errorCode": code,
            "infoLink": None,
            "details": [],
        }
        return _json(body, status)

    def channel_of(code: str) -> Channel | None:
        channel = sim.channels.get(code)
        return channel if channel is not None and channel.behaviour.protocol == NAME else None

    def authorised(request: Request, code: str, path: str) -> Channel | Response:
        channel = channel_of(code)
        if channel is None:
            return error(404, "NOT_FOUND", f"no simulated {NAME} channel {code!r}", path)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        valid_until = channel.state.get("tokens", {}).get(token) if scheme.lower() == "bearer" else None
        if valid_until is None or now() >= valid_until:
            channel.state["unauthorized"] = channel.state.get("unauthorized", 0) + 1
            if valid_until is None:
                return error(401, "INVALID_TOKEN", "Full authentication is required", path)
            return error(401, "TOKEN_EXPIRED", "The access token has expired", path)
        if ACCEPT not in request.headers.get("accept", ""):
            return error(406, "NOT_ACCEPTABLE", f"Accept must be {ACCEPT}", path)
        return channel

    @app.post("/sim/{code}/oauth/token")
    async def token(code: str, request: Request) -> Response:
        path = "/oauth/token"
        channel = channel_of(code)
        if channel is None:
            return error(404, "NOT_FOUND", f"no simulated {NAME} channel {code!r}", path)
        state = channel.state
        state["token_requests"] = state.get("token_requests", 0) + 1
        forced = _option(channel, "token_http_status", None)
        if forced is not None:
            return error(int(forced), "SIMULATED_FAILURE", "simulated token failure", path)
        try:
            payload = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            payload = None
        if not isinstance(payload, dict):
            return error(400, "INVALID_REQUEST", "body is not a JSON object", path)
        if payload.get("grant_type") != "client_credentials":
            return error(400, "UNSUPPORTED_GRANT_TYPE", "grant_type must be client_credentials", path)
        given = (str(payload.get("client_id", "")), str(payload.get("client_secret", "")))
        wanted = (_credential(channel, "client_id"), _credential(channel, "client_secret"))
        if not all(hmac.compare_digest(a.encode(), b.encode()) for a, b in zip(given, wanted, strict=True)):
            return error(401, "INVALID_CREDENTIALS", "Access Denied", path)
        audience = _option(channel, "audience", f"{str(request.base_url).rstrip('/')}/sim/{code}")
        if payload.get("audience") != audience:
            return error(400, "INVALID_AUDIENCE", f"audience must be {audience}", path)
        ttl = float(_option(channel, "token_ttl_s", 3600))
        valid = float(_option(channel, "token_valid_s", ttl))
        access_token = secrets.token_urlsafe(24)
        state.setdefault("tokens", {})[access_token] = now() + valid
        state["tokens_issued"] = state.get("tokens_issued", 0) + 1
        expires_in: int | float = int(ttl) if ttl == int(ttl) else ttl
        return _json(
            {
                "access_token": access_token,
                "scope": "send-topups read-operators read-topups-history read-balance",
                "expires_in": expires_in,
                "token_type": "Bearer",
            }
        )

    @app.post("/sim/{code}/topups")
    async def topup(code: str, request: Request) -> Response:
        checked = authorised(request, code, "/topups")
        if isinstance(checked, Response):
            return checked
        channel = checked
        payload = _parse_topup(await request.body())
        if isinstance(payload, str):
            return error(400, "INVALID_REQUEST", payload, "/topups")
        ref = payload["customIdentifier"]
        channel.dispatches[ref] += 1
        existing = channel.orders.get(ref)
        if existing is not None and existing.outcome not in REFUSED:
            return error(400, "CUSTOM_IDENTIFIER_ALREADY_USED", "customIdentifier already used", "/topups")
        refused = await failing_front_end(
            channel,
            orjson.dumps({"errorCode": "SIMULATED_FAILURE", "message": "simulated", "path": "/topups"}),
        )
        if refused is not None:
            return refused
        amount = Decimal(str(payload["amount"]))
        minor = int((amount * 100).to_integral_value())  # what the order takes from the balance
        wire = {**payload, "amount_text": str(amount)}
        take = {"ref": ref, "account": payload["recipientPhone"]["number"], "amount": minor, "wire": wire}
        order, is_new = sim.take_order(channel, take)
        if is_new:
            await sim.start_callbacks(channel, order)
        await reply_delay(channel)
        if channel.behaviour.malformed_reply:
            return gibberish()
        if order.outcome is Outcome.INSUFFICIENT:
            return error(400, "INSUFFICIENT_BALANCE", "Insufficient account balance", "/topups")
        if order.outcome is Outcome.REJECTED:
            reject = channel.behaviour.reject_code
            code_ = DEFAULT_REJECT_ERROR if reject == GENERIC_REJECT_CODE else reject
            return error(400, code_, "simulated rejection", "/topups")
        status = "PROCESSING"
        if _option(channel, "synchronous", False) and order.outcome in (Outcome.SUCCESS, Outcome.FAILED):
            status = _status(channel, order.outcome.value)
        return _json(_transaction(channel, order, status, now()))

    @app.get("/sim/{code}/topups/reports/transactions")
    async def transactions(code: str, request: Request) -> Response:
        checked = authorised(request, code, "/topups/reports/transactions")
        if isinstance(checked, Response):
            return checked
        channel = checked
        ref = request.query_params.get("customIdentifier")
        content: list[dict[str, Any]] = []
        for wanted in [ref] if ref else list(channel.orders):
            status, order = sim.query_status(channel, wanted)
            forced = channel.behaviour.query_answer is not None
            if status == "not_found" or order is None or (order.outcome in REFUSED and not forced):
                continue  # a refused top-up never became a transaction
            settled = order.outcome in (Outcome.SUCCESS, Outcome.FAILED)
            if _option(channel, "synchronous", False) and settled and not forced:
                status = "success" if order.outcome is Outcome.SUCCESS else "failed"
            content.append(_transaction(channel, order, _status(channel, status), now()))
        return _json(
            {"content": content, "totalElements": len(content), "totalPages": 1, "first": True, "last": True}
        )

    @app.get("/sim/{code}/accounts/balance")
    async def balance(code: str, request: Request) -> Response:
        checked = authorised(request, code, "/accounts/balance")
        if isinstance(checked, Response):
            return checked
        minor = checked.behaviour.balance
        return _json(
            {
                "balance": _number(Decimal(LARGE_BALANCE if minor is None else minor) / 100),
                "currencyCode": _option(checked, "currency", "USD"),
                "currencyName": "simulated",
                "updatedAt": _when(now()),
            }
        )


def _status(channel: Channel, status: str) -> str:
    """A protocol-neutral status in Reloadly's words."""
    if status == "success":
        return "SUCCESSFUL"
    if status == "failed":
        return str(_option(channel, "failed_status", "FAILED"))
    return "PROCESSING"


def _transaction(channel: Channel, order: SimOrder, status: str, now: float) -> dict[str, Any]:
    """A TopupTransaction as Reloadly reports it (replies, reports and webhooks)."""
    wire = order.request.get("wire") or {}
    phone = wire.get("recipientPhone") or {}
    currency = _option(channel, "currency", "USD")
    amount = _number(Decimal(wire.get("amount_text") or "0"))
    return {
        "transactionId": _transaction_id(order),
        "status": status,
        "operatorTransactionId": None,
        "customIdentifier": order.ref,
        "recipientPhone": phone.get("number", order.account),
        "countryCode": phone.get("countryCode"),
        "operatorId": wire.get("operatorId"),
        "operatorName": "Simulated Operator",
        "discount": 0,
        "discountCurrencyCode": currency,
        "requestedAmount": amount,
        "requestedAmountCurrencyCode": currency,
        "deliveredAmount": amount,
        "deliveredAmountCurrencyCode": currency,
        "transactionDate": _when(now),
        "balanceInfo": {"cost": amount, "currencyCode": currency, "updatedAt": _when(now)},
    }


def callback(
    channel: Channel, order: SimOrder, status: str, now: float
) -> tuple[bytes, dict[str, str]] | None:
    """An `airtime_transaction.status` webhook signed with the channel's webhook_secret."""
    if not order.callback_url:
        return None  # no webhook URL set in the (simulated) dashboard
    transaction = _transaction(channel, order, _status(channel, status), now)
    body = orjson.dumps({"type": "airtime_transaction.status", "data": {"transaction": transaction}})
    timestamp = str(int(now))
    secret = _credential(channel, "webhook_secret").encode()
    signature = hmac.new(secret, body + b":" + timestamp.encode(), hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Reloadly-Request-Timestamp": timestamp,
        "X-Reloadly-Signature": signature,
    }
    return body, headers
