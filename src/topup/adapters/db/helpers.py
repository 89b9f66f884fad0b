"""Small dialect-aware helpers used by the services."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite

from topup.ids import new_id as new_id

if TYPE_CHECKING:
    from topup.adapters.db.engine import Tx


async def insert_ignore(tx: Tx, table: Table, values: dict[str, Any], conflict: Sequence[str]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True when a row was inserted."""
    dialect = postgresql if tx.is_postgres else sqlite
    stmt = dialect.insert(table).values(**values).on_conflict_do_nothing(index_elements=list(conflict))
    result = await tx.conn.execute(stmt)
    return bool(result.rowcount)


def in_param(tx: Tx, n: int) -> str:
    """`IN <the list given as parameter $n>` for raw SQL: an array on PostgreSQL, a JSON array on SQLite
    (pass the value through `list_param`). One statement for any number of values."""
    return f"= ANY(${n}::text[])" if tx.is_postgres else f"IN (SELECT value FROM json_each(${n}))"


def list_param(tx: Tx, values: Iterable[str]) -> Any:
    """The parameter value for `in_param`."""
    return list(values) if tx.is_postgres else orjson.dumps(list(values)).decode()
