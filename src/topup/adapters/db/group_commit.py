"""Group commit: concurrent, independent units of work of one process share one transaction.

`Database.run_grouped(fn)` hands `fn(uow)` (pure database work: no HTTP, no sleeping) to the process's
`GroupCommit`. With no group in flight it starts one at once, so a lone caller waits for nothing;
callers arriving while one is in flight queue up and go together in the next (natural batching, at most
`max_size` a group). The fns of a group run one after another in ONE `Database.transaction()`, and each
caller gets its result only after the COMMIT; its after-commit work runs then, in its own task.

Every caller's outcome is one it could have had alone, because nothing of a group is kept unless the
whole group commits, and a group that committed is the same as its fns committed one after another:

- a group of one is run by its caller in its own transaction, exactly as without grouping;
- an fn that raises rolls the whole group back: it runs again alone (its caller gets that run's result
  or exception), and the others go together again in the next group (once; after that, alone); an fn
  that raises `services.uow.Declined` (it chose to write nothing: a rate limit, a stuck channel) is not
  run again: its caller gets that exception;
- a COMMIT that fails (`InsufficientBalance` from the ledger's balance block, a deadlock or a
  serialization failure) rolls the group back and every fn runs again alone;
- a connection lost at the COMMIT (it may have committed) runs nothing again: every caller gets that
  error, as each would have alone.

A caller cancelled while its fn waits in the queue drops out; once its group has started, its work
commits with the group (as a request whose client leaves after its COMMIT).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import structlog
from sqlalchemy.exc import DBAPIError

from topup.services.uow import Declined

if TYPE_CHECKING:
    from topup.adapters.db.engine import Database, Tx

T = TypeVar("T")
MAX_GROUP = 64

log = structlog.get_logger("topup.db")

# Set while a group's (or a lone caller's) fn runs: a nested `run_grouped` would wait for itself.
_inside: contextvars.ContextVar[bool] = contextvars.ContextVar("group_commit_inside", default=False)


class _Alone:
    """The caller runs its fn in a transaction of its own (a group of one, or after a fallback)."""

    def __init__(self, finished: asyncio.Event | None = None) -> None:
        self.finished = finished  # set by the caller when done (a group of one holds the queue)


@dataclass(eq=False)
class _Call:
    fn: Callable[[Tx], Awaitable[Any]]
    future: asyncio.Future[Any]
    regrouped: bool = False
    after: list[Callable[[], Any]] = field(default_factory=list)


@dataclass
class GroupStats:
    """What group commit did in this process (tests and metrics read it)."""

    groups: int = 0
    """Transactions that committed two or more callers' work."""
    grouped_calls: int = 0
    """Callers whose work committed in such a transaction."""
    alone: int = 0
    """Groups of one (run by their caller)."""
    fallbacks: int = 0
    """Groups rolled back and re-run (an fn raised or the COMMIT failed)."""
    sizes: list[int] = field(default_factory=list)
    """Size of each committed group (the last 1,000)."""


