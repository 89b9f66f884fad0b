"""Map every failure to the SPEC's error body; nothing escapes as a bare 500."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from topup.domain.errors import TopupError
from topup.entrypoints.api.responses import JSONOut

log = structlog.get_logger()

# SQLSTATE classes that mean "the database is not available right now", not "the request is bad".
_UNAVAILABLE_SQLSTATES = ("08", "53", "57P")


def _database_unavailable(exc: DBAPIError) -> bool:
    """Connection lost, server shutting down or out of connections: a retry later will do."""
    if exc.connection_invalidated:
        return True
    sqlstate = str(getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None) or "")
    if sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
        return True
    text = str(exc.orig).lower()
    return any(
        phrase in text
        for phrase in ("too many clients", "connection was closed", "connection refused", "is shutting down")
    )


def _unavailable() -> JSONOut:
    response = error_response(
        503, "unavailable", "the database is unavailable; nothing was changed, retry shortly"
    )
    response.headers["Retry-After"] = "1"
    return response


_HTTP_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found", 413: "invalid_request"}


def error_response(status: int, code: str, message: str, details: Any = None) -> JSONOut:
    return JSONOut({"error": {"code": code, "message": message, "details": details}}, status_code=status)


def _clean(errors: list[Any]) -> list[dict[str, Any]]:
    out = []
    for e in errors:
        if e.get("type") == "json_invalid":
            out.append({"field": "body", "message": f"not valid JSON ({e.get('ctx', {}).get('error')})"})
            continue
        loc = [str(p) for p in e.get("loc", ())]
        out.append({"field": ".".join(p for p in loc if p != "body") or "body", "message": str(e.get("msg"))})
    return out[:50]


async def _authenticate_first(request: Request) -> JSONOut | None:
    """Run the route's auth dependency; its 401 wins over a malformed body (SPEC section 0)."""
    from topup.entrypoints.api.deps import admin_auth, merchant_auth
    from topup.entrypoints.api.roles import role_of

    dependant = getattr(request.scope.get("route"), "dependant", None)
    for dep in getattr(dependant, "dependencies", []):
        if dep.call in (merchant_auth, admin_auth) or role_of(dep.call) is not None:
            try:
                await dep.call(request)
            except TopupError as e:
                return error_response(e.status, e.code, e.message, e.details)
    return None


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def validation_error(req: Request, exc: RequestValidationError) -> JSONOut:
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            # FastAPI decodes JSON before running dependencies; the signature still comes first.
            denied = await _authenticate_first(req)
            if denied is not None:
                return denied
        details = _clean(list(exc.errors()))
        first = details[0] if details else {"field": "body", "message": "invalid"}
        return error_response(400, "invalid_request", f"{first['field']}: {first['message']}", details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_req: Request, exc: StarletteHTTPException) -> JSONOut:
        code = _HTTP_CODES.get(
            exc.status_code, "invalid_request" if exc.status_code < 500 else "internal_error"
        )
        return error_response(exc.status_code, code, str(exc.detail))

    async def by_kind(_req: Request, exc: Exception) -> JSONOut:
        return response_for(exc)

    for kind in (TopupError, DBAPIError, SQLAlchemyTimeout, Exception):
        app.add_exception_handler(kind, by_kind)


def response_for(exc: Exception) -> JSONOut:
    """The SPEC error body for `exc`: the app's handler for business, database and unexpected errors, and
    what the lean routes (`hot_routes`), outside FastAPI's exception middleware, answer. Request
    validation errors never get here: those routes hand a body they cannot validate back to the app."""
    if isinstance(exc, TopupError):
        return error_response(exc.status, exc.code, exc.message, exc.details)
    if isinstance(exc, DBAPIError):
        return _database_error(exc)
    if isinstance(exc, SQLAlchemyTimeout):
        return _pool_timeout()
    return _unexpected(exc)


def _database_error(exc: DBAPIError) -> JSONOut:
    # SQLSTATE class 22 (data exception) is the request's fault, e.g. a NUL character that
    # PostgreSQL text cannot hold; the transaction has rolled back.
    if str(getattr(exc.orig, "sqlstate", None) or "").startswith("22"):
        return error_response(400, "invalid_request", "a value in the request cannot be stored")
    if _database_unavailable(exc):
        log.warning("database_unavailable", error=type(exc.orig).__name__)
        return _unavailable()
    log.exception("database_error", error=type(exc.orig).__name__)
    return error_response(500, "internal_error", "internal error; the request changed nothing")


def _pool_timeout() -> JSONOut:
    log.warning("database_pool_exhausted")
    return _unavailable()


def _unexpected(exc: Exception) -> JSONOut:
    if isinstance(exc, ConnectionError | asyncio.TimeoutError):
        # The database (or its network) is down: nothing was written; the client may retry.
        log.warning("database_unavailable", error=type(exc).__name__)
        return _unavailable()
    log.exception("unhandled_error", error=type(exc).__name__)
    return error_response(500, "internal_error", "internal error; the request changed nothing")
