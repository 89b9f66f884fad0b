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

    cursor.py      StreamCursor: which events one connection has sent (pure)
    events.py      queries on the `events` table and the push message made from a row
    hub.py         EventHub: commit hook + LISTEN + poll -> wake-ups of subscribed connections
    messages.py    client frame parsing, error replies, request ids
    connection.py  StreamConnection: reader, writer, order placement and event pump of one socket
    endpoint.py    the route and the `auth` handshake (`create_app` includes the router, runs the hub)
"""

from __future__ import annotations

from topup.entrypoints.stream.connection import (
    CLOSE_GOING_AWAY,
    IDLE_RECHECK_S,
    LATE_CHECK_S,
    ORDER_CONCURRENCY,
    SEND_QUEUE,
    SETTLE_S,
    StreamConnection,
)
from topup.entrypoints.stream.cursor import MAX_UNSETTLED, StreamCursor
from topup.entrypoints.stream.endpoint import (
    AUTH_TIMEOUT_S,
    CLOSE_POLICY,
    PATH,
    authenticate,
    hub_of,
    router,
    stream,
)
from topup.entrypoints.stream.events import PAGE, event_seq
from topup.entrypoints.stream.hub import LISTEN_RETRY_S, POLL_S, EventHub, Subscriber
from topup.entrypoints.stream.messages import MAX_FRAME_CHARS, error_message
from topup.entrypoints.stream.messages import _parse as _parse  # the unit tests parse frames directly

__all__ = [
    "AUTH_TIMEOUT_S",
    "CLOSE_GOING_AWAY",
    "CLOSE_POLICY",
    "IDLE_RECHECK_S",
    "LATE_CHECK_S",
    "LISTEN_RETRY_S",
    "MAX_FRAME_CHARS",
    "MAX_UNSETTLED",
    "ORDER_CONCURRENCY",
    "PAGE",
    "PATH",
    "POLL_S",
    "SEND_QUEUE",
    "SETTLE_S",
    "EventHub",
    "StreamConnection",
    "StreamCursor",
    "Subscriber",
    "authenticate",
    "error_message",
    "event_seq",
    "hub_of",
    "router",
    "stream",
]
