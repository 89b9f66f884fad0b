"""Ids of stored things: opaque, roughly time-ordered (`ord_18c2f...`), made without a database."""

from __future__ import annotations

import secrets


def new_id(prefix: str, now: float) -> str:
    """Opaque, roughly time-ordered ids: `ord_18c2f...`."""
    return f"{prefix}_{int(now * 1000):011x}{secrets.token_hex(6)}"
