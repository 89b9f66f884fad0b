"""Payments: one combined payment for a set of `pending_payment` orders, by balance or the sandbox gateway.

The port other features use is `Payments.create / get / render / close_pending`; settlement is reported
to them through `on_settled` hooks (batches keep their status with one). The sandbox gateway is a
stand-in for a third-party payment provider: a hosted pay page whose Pay / Decline buttons queue a
signed asynchronous notify (`POST /sandbox/notify`) back to this service, like a real gateway would.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog

from topup import keys, signing
from topup.domain import ledger as L
from topup.domain.errors import InvalidRequest, InvalidState, NotFound
from topup.domain.orders import Order
from topup.domain.payments import PaymentMethod, PaymentStatus, parse_notify
from topup.ids import new_id
from topup.services import jobs, ledger, outbox
from topup.services.fulfilment import record_exception
from topup.services.jobs import Job
from topup.services.ports.http_post import Poster
from topup.services.ports.payments import Payment
from topup.services.uow import Transactions, UnitOfWork

log = structlog.get_logger()

SettledHook = Callable[[UnitOfWork, Payment, PaymentStatus], Awaitable[None]]
OrderHook = Callable[[UnitOfWork, Order], Awaitable[None]]

NOTIFY_PATH = "/sandbox/notify"
# The gateway's notify gives up after this many tries (worker backoff 0.5 s doubling to 60 s: ~5 min),
# or after NOTIFY_MAX_TRIES_4XX when the service keeps refusing it with a 4xx.
NOTIFY_MAX_TRIES = 12
NOTIFY_MAX_TRIES_4XX = 3


@dataclass(frozen=True)
class Payable:
    """One order to pay for, with its price."""

    order_id: str
    price: int


def sandbox_secret(master_key: str, configured: str | None) -> str:
    """The secret the sandbox gateway signs notifies with: TOPUP_SANDBOX_SECRET, else derived from the
    master key (not the admin token: rotating the token leaves pending payments valid)."""
    if configured:
        return configured
    return keys.purpose_key(master_key, keys.SANDBOX)


async def enqueue_routes(tx: UnitOfWork, order_ids: list[str]) -> None:
    """A `route` job per order (the same job `services.orders` queues for a single order)."""
    await jobs.enqueue_many(tx, [jobs.RoutePayload(oid) for oid in order_ids])


@dataclass
class Payments:
    """The payment system's ports: database, HTTP poster (the gateway's notify), public base URL, secret."""

    db: Transactions
    http: Poster
    public_base: str
    secret: str
    ttl_s: float
    now: Callable[[], float]
    # Called in the transaction that settles a payment (paid / declined / expired).
    on_settled: list[SettledHook] = field(default_factory=list)
    # Called for each order this module cancels (the order-final hooks of other features).
    order_final_hooks: Callable[[], list[OrderHook]] = lambda: []

    # ---- the merchant side ----------------------------------------------------------------------

    async def create(
        self,
        tx: UnitOfWork,
        merchant_id: str,
        method: PaymentMethod,
        orders: list[Payable],
        batch_id: str | None = None,
    ) -> Payment:
        """One payment for every given order. `balance` pays at once (402 and nothing changes if short);
        `sandbox` stays pending until the gateway's notify or the expiry."""
        if not orders:
            raise InvalidState("nothing to pay: no order is waiting for payment")
        amount = sum(o.price for o in orders)
        payment_id = new_id("pay", tx.now)
        is_balance = method is PaymentMethod.BALANCE
        await tx.payments.add(
            Payment(
                id=payment_id,
                merchant_id=merchant_id,
                batch_id=batch_id,
                method=str(method),
                amount=amount,
                status=str(PaymentStatus.PAID if is_balance else PaymentStatus.PENDING),
                refunded=0,
                expires_at=None if is_balance else tx.now + self.ttl_s,
                created_at=tx.now,
                paid_at=tx.now if is_balance else None,
                updated_at=tx.now,
            )
        )
        if is_balance:
            # One transfer of the total; raises InsufficientBalance and the whole request rolls back.
            await ledger.post(
                tx,
                L.TransferKind.BATCH_PAYMENT,
                payment_id,
                L.transfer(L.available_account(merchant_id), L.held_account(merchant_id), amount),
                merchant_id=merchant_id,
                payment_id=payment_id,
            )
        ids = [o.order_id for o in orders]
        changed = await tx.payments.attach_orders(
            ids, merchant_id, payment_id, "balance" if is_balance else None
        )
        if changed != len(ids):
            raise InvalidState("some orders are no longer waiting for payment; nothing was charged")
        if is_balance:
            await self._start_orders(tx, ids, payment_id, "balance")
        else:
            await jobs.enqueue(tx, jobs.PaymentExpirePayload(payment_id), tx.now + self.ttl_s)
        return await self.get(tx, payment_id)

    async def get(self, tx: UnitOfWork, payment_id: str, for_update: bool = False) -> Payment:
        payment = await tx.payments.get(payment_id, for_update)
        if payment is None:
            raise NotFound(f"payment {payment_id} not found")
        return payment

    async def render(self, tx: UnitOfWork, payment: Payment) -> dict[str, Any]:
        order_ids = await tx.payments.order_ids(payment.id)
        out: dict[str, Any] = {
            "payment_id": payment.id,
            "method": payment.method,
            "amount": payment.amount,
            "status": payment.status,
            "order_ids": order_ids,
            "refunded": payment.refunded,
        }
        if payment.method == PaymentMethod.SANDBOX:
            out["pay_url"] = self.pay_url(payment.id)
            out["expires_at"] = payment.expires_at
        return out

    def pay_url(self, payment_id: str) -> str:
        return f"{self.public_base}/sandbox/pay/{payment_id}"

    async def close_pending(self, tx: UnitOfWork, payment_id: str) -> bool:
        """Close a pending sandbox payment whose orders were cancelled elsewhere (batch cancel)."""
        closed = await tx.payments.settle(payment_id, PaymentStatus.EXPIRED)
        if closed:
            await jobs.delete_key(tx, jobs.PaymentExpirePayload(payment_id).key)
        return closed

    # ---- settlement ----------------------------------------------------------------------------

    async def apply_notify(self, tx: UnitOfWork, body: Any) -> str:
        """A verified sandbox notify: settle the payment once; a repeat is a no-op."""
        payment_id, outcome, amount = parse_notify(body)
        payment = await self.get(tx, payment_id, for_update=True)
        if payment.method != PaymentMethod.SANDBOX:
            raise InvalidRequest(f"payment {payment_id} is not a sandbox payment")
        if outcome is PaymentStatus.PAID and amount != payment.amount:
            raise InvalidRequest(f"amount {amount} does not match the payment's {payment.amount}")
        if not await tx.payments.settle(payment_id, outcome):
            if payment.status == outcome:
                return "repeat"
            if outcome is PaymentStatus.PAID:
                # The gateway took money for a payment we had already closed: a person must refund it.
                await record_exception(
                    tx,
                    "late_payment",
                    None,
                    payment_id,
                    None,
                    {"payment_status": payment.status, "amount": amount, "batch_id": payment.batch_id},
                )
                return "late_payment"
            return "ignored"
        await jobs.delete_key(tx, jobs.PaymentExpirePayload(payment_id).key)
        payment = await self.get(tx, payment_id)
        if outcome is PaymentStatus.PAID:
            await ledger.post(
                tx,
                L.TransferKind.BATCH_PAYMENT,
                payment_id,
                L.transfer(L.WORLD_SANDBOX, L.SANDBOX_HELD, payment.amount),
                merchant_id=payment.merchant_id,
                payment_id=payment_id,
            )
            ids = await tx.payments.pending_order_ids(payment_id)
            await tx.payments.start_orders(ids, "sandbox")
            await self._start_orders(tx, ids, payment_id, "sandbox")
        else:
            await self.cancel_orders(tx, await tx.payments.pending_order_ids(payment_id), "payment_declined")
        for hook in self.on_settled:
            await hook(tx, payment, outcome)
        return str(outcome)

    async def expire(self, tx: UnitOfWork, payment_id: str) -> bool:
        """An unpaid sandbox payment past its time: expire it and cancel its orders."""
        payment = await self.get(tx, payment_id, for_update=True)
        if not await tx.payments.settle(payment_id, PaymentStatus.EXPIRED):
            return False
        await self.cancel_orders(tx, await tx.payments.pending_order_ids(payment_id), "payment_expired")
        for hook in self.on_settled:
            await hook(tx, payment, PaymentStatus.EXPIRED)
        return True

    async def handle_expire_job(self, job: Job[jobs.PaymentExpirePayload]) -> None:
        async with self.db.transaction() as tx:
            await self.expire(tx, job.payload.payment_id)
            await jobs.finish(tx, job)

    async def _start_orders(self, tx: UnitOfWork, ids: list[str], payment_id: str, funding: str) -> None:
        if ids:
            await tx.payments.add_order_events(ids, "paid", {"payment_id": payment_id, "funding": funding})
        await enqueue_routes(tx, ids)

    async def cancel_orders(self, tx: UnitOfWork, ids: list[str], reason: str) -> list[str]:
        """pending_payment -> cancelled (nothing was held, so nothing to refund); one event each."""
        cancelled = await tx.payments.cancel_orders(ids, reason)
        if not cancelled:
            return cancelled
        await tx.payments.add_order_events(cancelled, "order_cancelled", {"reason": reason})
        await outbox.emit_final_many(tx, cancelled)
        rows = await tx.payments.order_rows(cancelled)
        hooks = self.order_final_hooks()
        for order in rows:
            for hook in hooks:
                await hook(tx, order)
        return cancelled

    # ---- the sandbox gateway (a stand-in third party) ---------------------------------------------

    def page_token(self, payment_id: str) -> str:
        """Ties the hosted page's form to its payment, so another site cannot post a decision."""
        return hmac.new(self.secret.encode(), f"pay:{payment_id}".encode(), hashlib.sha256).hexdigest()

    async def gateway_decide(self, tx: UnitOfWork, payment_id: str, decision: str, token: str) -> Payment:
        """The payer pressed Pay or Decline: the gateway queues its notify (sent after commit, retried)."""
        if not hmac.compare_digest(self.page_token(payment_id), token or ""):
            raise InvalidRequest("this form does not belong to the payment")
        if decision not in ("paid", "declined"):
            raise InvalidRequest("decision: paid or declined")
        payment = await self.get(tx, payment_id)
        if payment.status != PaymentStatus.PENDING:
            raise InvalidState(f"payment is already {payment.status}")
        if payment.expires_at is not None and tx.now >= payment.expires_at:
            raise InvalidState("payment has expired")
        await jobs.enqueue(tx, jobs.SandboxNotifyPayload(payment_id, decision, int(payment.amount)))
        return payment

    async def handle_gateway_notify_job(self, job: Job[jobs.SandboxNotifyPayload]) -> None:
        """Send the signed notify; anything but 2xx raises and the worker retries with backoff.

        Like a real gateway, it gives up after a bounded schedule: `NOTIFY_MAX_TRIES` tries (about
        five minutes of backoff), or `NOTIFY_MAX_TRIES_4XX` when the service answers a 4xx other than
        408/429 (the same request will not fare better). The payment then stays pending until it
        expires, which releases its orders as an unpaid payment does.
        """
        body = orjson.dumps(
            {
                "payment_id": job.payload.payment_id,
                "status": job.payload.status,
                "amount": job.payload.amount,
                "gateway_txn_id": f"sbx_{job.id}",
            }
        )
        headers = signing.signed_headers(self.secret, "POST", NOTIFY_PATH, body, self.now())
        headers["Content-Type"] = "application/json"
        answer = await self.http.post(f"{self.public_base}{NOTIFY_PATH}", body, headers, 10.0)
        error = answer.error
        if answer.status_code is None:
            if job.tries < NOTIFY_MAX_TRIES:
                raise ConnectionError(error)
        elif answer.status_code // 100 != 2:
            error = f"sandbox notify answered {answer.status_code}: {answer.text}"
            permanent = answer.status_code // 100 == 4 and answer.status_code not in (408, 429)
            if job.tries < (NOTIFY_MAX_TRIES_4XX if permanent else NOTIFY_MAX_TRIES):
                raise RuntimeError(error)
        if error is not None:
            log.warning(
                "sandbox_notify_gave_up", payment_id=job.payload.payment_id, tries=job.tries, error=error
            )
        async with self.db.transaction() as tx:
            await jobs.finish(tx, job)
