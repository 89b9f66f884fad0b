"""The simulator's wire formats: one module per supplier protocol.

A mode module defines
- `NAME`: the protocol name (as in `ChannelBehaviour.protocol` and the platform's channel `protocol`);
- `register(app, sim, now)`: adds its routes under `/sim/{code}/...` (a channel's `base_url` is
  `<simulator>/sim/<code>`), using `sim.take_order`, `sim.start_callbacks`, `sim.query_status` and
  `failing_front_end`, `reply_delay` and `gibberish` for the behaviour knobs every protocol
  honours (latency, hang, HTTP status, garbage);
- `callback(channel, order, status, now) -> (body, headers) | None`: the signed callback for a settled
  order (`status` is `success` or `failed`), or None for a protocol without callbacks.
The engine delivers callbacks and retries them; the mode only speaks the format.
"""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
from functools import cache
from types import ModuleType
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import Response

if TYPE_CHECKING:
    from topup.adapters.suppliers.simulator.engine import Channel


@cache
def modes() -> dict[str, ModuleType]:
    """Protocol name -> mode module, for every module in this package."""
    found = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found[module.NAME] = module
    return found


def mode_for(protocol: str) -> ModuleType:
    try:
        return modes()[protocol]
    except KeyError:
        raise ValueError(f"the simulator does not speak {protocol!r}") from None


async def failing_front_end(
    channel: Channel, body: bytes = b'{"error": "simulated failure reply"}'
) -> Response | None:
    """A configured `http_status` other than 200: wait the reply delay and answer it (the order is
    not taken, so a later query says not_found). None: go on."""
    behaviour = channel.behaviour
    if behaviour.http_status is None or behaviour.http_status == 200:
        return None
    await reply_delay(channel)
    return Response(body, status_code=behaviour.http_status, media_type="application/json")


async def reply_delay(channel: Channel) -> None:
    """Wait `reply_latency_s + hang_s` before answering (after the order is taken)."""
    await asyncio.sleep(channel.behaviour.reply_latency_s + channel.behaviour.hang_s)


def json_object_or_reason(body: bytes) -> dict[str, Any] | str:
    """A request body as a JSON object, or what is wrong with it (for a 400)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "body is not JSON"
    return payload if isinstance(payload, dict) else "body is not a JSON object"


def gibberish() -> Response:
    """What `malformed_reply` answers instead of the protocol's reply."""
    return Response(b"<html>502 upstream gibberish", status_code=200, media_type="text/html")
