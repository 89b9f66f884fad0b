"""Callbacks: a verified supplier callback is stored once per (channel, ref, status), then applied."""

from __future__ import annotations

from topup.domain import suppliers as port
from topup.domain.errors import NotFound
from topup.domain.orders import AttemptStatus
from topup.services.fulfilment.outcomes import Outcomes, record_exception
from topup.services.orders import add_event
from topup.services.ports.orders import StoredCallback
from topup.services.uow import UnitOfWork


class Callbacks(Outcomes):
    async def receive_callback(self, uow: UnitOfWork, channel_code: str, data: port.CallbackData) -> str:
        """Store a verified callback idempotently by (channel, ref, status), then apply it once."""
        attempt = await uow.orders.attempt_by_supplier_ref(channel_code, data.supplier_ref)
        if attempt is None:
            raise NotFound(f"unknown ref {data.supplier_ref}")
        ref, status = attempt.ref, data.status
        callback = StoredCallback(channel_code, ref, status, data.supplier_order_id, data.code, data.message)
        if not await uow.orders.store_callback(callback):
            return "repeat"
        await add_event(
            uow,
            attempt.order_id,
            attempt.no,
            "callback",
            {
                "status": status,
                "code": data.code,
                "message": data.message,
                "supplier_order_id": data.supplier_order_id,
                "attempt_status": attempt.status,
            },
        )
        if status == "success":
            outcome = await self.succeed_attempt(uow, attempt, "callback")
        elif status == "processing":
            outcome = "recorded"  # progress only; the deadline and query still decide
        elif attempt.status == AttemptStatus.PENDING:
            code = data.code or "unknown"
            await self.fail_attempt(uow, attempt, f"supplier_failed: {code}")
            outcome = "failed_over"
        elif attempt.status == AttemptStatus.SUCCEEDED:
            outcome = "failure_after_success"
            await record_exception(
                uow,
                outcome,
                attempt.order_id,
                ref,
                channel_code,
                {"code": data.code, "message": data.message},
            )
        else:
            outcome = "recorded"
        await uow.orders.set_callback_outcome(callback, outcome)
        return outcome
