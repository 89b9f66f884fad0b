"""One authenticated connection: reads client messages, places orders, pumps its merchant's events."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import orjson
import structlog
from fastapi import WebSocket
from pydantic import ValidationError

from topup.bootstrap import Container
from topup.domain.errors import TopupError
from topup.entrypoints.api.deps import MerchantCtx
from topup.entrypoints.api.merchant_routes import place
from topup.entrypoints.api.schemas import OrderIn
from topup.entrypoints.stream.cursor import StreamCursor
from topup.entrypoints.stream.events import PAGE, _push, event_seq, events_after, late_events
from topup.entrypoints.stream.hub import EventHub
from topup.entrypoints.stream.messages import _parse, _request_id, _validation_details, error_message

log = structlog.get_logger()

# A safety-net re-read even when nothing woke the connection.
IDLE_RECHECK_S = 5.0
# Messages queued for one slow client.
SEND_QUEUE = 64
# Order placements one connection may have in progress at once.
ORDER_CONCURRENCY = 8
# PostgreSQL: how long a sent seq is remembered while older, still-invisible seqs may commit.
SETTLE_S = 5.0
LATE_CHECK_S = 0.25
CLOSE_GOING_AWAY = 1001


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
            rows = await events_after(db, self.merchant_id, self.cursor.high)
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
        rows = await late_events(self.c.db, self.merchant_id, self.cursor)
        for r in rows:
            if self.cursor.mark(int(r.seq), time.monotonic()):
                await self.send(_push(r))
