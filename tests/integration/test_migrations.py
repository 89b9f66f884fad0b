"""The Alembic migrations build exactly the schema the code's tables describe."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from topup.adapters.db.engine import Database, migrate
from topup.adapters.db.tables import metadata
from topup.clock import Clock


def test_migrations_match_the_tables(empty_database_url: str) -> None:
    async def run() -> list:
        db = Database(empty_database_url, Clock())
        try:
            await migrate(db)
            await migrate(db)  # running again on start is a no-op

            def diff(sync_conn):  # type: ignore[no-untyped-def]
                return compare_metadata(MigrationContext.configure(sync_conn), metadata)

            async with db.engine.connect() as conn:
                return await conn.run_sync(diff)
        finally:
            await db.dispose()

    assert asyncio.run(run()) == []
