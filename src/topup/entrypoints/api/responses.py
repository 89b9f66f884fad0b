"""A JSON response rendered with orjson (fast, and handles our plain dicts)."""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.responses import Response


class JSONOut(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except TypeError:
            # Lone surrogates or >64-bit integers echoed from a request: escape rather than fail.
            return json.dumps(content, ensure_ascii=True, default=str).encode()
