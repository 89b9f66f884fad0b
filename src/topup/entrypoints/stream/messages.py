"""The stream's message shapes: parsing client frames, error replies, request ids."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError

MAX_FRAME_CHARS = 64 * 1024


def error_message(code: str, message: str, details: Any = None, request_id: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "error"}
    if request_id is not None:
        out["request_id"] = request_id
    out["error"] = {"code": code, "message": message, "details": details}
    return out


def _validation_details(e: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in err.get("loc", ())) or "order", "message": str(err.get("msg"))}
        for err in e.errors()[:50]
    ]


def _parse(text: str | None) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(message, None) or (None, error reply) for one client frame."""
    if text is None:
        return None, error_message("invalid_request", "send JSON text frames, not binary")
    if len(text) > MAX_FRAME_CHARS:
        return None, error_message("invalid_request", f"frame larger than {MAX_FRAME_CHARS} characters")
    try:
        msg = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None, error_message("invalid_request", "frame is not valid JSON")
    if not isinstance(msg, dict):
        return None, error_message("invalid_request", "a message is a JSON object with a `type`")
    return msg, None


def _request_id(msg: dict[str, Any]) -> Any:
    rid = msg.get("request_id")
    if isinstance(rid, bool) or not isinstance(rid, str | int) or (isinstance(rid, str) and len(rid) > 200):
        return None
    return rid
