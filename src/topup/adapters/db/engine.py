"""Engine setup (SQLite pragmas, PostgreSQL pool), transactions and migrations."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from topup.clock import Clock


def async_url(url: str) -> str:
    """Map a plain URL to its async driver (aiosqlite / asyncpg)."""
    u = make_url(url)
    if u.drivername in ("sqlite", "sqlite+pysqlite"):
        u = u.set(drivername="sqlite+aiosqlite")
    elif u.drivername in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg"):
        u = u.set(drivername="postgresql+asyncpg")
    return u.render_as_string(hide_password=False)


def _setup_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's BEGIN below decide transaction boundaries (pysqlite's own are wrong).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: Any) -> None:
        # Take the write lock up front so two writers never deadlock on a lock upgrade.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


# A pooled connection unused for longer than this is checked before use (a database restart kills it).
PING_AFTER_IDLE_S = 2.0


def _setup_postgres(engine: AsyncEngine) -> None:
    """Ping a connection on checkout only when it has sat idle; a busy one is known to be alive.

    SQLAlchemy's `pool_pre_ping` pings on every checkout, which on asyncpg is BEGIN; SELECT; ROLLBACK:
    three round trips in front of every transaction, the largest cost per order under load. A
    connection that dies while busy is still caught: the failed statement invalidates the pool.
    """
    import time

    from sqlalchemy import exc

    @event.listens_for(engine.sync_engine, "checkin")
    def on_checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_S:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception as e:
            raise exc.DisconnectionError(str(e)) from e
        if not alive:
            raise exc.DisconnectionError("connection failed its ping")


class Tx:
    """One unit of work: a connection inside a transaction, plus work released after commit."""

    def __init__(self, conn: AsyncConnection, db: Database, now: float) -> None:
        self.conn = conn
        self.db = db
        self.now = now
        self._after_commit: list[Callable[[], Any]] = []
        self._before_commit: list[Callable[[], Awaitable[Any]]] = []
        self._first_count = 0
        # Per-transaction state services keep until commit (e.g. the ledger's pending balance deltas).
        self.pending: dict[str, Any] = {}
        self.jobs_enqueued = False
        self.events_emitted = False

    def after_commit(self, fn: Callable[[], Any]) -> None:
        self._after_commit.append(fn)

    def before_commit(self, fn: Callable[[], Awaitable[Any]], last: bool = False) -> None:
        """Run `fn` as the transaction's last statements; an exception from it rolls everything back.

        `last` ones run after the others (the ledger's hot balance rows, locked for the least time).
        """
        if last:
            self._before_commit.append(fn)
        else:
            self._before_commit.insert(self._first_count, fn)
            self._first_count += 1

    @property
    def is_postgres(self) -> bool:
        return self.db.is_postgres


class Database:
    def __init__(self, url: str, clock: Clock, pool_size: int = 10) -> None:
        self.url = async_url(url)
        self.clock = clock
        self.is_postgres = self.url.startswith("postgresql")
        self.is_sqlite = not self.is_postgres
        if self.is_postgres:
            self.engine = create_async_engine(
                self.url,
                pool_size=pool_size,
                max_overflow=pool_size * 2,
                pool_recycle=300,
                # Statement parameters (merchant secrets, password hashes) never go into error messages.
                hide_parameters=True,
            )
            _setup_postgres(self.engine)
        else:
            self.engine = create_async_engine(self.url, hide_parameters=True)
            _setup_sqlite(self.engine)
        # SQLite has one writer: serialise this process's transactions instead of spinning on busy.
        self._sqlite_lock = asyncio.Lock() if self.is_sqlite else None
        # Hooks run after any commit that enqueued jobs / emitted events (wake the worker, streams).
        self.on_jobs: list[Callable[[], Any]] = []
        self.on_events: list[Callable[[], Any]] = []

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """The boundary owns the transaction: commit on success, roll back (and drop queued work) on error."""
        lock = self._sqlite_lock
        if lock is not None:
            await lock.acquire()
        try:
            async with self.engine.connect() as conn:
                await conn.begin()
                tx = Tx(conn, self, self.clock.now())
                try:
                    yield tx
                    i = 0
                    while i < len(tx._before_commit):  # a hook may register another
                        await tx._before_commit[i]()
                        i += 1
                except BaseException:
                    await conn.rollback()
                    raise
                await conn.commit()
        finally:
            if lock is not None:
                lock.release()
        if tx.jobs_enqueued:
            for hook in self.on_jobs:
                hook()
        if tx.events_emitted:
            for hook in self.on_events:
                hook()
        for fn in tx._after_commit:
            fn()

    async def dispose(self) -> None:
        await self.engine.dispose()


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
        async with db.engine.begin() as conn:
            # Several processes may start at once: one migrates, the others wait on the lock.
            from sqlalchemy import text

            await conn.execute(text("SELECT pg_advisory_xact_lock(727001)"))
            await conn.run_sync(run)
    else:
        async with db.engine.connect() as conn:
            await conn.run_sync(run)
            await conn.commit()
