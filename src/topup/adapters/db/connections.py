"""Connection setup: driver URLs, SQLite pragmas, the PostgreSQL pool's idle-ping rule."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine


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
