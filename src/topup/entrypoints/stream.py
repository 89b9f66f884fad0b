"""`GET /v1/stream`: the merchant WebSocket (SPEC section 1 "Persistent connection").

Each connection keeps its own cursor into the `events` table (by `seq`, per merchant) and reads pages
from the database whenever it is woken, so a slow reader just falls behind and catches up: the send
queue is bounded and nothing else is buffered. One `EventHub` per process fans wake-ups out to the
connections: the in-process commit hook (`db.on_events`), PostgreSQL `LISTEN topup_events` (payload:
merchant id, so events made by other processes arrive at once) and a short poll that covers anything
missed.

On PostgreSQL a `seq` is taken at insert but becomes visible at commit, so an event can appear after a
higher one was already sent. The cursor remembers what it sent for `SETTLE_S` and looks back for such
late events, so each is still sent exactly once on the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
import structlog
from fastapi import APIRouter, WebSocket
from pydantic import ValidationError
from sqlalchemy import func, select

from topup import signing
from topup.adapters.db import tables as t
from topup.adapters.db.engine import Database
from topup.bootstrap import Container
from topup.domain.errors import TopupError
from topup.entrypoints.api.deps import MerchantCtx, load_merchant
from topup.entrypoints.api.merchant_routes import place
from topup.entrypoints.api.schemas import OrderIn
from topup.services.outbox import event_message

log = structlog.get_logger()

PATH = "/v1/stream"
AUTH_TIMEOUT_S = 10.0
# Hub: how often to look for events nobody announced (another process on SQLite, a lost NOTIFY).
POLL_S = 0.5
# Connection: a safety-net re-read even when nothing woke it.
IDLE_RECHECK_S = 5.0
# Events read per database round trip, and messages queued for one slow client.
PAGE = 100
SEND_QUEUE = 64
# Order placements one connection may have in progress at once.
ORDER_CONCURRENCY = 8
MAX_FRAME_CHARS = 64 * 1024
# PostgreSQL: how long a sent seq is remembered while older, still-invisible seqs may commit.
SETTLE_S = 5.0
# PostgreSQL: how often to try to LISTEN again after the listening connection was lost.
LISTEN_RETRY_S = 5.0
LATE_CHECK_S = 0.25
MAX_UNSETTLED = 10_000
CLOSE_POLICY = 1008
CLOSE_GOING_AWAY = 1001


# ---- the cursor (pure) --------------------------------------------------------------------------------


@dataclass
class StreamCursor:
    """Which of a merchant's events one connection has sent.

    Every event with `seq <= floor` is settled: sent, or older than what the connection was asked for.
    Seqs above the floor that were sent are kept with the time they were sent until `settle_s` has
    passed; then any older seq still unseen is taken to be rolled back and the floor moves up.
    With `settle_s == 0` (SQLite commits in seq order) the floor simply follows the last seq sent.
    """

    floor: int = 0
    high: int = 0
    settle_s: float = 0.0
    sent: dict[int, float] = field(default_factory=dict)

    @classmethod
    def at(cls, seq: int, settle_s: float = 0.0) -> StreamCursor:
        return cls(floor=seq, high=seq, settle_s=settle_s)

    def reset(self, seq: int) -> None:
        """Start again after `seq` (a `resume`)."""
        self.floor = self.high = seq
        self.sent.clear()

    def mark(self, seq: int, now: float) -> bool:
        """Record `seq` as sent; False if it was sent (or settled) already."""
        if seq <= self.floor or seq in self.sent or (self.settle_s <= 0 and seq <= self.high):
            return False
        if self.settle_s > 0:
            self.sent[seq] = now
        self.high = max(self.high, seq)
        return True

    def settle(self, now: float) -> None:
        if self.settle_s <= 0:
            self.floor = self.high
            return
        ripe = [s for s, at in self.sent.items() if now - at >= self.settle_s]
        if len(self.sent) - len(ripe) > MAX_UNSETTLED:
            ripe.append(sorted(self.sent)[len(self.sent) - MAX_UNSETTLED])
        if ripe:
            self.floor = max(self.floor, *ripe)
            self.sent = {s: at for s, at in self.sent.items() if s > self.floor}

    def missing(self, seqs: list[int]) -> list[int]:
        """Of the seqs now visible below `high`, those never sent (late commits)."""
        return [s for s in seqs if self.floor < s < self.high and s not in self.sent]

    @property
    def unsettled(self) -> bool:
        return self.floor < self.high


# ---- the hub ------------------------------------------------------------------------------------------


class Subscriber(Protocol):
    merchant_id: str

    def wake(self) -> None: ...

    def shutdown(self) -> None: ...


class EventHub:
    """One per process: turns commits, NOTIFYs and a poll into wake-ups of the right connections."""

    def __init__(self, db: Database, poll_s: float = POLL_S) -> None:
        self.db = db
        self.poll_s = poll_s
        self.subscribers: dict[str, set[Subscriber]] = {}
        self._kick = asyncio.Event()
        self._last_seq: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._listener: Any = None
        self._listen_again_at = 0.0
        self._closed = False

    async def start(self) -> EventHub:
        self.db.on_events.append(self.kick)
        if self.db.is_postgres:
            await self._listen()
        self._task = asyncio.create_task(self._run(), name="topup-event-hub")
        return self

    async def aclose(self) -> None:
        self._closed = True
        for subs in list(self.subscribers.values()):
            for s in list(subs):
                s.shutdown()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
        with contextlib.suppress(ValueError):
            self.db.on_events.remove(self.kick)

    def kick(self) -> None:
        """Something committed events in this process: look for whose."""
        self._kick.set()

    def poke(self, merchant_id: str) -> None:
        for s in self.subscribers.get(merchant_id, ()):
            s.wake()

    async def subscribe(self, sub: Subscriber) -> None:
        if not self.subscribers or self._last_seq is None:
            self._last_seq = await _max_seq(self.db)
        self.subscribers.setdefault(sub.merchant_id, set()).add(sub)

    def unsubscribe(self, sub: Subscriber) -> None:
        subs = self.subscribers.get(sub.merchant_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self.subscribers[sub.merchant_id]

    async def _listen(self) -> None:
        """LISTEN for events committed by other processes (best effort; the poll covers gaps)."""
        import asyncpg

        def on_notify(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
            self.poke(payload)

        dsn = self.db.url.replace("postgresql+asyncpg", "postgresql")
        try:
            conn = await asyncpg.connect(dsn)
            await conn.add_listener("topup_events", on_notify)
        except Exception as e:
            log.warning("event_hub_listen_failed", error=str(e)[:200])
            return
        self._listener = conn

    async def _run(self) -> None:
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), self.poll_s)
            self._kick.clear()
            if self._listener_lost():
                self._listener = None
                self._listen_again_at = time.monotonic() + LISTEN_RETRY_S
                await self._listen()
                for subs in list(self.subscribers.values()):
                    for s in list(subs):
                        s.wake()  # NOTIFYs may have been missed meanwhile
            if not self.subscribers:
                continue
            try:
                await self._scan()
            except Exception as e:  # database briefly away: the next tick tries again
                log.warning("event_hub_scan_failed", error=str(e)[:200])
                await asyncio.sleep(self.poll_s)

    def _listener_lost(self) -> bool:
        if not self.db.is_postgres or time.monotonic() < self._listen_again_at:
            return False
        return self._listener is None or bool(self._listener.is_closed())

    async def _scan(self) -> None:
        last = self._last_seq or 0
        async with self.db.transaction() as tx:
            rows = (
                await tx.conn.execute(
                    select(t.events.c.merchant_id, func.max(t.events.c.seq).label("seq"))
                    .where(t.events.c.seq > last)
                    .group_by(t.events.c.merchant_id)
                )
            ).all()
        for r in rows:
            self._last_seq = max(self._last_seq or 0, int(r.seq))
            self.poke(r.merchant_id)


async def _max_seq(db: Database, merchant_id: str | None = None) -> int:
    async with db.transaction() as tx:
        q = select(func.max(t.events.c.seq))
        if merchant_id is not None:
            q = q.where(t.events.c.merchant_id == merchant_id)
        return int((await tx.conn.execute(q)).scalar() or 0)


# ---- one connection -----------------------------------------------------------------------------------


def error_message(code: str, message: str, details: Any = None, request_id: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "error"}
    if request_id is not None:
        out["request_id"] = request_id
    out["error"] = {"code": code, "message": message, "details": details}
    return out


def _validation_details(e: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in err.get("loc", ())) or "order", "message": str(err.get("msg"))}
        for err in e.errors()[:50]
    ]


def _parse(text: str | None) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(message, None) or (None, error reply) for one client frame."""
    if text is None:
        return None, error_message("invalid_request", "send JSON text frames, not binary")
    if len(text) > MAX_FRAME_CHARS:
        return None, error_message("invalid_request", f"frame larger than {MAX_FRAME_CHARS} characters")
    try:
        msg = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None, error_message("invalid_request", "frame is not valid JSON")
    if not isinstance(msg, dict):
        return None, error_message("invalid_request", "a message is a JSON object with a `type`")
    return msg, None


