"""Small dialect-aware helpers used by the services."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite

from topup.adapters.db.engine import Tx


def new_id(prefix: str, now: float) -> str:
    """Opaque, roughly time-ordered ids: `ord_18c2f...`."""
    return f"{prefix}_{int(now * 1000):011x}{secrets.token_hex(6)}"


async def insert_ignore(tx: Tx, table: Table, values: dict[str, Any], conflict: Sequence[str]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True when a row was inserted."""
    dialect = postgresql if tx.is_postgres else sqlite
    stmt = dialect.insert(table).values(**values).on_conflict_do_nothing(index_elements=list(conflict))
    result = await tx.conn.execute(stmt)
    return bool(result.rowcount)
