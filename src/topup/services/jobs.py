"""Durable due work: enqueue in the caller's unit of work, claim with a lease, finish by deleting.

Each kind of job is a `JobKind` with one frozen payload type; `encode`/`decode` are the one codec
between a payload and the JSON object stored in the `jobs` table (fields left at their default are not
stored, so rows written before the payloads were typed decode unchanged). Workers claim rows through
`topup.adapters.db.repos.jobs` and hand each handler a `Job` whose payload is already typed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import orjson

from topup.services.ports.jobs import JobsRepository, NewJob, StoredJob


class JobKind(StrEnum):
    ROUTE = "route"
    """Create an order's next attempt and dispatch it (or fail the order)."""
    DEADLINE = "deadline"
    """An attempt's callback is overdue: query the supplier, then act."""
    NOTIFY = "notify"
    """Deliver one event to the merchant's webhook."""
    BALANCE_CHECK = "balance_check"
    """Ask a channel's supplier for its balance (pauses/resumes the channel)."""
    PAYMENT_EXPIRE = "payment_expire"
    """An unpaid payment ran out of time: release its orders."""
    SANDBOX_NOTIFY = "sandbox_notify"
    """The sandbox gateway's signed payment notification."""
    PRUNE = "prune"
    """Delete old operational rows of finished work (services/retention.py), then come back later."""


@dataclass(frozen=True)
class RoutePayload:
    kind: ClassVar[JobKind] = JobKind.ROUTE
    order_id: str
    deferrals: int = 0
    """Times put back because the channel was slow (`Fulfilment._defer`)."""
    channel: str | None = None
    """The slow channel of the last deferral."""
    rate_channel: str | None = None
    """A reserved turn under a channel's rate limit (`rate_limits.Turn`): channel, start, slot."""
    rate_at: float | None = None
    rate_slot: int | None = None
    rate_waits: int = 0

    @property
    def key(self) -> str:
        return f"route:{self.order_id}"

    def deferred(self, channel: str) -> RoutePayload:
        """Put back once more because `channel` was slow."""
        return dataclasses.replace(self, deferrals=self.deferrals + 1, channel=channel)

    def waiting_turn(self, channel: str, at: float, slot: int) -> RoutePayload:
        """Waiting (once more) for the turn reserved at `channel`'s rate slot `slot`, starting `at`."""
        return dataclasses.replace(
            self, rate_channel=channel, rate_at=at, rate_slot=slot, rate_waits=self.rate_waits + 1
        )


@dataclass(frozen=True)
class DeadlinePayload:
    kind: ClassVar[JobKind] = JobKind.DEADLINE
    ref: str

    @property
    def key(self) -> str:
        return f"deadline:{self.ref}"


@dataclass(frozen=True)
class NotifyPayload:
    kind: ClassVar[JobKind] = JobKind.NOTIFY
    event_id: str
    since: float | None = None
    """When the current retry window opened (an operator's requeue opens a new one)."""

    @property
    def key(self) -> str:
        return f"notify:{self.event_id}"


@dataclass(frozen=True)
class BalanceCheckPayload:
    kind: ClassVar[JobKind] = JobKind.BALANCE_CHECK
    channel: str

    @property
    def key(self) -> str:
        return f"balance:{self.channel}"


@dataclass(frozen=True)
class PaymentExpirePayload:
    kind: ClassVar[JobKind] = JobKind.PAYMENT_EXPIRE
    payment_id: str

    @property
    def key(self) -> str:
        return f"payment_expire:{self.payment_id}"


@dataclass(frozen=True)
class SandboxNotifyPayload:
    kind: ClassVar[JobKind] = JobKind.SANDBOX_NOTIFY
    payment_id: str
    status: str
    amount: int

    @property
    def key(self) -> str:
        return f"sandbox_notify:{self.payment_id}"


@dataclass(frozen=True)
class PrunePayload:
    kind: ClassVar[JobKind] = JobKind.PRUNE

    @property
    def key(self) -> str:
        return "prune"


Payload = (
    RoutePayload
    | DeadlinePayload
    | NotifyPayload
    | BalanceCheckPayload
    | PaymentExpirePayload
    | SandboxNotifyPayload
    | PrunePayload
)
PAYLOAD_TYPES: dict[JobKind, type[Payload]] = {
    p.kind: p
    for p in (
        RoutePayload,
        DeadlinePayload,
        NotifyPayload,
        BalanceCheckPayload,
        PaymentExpirePayload,
        SandboxNotifyPayload,
        PrunePayload,
    )
}

P = TypeVar("P", bound=Payload)
P_co = TypeVar("P_co", bound=Payload, covariant=True)


@dataclass(frozen=True)
class Job(Generic[P_co]):
    """A claimed job: `tries` counts claims, this one included."""

    id: int
    kind: JobKind
    key: str
    payload: P_co
    tries: int


Handler = Callable[[Job[P]], Awaitable[None]]


@dataclass(frozen=True)
class JobHandlers:
    """One handler per `JobKind` (each field is named after its kind's value)."""

    route: Handler[RoutePayload]
    deadline: Handler[DeadlinePayload]
    notify: Handler[NotifyPayload]
    balance_check: Handler[BalanceCheckPayload]
    payment_expire: Handler[PaymentExpirePayload]
    sandbox_notify: Handler[SandboxNotifyPayload]
    prune: Handler[PrunePayload]

    def for_kind(self, kind: JobKind) -> Handler[Any]:
        handler: Handler[Any] = getattr(self, kind.value)
        return handler


