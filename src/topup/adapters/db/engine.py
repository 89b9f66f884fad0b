"""The database: a pool of connections and its transactions (`Tx`, the SQL unit of work).

Connection setup is in `connections.py`, migrations in `migrations.py` (re-exported here)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from topup.adapters.db.connections import _setup_postgres, _setup_sqlite, async_url
from topup.adapters.db.group_commit import MAX_GROUP, GroupCommit
from topup.adapters.db.repos import Repositories
from topup.clock import Clock
from topup.services.uow import UnitOfWork

T = TypeVar("T")


class Row(dict[str, Any]):
    """A result row of the raw statement helpers: `row["col"]` and `row.col` both work."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


@functools.lru_cache(maxsize=512)
def _qmark(sql: str) -> str:
    """`$1` placeholders (asyncpg) -> `?1` (sqlite3's numbered form)."""
    return _DOLLAR.sub(r"?\1", sql)


_DOLLAR = re.compile(r"\$(\d+)")


def _rowcount(status: str) -> int:
    """asyncpg's command tag ("UPDATE 3", "INSERT 0 1", "DELETE 0") -> rows affected."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


class Tx(Repositories):
    """One unit of work: a connection inside a transaction, plus work released after commit.

    Services use SQLAlchemy Core through `conn`, and for the hot path the raw helpers `exec`,
    `fetch`, `fetchrow` and `executemany`: portable SQL with `$1` placeholders that runs straight on
    asyncpg (PostgreSQL) or through the SQLite connection, skipping SQLAlchemy's per-statement work
    (~170 us of CPU each). On PostgreSQL, `tail` holds simple statements (NOTIFY, the ledger's balance
    block) that go to the server in one message with the COMMIT.
    """

    def __init__(self, conn: AsyncConnection, db: Database, now: float, raw: Any = None) -> None:
        self.conn = conn
        self.db = db
        self.now = now
        self.raw = raw
        self.tail: list[str] = []
        self._after_commit: list[Callable[[], Any]] = []
        self._before_commit: list[Callable[[], Awaitable[Any]]] = []
        self._first_count = 0
        self.jobs_enqueued = False
        self.events_emitted = False
        # Turn an error raised by the COMMIT message (the tail) into the caller's exception.
        self.commit_errors: list[Callable[[BaseException], BaseException | None]] = []
        self.committed = False  # set the moment the COMMIT succeeded (group commit relies on it)

    def after_commit(self, fn: Callable[[], Any]) -> None:
        self._after_commit.append(fn)

    def take_after_commit(self) -> list[Callable[[], Any]]:
        """The after-commit work queued so far, taken out (group commit runs it in its caller's task)."""
        taken, self._after_commit = self._after_commit, []
        return taken

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

    def notify(self, channel: str, payload: str = "") -> None:
        """PostgreSQL NOTIFY sent with the COMMIT (once per channel and payload); nothing on SQLite."""
        if self.raw is None:
            return
        stmt = f"NOTIFY {channel}, {sql_literal(payload)}" if payload else f"NOTIFY {channel}"
        if stmt not in self.tail:
            self.tail.append(stmt)

    async def exec(self, sql: str, *args: Any) -> int:
        """Run one statement; the number of rows it changed."""
        if self.raw is not None:
            return _rowcount(await self._pg(self.raw.execute, sql, args))
        return int((await self.conn.exec_driver_sql(_qmark(sql), args)).rowcount)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        if self.raw is not None:
            return [Row(r.items()) for r in await self._pg(self.raw.fetch, sql, args)]
        res = await self.conn.exec_driver_sql(_qmark(sql), args)
        keys = list(res.keys())
        return [Row(zip(keys, r, strict=True)) for r in res.all()]

    async def fetch_values(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """`fetch` as plain tuples, for bulk reads (100,000s of rows) where building a dict per row
        would cost more than the query."""
        if self.raw is not None:
            return [tuple(r) for r in await self._pg(self.raw.fetch, sql, args)]
        return [tuple(r) for r in (await self.conn.exec_driver_sql(_qmark(sql), args)).all()]

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        if self.raw is not None:
            r = await self._pg(self.raw.fetchrow, sql, args)
            return None if r is None else Row(r.items())
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """One statement for many rows (pipelined on PostgreSQL: one round trip)."""
        if not rows:
            return
        if self.raw is not None:
            await self._pg(self.raw.executemany, sql, (rows,))
            return
        await self.conn.exec_driver_sql(_qmark(sql), rows)

    async def _pg(self, fn: Callable[..., Awaitable[Any]], sql: str, args: tuple[Any, ...]) -> Any:
        try:
            return await fn(sql, *args)
        except _ASYNCPG_ERRORS as e:
            raise await _as_dbapi_error(self.conn, sql, e) from e


def sql_literal(value: str | None) -> str:
    """A SQL string literal (standard_conforming_strings is on: only quotes need doubling)."""
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


def _asyncpg_errors() -> tuple[type[BaseException], ...]:
    try:
        import asyncpg
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        return (OSError,)
    return (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, ConnectionError)


_ASYNCPG_ERRORS = _asyncpg_errors()


def _connection_lost(e: BaseException) -> bool:
    import asyncpg

    if isinstance(e, OSError | ConnectionError | asyncpg.ConnectionDoesNotExistError):
        return True
    if isinstance(e, asyncpg.InterfaceError) and "closed" in str(e):
        return True
    return str(getattr(e, "sqlstate", "") or "").startswith(("08", "57P"))


async def _as_dbapi_error(conn: AsyncConnection, sql: str, e: BaseException) -> DBAPIError:
    """A raw asyncpg error as SQLAlchemy would have raised it (callers and handlers expect DBAPIError);
    a lost connection is invalidated so the pool never hands it out again."""
    lost = _connection_lost(e)
    if lost:
        with contextlib.suppress(Exception):
            await conn.invalidate()
    return DBAPIError(sql, None, e, hide_parameters=True, connection_invalidated=lost)  # type: ignore[arg-type]


class Database:
    def __init__(
        self,
        url: str,
        clock: Clock,
        pool_size: int = 10,
        max_overflow: int = 0,
        group_commit: bool = True,
        group_max: int = MAX_GROUP,
    ) -> None:
        self.url = async_url(url)
        self.clock = clock
        self.is_postgres = self.url.startswith("postgresql")
        self.is_sqlite = not self.is_postgres
        if self.is_postgres:
            self.engine = create_async_engine(
                self.url,
                pool_size=pool_size,
                max_overflow=max_overflow,
                pool_recycle=300,
                # Statement parameters (merchant secrets, password hashes) never go into error messages.
                hide_parameters=True,
                # Transactions are driven by hand on the raw connection (BEGIN ... tail; COMMIT, see
                # `_pg_transaction`), so the driver adapter must never open one of its own. As the
                # engine's default the pool does not switch it on every checkout and back on checkin.
                isolation_level="AUTOCOMMIT",
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
        # Transactions committed by this process (tests count them).
        self.commits = 0
        self.group = GroupCommit(self, group_max) if group_commit else None

    async def run_grouped(self, fn: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        """`fn(uow)` in a transaction shared with other callers' at that moment (`group_commit.py`);
        its result once that transaction committed, or its own outcome alone if the group could not.
        With group commit off (`TOPUP_GROUP_COMMIT=false`), in a transaction of its own."""
        if self.group is not None:
            return await self.group.run(fn)
        async with self.transaction() as tx:
            return await fn(tx)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """The boundary owns the transaction: commit on success, roll back (and drop queued work) on error."""
        if self.is_postgres:
            async with self._pg_transaction() as tx:
                yield tx
        else:
            async with self._sqlite_transaction() as tx:
                yield tx
        self.commits += 1
        if tx.jobs_enqueued:
            for hook in self.on_jobs:
                hook()
        if tx.events_emitted:
            for hook in self.on_events:
                hook()
        for fn in tx._after_commit:
            fn()

    @contextlib.asynccontextmanager
    async def reads(self) -> AsyncIterator[Tx]:
        """For a few independent statements that need no transaction around them (a lookup, a delete
        by id): on PostgreSQL each runs on its own (autocommit), saving BEGIN and COMMIT; on SQLite it
        is an ordinary transaction. Nothing that waits for the commit (events, ledger, NOTIFY) may be
        used inside."""
        if not self.is_postgres:
            async with self.transaction() as tx:
                yield tx
            return
        async with self.engine.connect() as conn:
            fairy, raw, tx = await self._pg_tx(conn)
            try:
                await _clean(tx, raw)
                yield tx
            except BaseException as e:
                if not isinstance(e, Exception):
                    _discard(fairy)
                raise
            if tx._before_commit or tx.tail or tx._after_commit:
                raise RuntimeError("Database.reads() cannot carry work that waits for a commit")

    @contextlib.asynccontextmanager
    async def _sqlite_transaction(self) -> AsyncIterator[Tx]:
        lock = self._sqlite_lock
        assert lock is not None
        await lock.acquire()
        try:
            async with self.engine.connect() as conn:
                await conn.begin()
                tx = Tx(conn, self, self.clock.now())
                try:
                    yield tx
                    await _run_before_commit(tx)
                except BaseException:
                    await conn.rollback()
                    raise
                await conn.commit()
                tx.committed = True
        finally:
            lock.release()

    @contextlib.asynccontextmanager
    async def _pg_transaction(self) -> AsyncIterator[Tx]:
        """BEGIN on the raw asyncpg connection; the tail (NOTIFYs, balance block) and COMMIT go as one
        simple-query message, so a transaction costs no round trip beyond its own statements.

        The pool cannot clean up after us (with the adapter in autocommit mode its reset on return is a
        no-op), so every way out of here leaves the connection outside a transaction or discarded.
        """
        async with self.engine.connect() as conn:
            fairy, raw, tx = await self._pg_tx(conn)
            try:
                await _clean(tx, raw)
                await tx._pg(raw.execute, "BEGIN", ())
                yield tx
                await _run_before_commit(tx)
                message = "; ".join([*tx.tail, "COMMIT"])
                try:
                    status = await tx._pg(raw.execute, message, ())
                except DBAPIError as e:
                    for translate in tx.commit_errors:
                        mapped = translate(e.orig) if e.orig is not None else None
                        if mapped is not None:
                            raise mapped from None
                    raise
                if status != "COMMIT":
                    # COMMIT of a transaction a swallowed error had aborted answers ROLLBACK.
                    raise DBAPIError(message, None, RuntimeError(f"transaction ended with {status}"))  # type: ignore[arg-type]
                tx.committed = True
            except Exception:
                if raw.is_in_transaction():
                    try:
                        await raw.execute("ROLLBACK")
                    except Exception:
                        _discard(fairy)
                    except BaseException:
                        _discard(fairy)
                        raise
                raise
            except BaseException:
                # Cancelled mid-transaction: the connection's state is unknown; never reuse it.
                _discard(fairy)
                raise

    async def _pg_tx(self, conn: AsyncConnection) -> tuple[Any, Any, Tx]:
        """The pooled connection's record, its asyncpg connection and a Tx on them."""
        fairy = await conn.get_raw_connection()
        raw: Any = fairy.driver_connection
        return fairy, raw, Tx(conn, self, self.clock.now(), raw)

    async def dispose(self) -> None:
        if self.group is not None:
            await self.group.close()
        await self.engine.dispose()


async def _clean(tx: Tx, raw: Any) -> None:
    """A pooled connection left inside a transaction (it should never be) is rolled back first."""
    if raw.is_in_transaction():
        await tx._pg(raw.execute, "ROLLBACK", ())


def _discard(fairy: Any) -> None:
    """Close a pooled connection whose state is unknown instead of returning it to the pool."""
    with contextlib.suppress(Exception):
        fairy.invalidate()


async def _run_before_commit(tx: Tx) -> None:
    i = 0
    while i < len(tx._before_commit):  # a hook may register another
        await tx._before_commit[i]()
        i += 1


from topup.adapters.db.migrations import migrate  # noqa: E402  (re-exported: callers import it from here)

__all__ = ["Database", "Row", "Tx", "async_url", "migrate", "sql_literal"]
