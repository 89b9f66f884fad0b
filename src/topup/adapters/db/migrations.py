"""Alembic migrations, run on every start (several processes may start at once)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from topup.adapters.db.engine import Database


MIGRATIONS_DIR = Path(__file__).resolve().parent.parent.parent / "migrations"


def _alembic_config(connection: Any) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


async def migrate(db: Database) -> None:
    """Bring the schema to the latest revision (runs on every start)."""
    from alembic import command

    def run(sync_conn: Any) -> None:
        command.upgrade(_alembic_config(sync_conn), "head")

    if db.is_postgres:
        # The engine's connections are in autocommit mode (see Database); migrations want a transaction.
        async with db.engine.execution_options(isolation_level="READ COMMITTED").begin() as conn:
            # Several processes may start at once: one migrates, the others wait on the lock.
            from sqlalchemy import text

            await conn.execute(text("SELECT pg_advisory_xact_lock(727001)"))
            await conn.run_sync(run)
    else:
        async with db.engine.connect() as conn:
            await conn.run_sync(run)
            await conn.commit()