# ---- the codec ---------------------------------------------------------------------------------------


def to_json(payload: Payload) -> dict[str, Any]:
    """The JSON object stored for `payload`: its fields, less those at their default."""
    return {
        f.name: v
        for f in dataclasses.fields(payload)
        if (v := getattr(payload, f.name)) != f.default or f.default is dataclasses.MISSING
    }


def encode(payload: Payload) -> str:
    return orjson.dumps(to_json(payload)).decode()


def decode(job: StoredJob) -> Job[Payload]:
    """Type a stored row; an unknown kind or a payload missing a field raises `ValueError`."""
    try:
        kind = JobKind(job.kind)
    except ValueError:
        raise ValueError(f"no job kind {job.kind}") from None
    return Job(job.id, kind, job.key, from_json(PAYLOAD_TYPES[kind], job.payload, job.key), job.tries)


def from_json(cls: type[P], raw: dict[str, Any], key: str = "") -> P:
    """The payload stored as `raw` (keys it does not know are ignored)."""
    if cls is NotifyPayload and not raw.get("event_id"):  # rows from before the payload named it
        raw = {**raw, "event_id": key.removeprefix("notify:")}
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        return cls(**{k: v for k, v in raw.items() if k in names})
    except TypeError as e:
        raise ValueError(f"{cls.kind} job payload {raw!r}: {e}") from None


# ---- the queue ---------------------------------------------------------------------------------------


class JobsUnitOfWork(Protocol):
    """The part of `topup.services.uow.UnitOfWork` the queue uses (any unit of work will do)."""

    @property
    def now(self) -> float: ...

    @property
    def jobs(self) -> JobsRepository: ...


# Jobs due later than this are found by the workers' polling (every `worker_poll_s`, which must stay
# below it), so they wake nobody: a deadline per attempt would otherwise wake every worker for nothing.
WAKE_WITHIN_S = 0.5


def _new(uow: JobsUnitOfWork, payload: Payload, run_at: float | None, key: str | None) -> NewJob:
    return NewJob(payload.kind, payload.key if key is None else key, encode(payload), _at(uow, run_at))


def _at(uow: JobsUnitOfWork, run_at: float | None) -> float:
    return uow.now if run_at is None else run_at


async def enqueue(
    uow: JobsUnitOfWork, payload: Payload, run_at: float | None = None, *, key: str | None = None
) -> bool:
    """Queue work (key: the payload's unless given) unless a job with the same key is already
    queued; released to workers on commit."""
    inserted = await uow.jobs.add(_new(uow, payload, run_at, key))
    if inserted and (run_at is None or run_at <= uow.now + WAKE_WITHIN_S):
        uow.jobs.wake()
    return inserted


async def enqueue_many(uow: JobsUnitOfWork, payloads: Sequence[Payload], run_at: float | None = None) -> None:
    """`enqueue` for many jobs, each skipped if its key is already queued.

    The first goes through `enqueue` (which arranges the wake-up after commit); the rest are one
    executemany of the same rows, so 10,000 jobs stay quick.
    """
    if not payloads:
        return
    first, rest = payloads[0], payloads[1:]
    await enqueue(uow, first, run_at)
    if rest:
        await uow.jobs.add_many([_new(uow, p, run_at, None) for p in rest])


class JobRef(Protocol):
    """A claimed job as `finish`, `reschedule` and `defer` name it: its id and its key.

    Both, because SQLite hands a deleted row's id to the next insert: a handler that finished
    another job (a deadline's fail-over deletes it) and queued one (the route job) in the same unit
    could otherwise delete or move the new job instead of its own."""

    @property
    def id(self) -> int: ...

    @property
    def key(self) -> str: ...


async def finish(uow: JobsUnitOfWork, job: JobRef) -> None:
    await uow.jobs.finish(job.id, job.key)


async def reschedule(uow: JobsUnitOfWork, job: JobRef, run_at: float, error: str | None = None) -> None:
    await uow.jobs.reschedule(job.id, job.key, run_at, error)


async def defer(uow: JobsUnitOfWork, job: JobRef, run_at: float, payload: Payload) -> None:
    """Put a claimed job back for later without counting the claim as a try (its handler did not
    fail; it chose to wait), with a new payload to remember why."""
    await uow.jobs.defer(job.id, job.key, run_at, encode(payload))


async def delete_key(uow: JobsUnitOfWork, key: str) -> None:
    await uow.jobs.delete_key(key)


async def bring_forward(uow: JobsUnitOfWork, key: str, run_at: float) -> bool:
    """Make a queued, unclaimed job due at `run_at` when it is due later (waking workers if soon)."""
    moved = await uow.jobs.bring_forward(key, run_at)
    if moved and run_at <= uow.now + WAKE_WITHIN_S:
        uow.jobs.wake()
    return moved


async def requeue(uow: JobsUnitOfWork, payload: Payload) -> bool:
    """Queue the job, or, when one with its key is queued and not claimed, make it due now with this
    payload; True unless a worker holds it right now."""
    if await enqueue(uow, payload):
        return True
    moved = await uow.jobs.requeue(payload.key, uow.now, to_json(payload))
    if moved:
        uow.jobs.wake()
    return moved
