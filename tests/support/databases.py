"""Test databases: every test gets its own, copied from one database migrated once per run.

Migrating a fresh database costs 0.4 s on SQLite and 1.5-2 s on PostgreSQL (create + Alembic), paid by
~430 tests; a copy costs a few milliseconds (SQLite: the file) or ~0.2 s (PostgreSQL: CREATE DATABASE
... TEMPLATE). The migrations themselves are still tested on empty databases (`empty_database_url`).
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from pathlib import Path

from tests.support.platform import PG_ADMIN_DSN


def _migrate(url: str) -> None:
    from topup.adapters.db.engine import Database, migrate
    from topup.clock import Clock

    async def run() -> None:
        db = Database(url, Clock(), pool_size=1)
        try:
            await migrate(db)
        finally:
            await db.dispose()

    asyncio.run(run())


def migrated_sqlite(directory: Path) -> Path:
    """A SQLite file at the latest revision (its WAL folded in when the last connection closed)."""
    path = directory / "template.db"
    _migrate(f"sqlite:///{path}")
    return path


def sqlite_copy(template: Path, directory: Path) -> str:
    target = directory / "topup.db"
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


def _pg_url(name: str) -> str:
    return f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{name}"


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def migrated_pg() -> str:
    """A PostgreSQL database at the latest revision, to copy; returns its name."""
    name = f"topup_tmpl_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    _migrate(_pg_url(name))
    return name


def pg_copy(template: str) -> tuple[str, str]:
    """A new database copied from `template`; returns (name, url)."""
    import asyncpg

    name = f"topup_test_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        # The template's last connection may still be closing on the server side: retry briefly.
        for attempt in range(50):
            try:
                await _admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                return
            except asyncpg.ObjectInUseError:
                if attempt == 49:
                    raise
                await asyncio.sleep(0.05)

    asyncio.run(create())
    return name, _pg_url(name)


def drop_pg(name: str) -> None:
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