def _request_id(msg: dict[str, Any]) -> Any:
    rid = msg.get("request_id")
    if isinstance(rid, bool) or not isinstance(rid, str | int) or (isinstance(rid, str) and len(rid) > 200):
        return None
    return rid


class StreamConnection:
    """Reader, writer and event pump of one authenticated connection."""

    def __init__(self, ws: WebSocket, c: Container, hub: EventHub, merchant: MerchantCtx) -> None:
        self.ws = ws
        self.c = c
        self.hub = hub
        self.merchant = merchant
        self.merchant_id = merchant.id
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(SEND_QUEUE)
        self.cursor = StreamCursor(settle_s=SETTLE_S if c.db.is_postgres else 0.0)
        self.cursor_lock = asyncio.Lock()
        self._woken = asyncio.Event()
        self._stopping = asyncio.Event()
        self._order_slots = asyncio.Semaphore(ORDER_CONCURRENCY)
        self._orders: set[asyncio.Task[None]] = set()
        self._late_checked = 0.0

    def wake(self) -> None:
        self._woken.set()

    def shutdown(self) -> None:
        self._stopping.set()

    async def run(self, start_seq: int) -> None:
        self.cursor.reset(start_seq)
        await self.hub.subscribe(self)
        self._woken.set()
        tasks = {
            asyncio.create_task(self._read(), name="stream-read"),
            asyncio.create_task(self._write(), name="stream-write"),
            asyncio.create_task(self._pump(), name="stream-pump"),
        }
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            done, _ = await asyncio.wait({*tasks, stopping}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                error = None if task.cancelled() else task.exception()
                if error is not None:
                    log.info("stream_closed", merchant_id=self.merchant_id, reason=repr(error)[:200])
        finally:
            self.hub.unsubscribe(self)
            everything = [*tasks, stopping, *self._orders]
            for task in everything:
                task.cancel()
            await asyncio.gather(*everything, return_exceptions=True)
        if self._stopping.is_set():
            with contextlib.suppress(Exception):
                await self.ws.close(CLOSE_GOING_AWAY, "server shutting down")

    async def send(self, message: dict[str, Any]) -> None:
        await self.outbox.put(message)

    async def _write(self) -> None:
        while True:
            message = await self.outbox.get()
            await self.ws.send_text(orjson.dumps(message).decode())

    async def _read(self) -> None:
        while True:
            frame = await self.ws.receive()
            if frame["type"] == "websocket.disconnect":
                return
            await self.handle(frame.get("text"))

    async def handle(self, text: str | None) -> None:
        msg, problem = _parse(text)
        if msg is None:
            await self.send(problem or error_message("invalid_request", "bad frame"))
            return
        kind = msg.get("type")
        rid = _request_id(msg)
        if kind == "ping":
            await self.send({"type": "pong"} if rid is None else {"type": "pong", "request_id": rid})
        elif kind == "order":
            await self._order(msg, rid)
        elif kind == "resume":
            await self._resume(msg.get("after_event_id"), rid)
        elif kind == "auth":
            await self.send(error_message("invalid_request", "already authenticated", request_id=rid))
        elif not isinstance(kind, str):
            await self.send(error_message("invalid_request", "missing `type`", request_id=rid))
        else:
            await self.send(
                error_message(
                    "invalid_request",
                    f"unknown message type {kind[:40]!r}; expected order, resume or ping",
                    request_id=rid,
                )
            )

    # -- orders

    async def _order(self, msg: dict[str, Any], rid: Any) -> None:
        if rid is None:
            await self.send(
                error_message("invalid_request", "`request_id` (a string or integer) is required")
            )
            return
        body = msg.get("order")
        if not isinstance(body, dict):
            await self.send(error_message("invalid_request", "`order` must be an object", request_id=rid))
            return
        # Placements run concurrently up to a bound; past it the reader waits (and so does the client).
        await self._order_slots.acquire()
        task = asyncio.create_task(self._place(rid, body))
        self._orders.add(task)
        task.add_done_callback(self._orders.discard)

    async def _place(self, rid: Any, body: dict[str, Any]) -> None:
        try:
            try:
                order_in = OrderIn.model_validate(body)
                order, created = await place(self.c, self.merchant, order_in)
            except ValidationError as e:
                details = _validation_details(e)
                first = details[0] if details else {"field": "order", "message": "invalid"}
                reply = error_message(
                    "invalid_request", f"{first['field']}: {first['message']}", details, request_id=rid
                )
            except TopupError as e:
                reply = error_message(e.code, e.message, e.details, request_id=rid)
            except Exception as e:
                log.exception("stream_order_failed", error=type(e).__name__)
                reply = error_message(
                    "internal_error", "internal error; the request changed nothing", request_id=rid
                )
            else:
                reply = {"type": "order.accepted", "request_id": rid, "order": order, "created": created}
            await self.send(reply)
        finally:
            self._order_slots.release()

    # -- events

    async def _resume(self, after: Any, rid: Any) -> None:
        if not isinstance(after, str) or not after or len(after) > 64:
            await self.send(
                error_message("invalid_request", "`after_event_id` must be an event id", request_id=rid)
            )
            return
        seq = await event_seq(self.c.db, self.merchant_id, after)
        if seq is None:
            await self.send(error_message("not_found", f"no event {after} for this merchant", request_id=rid))
            return
        async with self.cursor_lock:
            self.cursor.reset(seq)
            self._drop_queued_events()
        self._woken.set()

    def _drop_queued_events(self) -> None:
        """Events queued before a resume would arrive out of order; the resume re-reads them."""
        keep = []
        while not self.outbox.empty():
            m = self.outbox.get_nowait()
            if "event_id" not in m:
                keep.append(m)
        for m in keep:
            self.outbox.put_nowait(m)

    async def _pump(self) -> None:
        while True:
            wait = LATE_CHECK_S * 2 if self.cursor.unsettled else IDLE_RECHECK_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), wait)
            self._woken.clear()
            try:
                async with self.cursor_lock:
                    await self._catch_up()
            except Exception as e:  # database briefly away: keep the connection, retry shortly
                log.warning("stream_read_failed", error=str(e)[:200])
                await asyncio.sleep(1.0)
                self._woken.set()

    async def _catch_up(self) -> None:
        db = self.c.db
        while True:
            async with db.transaction() as tx:
                rows = (
                    await tx.conn.execute(
                        select(t.events.c.seq, t.events.c.payload)
                        .where(t.events.c.merchant_id == self.merchant_id, t.events.c.seq > self.cursor.high)
                        .order_by(t.events.c.seq)
                        .limit(PAGE)
                    )
                ).all()
            for r in rows:
                if self.cursor.mark(int(r.seq), time.monotonic()):
                    await self.send(_push(r))
            if len(rows) < PAGE:
                break
        if self.cursor.settle_s > 0 and self.cursor.unsettled:
            now = time.monotonic()
            if now - self._late_checked >= LATE_CHECK_S:
                self._late_checked = now
                await self._send_late()
        self.cursor.settle(time.monotonic())

    async def _send_late(self) -> None:
        async with self.c.db.transaction() as tx:
            seqs = (
                await tx.conn.execute(
                    select(t.events.c.seq).where(
                        t.events.c.merchant_id == self.merchant_id,
                        t.events.c.seq > self.cursor.floor,
                        t.events.c.seq < self.cursor.high,
                    )
                )
            ).scalars()
            late = self.cursor.missing([int(s) for s in seqs])
            rows: Sequence[Any] = []
            if late:
                rows = (
                    await tx.conn.execute(
                        select(t.events.c.seq, t.events.c.payload)
                        .where(t.events.c.seq.in_(late[:PAGE]))
                        .order_by(t.events.c.seq)
                    )
                ).all()
        for r in rows:
            if self.cursor.mark(int(r.seq), time.monotonic()):
                await self.send(_push(r))