class GroupCommit:
    def __init__(self, db: Database, max_size: int = MAX_GROUP) -> None:
        self.db = db
        self.max_size = max(1, max_size)
        self.stats = GroupStats()
        self._queue: deque[_Call] = deque()
        # Declined fns: run alone once the group after theirs is done (see `_fall_back`).
        self._after_next: list[_Call] = []
        self._task: asyncio.Task[None] | None = None

    async def run(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        if _inside.get():
            raise RuntimeError("run_grouped inside a grouped unit of work would wait for itself")
        call = _Call(fn, asyncio.get_running_loop().create_future())
        self._queue.append(call)
        if self._task is None:
            self._task = asyncio.create_task(self._drain())
        try:
            outcome = await call.future
        except asyncio.CancelledError:
            self._abandon(call)
            raise
        if isinstance(outcome, _Alone):
            return await self._alone(fn, outcome.finished)
        for hook in call.after:
            hook()
        return outcome  # type: ignore[no-any-return]

    @staticmethod
    def _abandon(call: _Call) -> None:
        """The caller was cancelled: a group of one must not hold the queue for it, and work its group
        committed still has its after-commit part run."""
        future = call.future
        if not future.done() or future.cancelled() or future.exception() is not None:
            return
        outcome = future.result()
        if isinstance(outcome, _Alone):
            if outcome.finished is not None:
                outcome.finished.set()
            return
        _run_quietly(call.after)

    async def close(self) -> None:
        """Wait for the group in flight (before the engine is disposed)."""
        task = self._task
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    async def _alone(self, fn: Callable[[Tx], Awaitable[T]], finished: asyncio.Event | None) -> T:
        try:
            async with self.db.transaction() as tx:
                # Only while fn runs: the after-commit work (run as the block ends) may group again.
                token = _inside.set(True)
                try:
                    return await fn(tx)
                finally:
                    _inside.reset(token)
        finally:
            if finished is not None:
                finished.set()

    async def _drain(self) -> None:
        batch: list[_Call] = []
        try:
            while self._queue or self._after_next:
                waiting, self._after_next = self._after_next, []
                batch = self._take()
                if len(batch) == 1:
                    await self._hand_back(batch[0])
                elif batch:
                    await self._group(batch)
                batch = []
                for call in waiting:
                    _resolve(call, _Alone())
        finally:
            self._task = None
            # Cancelled (the loop is closing): whoever still waits runs alone.
            for call in [*batch, *self._queue, *self._after_next]:
                _resolve(call, _Alone())
            self._queue.clear()
            self._after_next.clear()

    def _take(self) -> list[_Call]:
        batch: list[_Call] = []
        while self._queue and len(batch) < self.max_size:
            call = self._queue.popleft()
            if not call.future.done():  # done: its caller was cancelled while it waited
                batch.append(call)
        return batch

    async def _hand_back(self, call: _Call) -> None:
        """A group of one: its caller runs it in its own transaction while the next group gathers."""
        finished = asyncio.Event()
        self.stats.alone += 1
        _resolve(call, _Alone(finished))
        await finished.wait()

    async def _group(self, batch: list[_Call]) -> None:
        token = _inside.set(True)
        results: list[Any] = []
        tx: Tx | None = None
        try:
            async with self.db.transaction() as tx:
                for call in batch:
                    results.append(await call.fn(tx))
                    call.after = tx.take_after_commit()
        except BaseException as e:
            if tx is not None and tx.committed:
                # Committed; only what follows (a wake-up hook, returning the connection) failed.
                self._deliver(batch, results)
                if not isinstance(e, Exception):
                    raise
                log.error("group_commit_after_commit_failed", error=repr(e))
                return
            ran_all = len(results) == len(batch)
            if ran_all and (not isinstance(e, Exception) or _outcome_unknown(e)):
                # Lost at the COMMIT: it may have committed, so nothing runs again. Alone, each caller
                # would have seen this same error (or cancellation).
                for call in batch:
                    if not call.future.done():
                        if isinstance(e, Exception):
                            call.future.set_exception(e)
                        else:
                            call.future.cancel()
            elif isinstance(e, Exception):
                self._fall_back(batch, None if ran_all else len(results), isinstance(e, Declined))
            if not isinstance(e, Exception):
                raise
            return
        finally:
            _inside.reset(token)
        self._deliver(batch, results)

    def _deliver(self, batch: list[_Call], results: list[Any]) -> None:
        stats = self.stats
        stats.groups += 1
        stats.grouped_calls += len(batch)
        stats.sizes.append(len(batch))
        del stats.sizes[:-1000]
        for call, result in zip(batch, results, strict=True):
            if call.future.cancelled():
                _run_quietly(call.after)  # its caller is gone, but its work committed
            _resolve(call, result)

    def _fall_back(self, batch: list[_Call], raised: int | None, declined: bool = False) -> None:
        """The group rolled back. The fn that raised (index `raised`) runs again alone (`declined`:
        after the next group); the others go together once more at the head of the queue, or alone
        when the COMMIT failed or they did."""
        self.stats.fallbacks += 1
        again: list[_Call] = []
        for i, call in enumerate(batch):
            call.after = []
            if declined and i == raised:
                self._after_next.append(call)
            elif raised is None or i == raised or call.regrouped:
                _resolve(call, _Alone())
            else:
                call.regrouped = True
                again.append(call)
        self._queue.extendleft(reversed(again))


def _outcome_unknown(e: BaseException) -> bool:
    """The connection was lost: a COMMIT sent before it may have been applied."""
    return isinstance(e, DBAPIError) and bool(e.connection_invalidated)


def _run_quietly(hooks: list[Callable[[], Any]]) -> None:
    """After-commit work of a caller that is gone: an error in it is logged, never raised."""
    for hook in hooks:
        try:
            hook()
        except Exception as e:
            log.error("group_commit_after_commit_failed", error=repr(e))


def _resolve(call: _Call, outcome: Any) -> None:
    if not call.future.done():
        call.future.set_result(outcome)
