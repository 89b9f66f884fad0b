"""Fulfilment, the routing engine: route an order to its next channel, dispatch, apply callbacks and
deadlines, finish it. It depends on the supplier port (`domain.suppliers.SupplierProtocol`) and units
of work only, so a new supplier protocol is one adapter module.

One module per step, each adding its part to the engine:

- `base`: the engine's ports, settings and hooks (`on_order_failed` refunds, `final_hooks`);
- `outcomes`: an attempt fails or succeeds, an order completes or fails (conditional updates);
- `route`: rank the group, fix the route plan, store the next attempt, move the sticky channel;
- `dispatch`: the route job: store the attempt, send it, record the reply;
- `deadline`: an overdue attempt: query, wait, fail over or abandon;
- `callbacks`: store a verified callback once, then apply it;
- `inline`: order intake with its first attempt in the same unit, sent right after the commit.
"""

from __future__ import annotations

from topup.services.fulfilment.base import (
    DEFER_BASE_S,
    DEFER_MAX_S,
    DISPATCH_GRACE_S,
    DISPATCH_SENT,
    ChannelBusy,
    FinalHook,
    OrderHook,
    Storage,
    defer_delay,
)
from topup.services.fulfilment.callbacks import Callbacks
from topup.services.fulfilment.deadline import Deadlines
from topup.services.fulfilment.inline import Inline
from topup.services.fulfilment.outcomes import record_exception
from topup.services.fulfilment.route import NextDispatch


class Fulfilment(Inline, Deadlines, Callbacks):
    """The routing engine: `accept` (intake), `handle_route` and `handle_deadline` (job handlers),
    `receive_callback`."""


__all__ = [
    "DEFER_BASE_S",
    "DEFER_MAX_S",
    "DISPATCH_GRACE_S",
    "DISPATCH_SENT",
    "ChannelBusy",
    "FinalHook",
    "Fulfilment",
    "NextDispatch",
    "OrderHook",
    "Storage",
    "defer_delay",
    "record_exception",
]