def _push(row: Any) -> dict[str, Any]:
    body = event_message(row) if not isinstance(row.payload, str) else json.loads(row.payload)
    return {"type": body["type"], "event_id": body["event_id"], "order": body["order"]}


async def event_seq(db: Database, merchant_id: str, event_id: str) -> int | None:
    async with db.transaction() as tx:
        seq = (
            await tx.conn.execute(
                select(t.events.c.seq).where(t.events.c.id == event_id, t.events.c.merchant_id == merchant_id)
            )
        ).scalar()
    return None if seq is None else int(seq)


# ---- the endpoint -------------------------------------------------------------------------------------


async def _refuse(ws: WebSocket, code: str, message: str) -> None:
    with contextlib.suppress(Exception):
        await ws.send_text(orjson.dumps(error_message(code, message)).decode())
        await ws.close(CLOSE_POLICY, message[:120])


async def authenticate(ws: WebSocket, c: Container) -> tuple[MerchantCtx, str | None] | None:
    """The first frame must be a signed `auth` message; anything else is answered and closed."""
    try:
        frame = await asyncio.wait_for(ws.receive(), AUTH_TIMEOUT_S)
    except TimeoutError:
        await _refuse(ws, "unauthorized", f"no auth message within {AUTH_TIMEOUT_S:g} s")
        return None
    if frame["type"] == "websocket.disconnect":
        return None
    msg, problem = _parse(frame.get("text"))
    if msg is None or msg.get("type") != "auth":
        await _refuse(ws, "unauthorized", 'the first message must be {"type": "auth", ...}')
        return None
    merchant_id, ts, sig = msg.get("merchant_id"), msg.get("timestamp"), msg.get("signature")
    if not isinstance(merchant_id, str) or not merchant_id or len(merchant_id) > 64:
        await _refuse(ws, "unauthorized", "auth needs `merchant_id`")
        return None
    if not isinstance(ts, int | str) or isinstance(ts, bool) or not isinstance(sig, str):
        await _refuse(ws, "unauthorized", "auth needs `timestamp` (unix seconds) and `signature`")
        return None
    row = await load_merchant(c, merchant_id)
    if row is None:
        await _refuse(ws, "unauthorized", "unknown merchant or bad signature")
        return None
    try:
        signing.verify_parts(row.secret, ts, sig, "GET", PATH, b"", c.clock.now())
    except signing.SignatureError as e:
        await _refuse(ws, "unauthorized", str(e))
        return None
    after = msg.get("after_event_id")
    return MerchantCtx(row.id, row.secret, row.notify_url), after if isinstance(after, str) else None


async def hub_of(c: Container) -> EventHub:
    hub = c.extras.get("event_hub")
    if hub is None:  # the app was built without the plug-in's startup hook
        hub = c.extras["event_hub"] = await EventHub(c.db).start()
    return hub  # type: ignore[no-any-return]


router = APIRouter()


@router.websocket(PATH)
async def stream(ws: WebSocket) -> None:
    c: Container = ws.app.state.container
    await ws.accept()
    auth = await authenticate(ws, c)
    if auth is None:
        return
    merchant, after = auth
    start = await _max_seq(c.db, merchant.id)
    if after is not None:
        seq = await event_seq(c.db, merchant.id, after)
        if seq is None:
            await _refuse(ws, "not_found", f"no event {after} for this merchant")
            return
        start = seq
    await ws.send_text(orjson.dumps({"type": "auth.ok"}).decode())
    await StreamConnection(ws, c, await hub_of(c), merchant).run(start)


async def start_hub(c: Container) -> EventHub:
    hub = await EventHub(c.db).start()
    c.extras["event_hub"] = hub
    return hub


def install(c: Container) -> Any:
    """Register the WebSocket route; the startup hook runs the process's event hub."""
    c.extras.setdefault("routers", []).append(router)
    return start_hub
