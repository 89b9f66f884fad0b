"""The one signature scheme of SPEC section 0, used in every direction.

X-Signature = hex(HMAC-SHA256(secret, "<timestamp>\\n<METHOD>\\n<path with query>\\n<raw body>")).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

MAX_SKEW_S = 300
TIMESTAMP_HEADER = "X-Timestamp"
SIGNATURE_HEADER = "X-Signature"
MERCHANT_HEADER = "X-Merchant-Id"


def signature(secret: str, timestamp: int | str, method: str, target: str, body: bytes = b"") -> str:
    """Hex HMAC-SHA256 over the canonical string of one request."""
    message = f"{timestamp}\n{method.upper()}\n{target}\n".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(secret: str, method: str, target: str, body: bytes, now: float) -> dict[str, str]:
    """Headers that sign a request sent at `now` (unix seconds)."""
    ts = str(int(now))
    return {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: signature(secret, ts, method, target, body)}


class SignatureError(Exception):
    """A request's signature headers are missing, stale or wrong."""


def verify(
    secret: str, headers: Mapping[str, str], method: str, target: str, body: bytes, now: float
) -> None:
    """Raise SignatureError unless the headers sign this request within the allowed clock skew."""
    ts = headers.get(TIMESTAMP_HEADER) or headers.get(TIMESTAMP_HEADER.lower())
    sig = headers.get(SIGNATURE_HEADER) or headers.get(SIGNATURE_HEADER.lower())
    if not ts or not sig:
        raise SignatureError("missing X-Timestamp or X-Signature header")
    verify_parts(secret, ts, sig, method, target, body, now)


def verify_parts(
    secret: str, ts: str | int, sig: str, method: str, target: str, body: bytes, now: float
) -> None:
    """Check an explicit timestamp and signature (used by the WebSocket auth message too)."""
    text = str(ts).strip()
    # Plain ASCII digits only: int() would also take "1_700_000_000", "+17..." or non-ASCII digits.
    if not (text.isascii() and text.isdigit()):
        raise SignatureError("X-Timestamp is not an integer")
    if abs(now - int(text)) > MAX_SKEW_S:
        raise SignatureError("timestamp outside the allowed window")
    expected = signature(secret, text, method, target, body)
    if not hmac.compare_digest(expected, str(sig).strip().lower()):
        raise SignatureError("signature mismatch")
