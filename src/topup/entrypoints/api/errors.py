"""Map every failure to the SPEC's error body; nothing escapes as a bare 500."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from topup.domain.errors import TopupError
from topup.entrypoints.api.responses import JSONOut

log = structlog.get_logger()

_HTTP_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found", 413: "invalid_request"}


def error_response(status: int, code: str, message: str, details: Any = None) -> JSONOut:
    return JSONOut({"error": {"code": code, "message": message, "details": details}}, status_code=status)


def _clean(errors: list[Any]) -> list[dict[str, Any]]:
    out = []
    for e in errors:
        loc = [str(p) for p in e.get("loc", ())]
        out.append({"field": ".".join(p for p in loc if p != "body") or "body", "message": str(e.get("msg"))})
    return out[:50]


def install(app: FastAPI) -> None:
    @app.exception_handler(TopupError)
    async def topup_error(_req: Request, exc: TopupError) -> JSONOut:
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_req: Request, exc: RequestValidationError) -> JSONOut:
        details = _clean(list(exc.errors()))
        first = details[0] if details else {"field": "body", "message": "invalid"}
        return error_response(400, "invalid_request", f"{first['field']}: {first['message']}", details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_req: Request, exc: StarletteHTTPException) -> JSONOut:
        code = _HTTP_CODES.get(
            exc.status_code, "invalid_request" if exc.status_code < 500 else "internal_error"
        )
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(_req: Request, exc: Exception) -> JSONOut:
        log.exception("unhandled_error", error=type(exc).__name__)
        return error_response(500, "internal_error", "internal error; the request changed nothing")
