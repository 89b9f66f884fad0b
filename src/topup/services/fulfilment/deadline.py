"""Deadlines: an attempt's callback is overdue; ask the supplier when it can be asked, then complete,
fail over, wait longer or abandon it (SPEC section 3, `domain.routing.on_deadline`)."""

from __future__ import annotations

from topup.domain import routing as R
from topup.domain import suppliers as port
from topup.domain.orders import Attempt, AttemptStatus
from topup.services import catalog, jobs
from topup.services.fulfilment.base import DISPATCH_GRACE_S, DISPATCH_SENT
from topup.services.fulfilment.outcomes import Outcomes
from topup.services.jobs import Job
from topup.services.orders import add_event
from topup.services.uow import UnitOfWork


class Deadlines(Outcomes):
    async def handle_deadline(self, job: Job[jobs.DeadlinePayload]) -> None:
        """No callback in time: ask the supplier (when it can be asked), then act per SPEC section 3."""
        ref = job.payload.ref
        async with self.db.reads() as uow:
            due = await uow.orders.due_attempt(ref)
            if due is None or due.attempt.status != AttemptStatus.PENDING:
                await jobs.finish(uow, job)
                return
        snap = await self.cache.current(self.db)
        channel = snap.channels.get(due.attempt.channel_code)
        wake_at = self._too_early(due.attempt, channel)
        if wake_at is not None:
            await self.db.run_grouped(lambda uow: jobs.reschedule(uow, job, wake_at))
            return
        query = None
        if channel is not None and channel.supports_query and channel.protocol in self.suppliers:
            question = port.QueryRequest(
                due.attempt.supplier_ref or ref, ref, due.product_code, due.business_type
            )
            access = channel.access(self.callback_base)
            query = await self.suppliers[channel.protocol].query(access, question)

        async def act(uow: UnitOfWork) -> None:
            # Database work only: grouped with the other deadlines and routes of this worker.
            attempt = await uow.orders.attempt(ref)
            if attempt is None or attempt.status != AttemptStatus.PENDING:
                await jobs.finish(uow, job)
                return
            if query is not None:
                await add_event(
                    uow,
                    attempt.order_id,
                    attempt.no,
                    "query",
                    {
                        "status": query.status,
                        "http_status": query.http_status,
                        "latency_ms": round(query.latency_ms, 1),
                    },
                )
            timeout_s = channel.timeout_s if channel else 0.0
            decision = R.on_deadline(
                query.status if query else None,
                uow.now,
                attempt.dispatched_at or attempt.started_at,
                timeout_s,
                channel.max_wait_s if channel else 0.0,
                bool(channel and channel.supports_query),
            )
            if decision.action is R.DeadlineAction.COMPLETE:
                await self.succeed_attempt(uow, attempt, "query")
            elif decision.action is R.DeadlineAction.FAIL_OVER:
                assert query is not None
                await self.fail_attempt(uow, attempt, f"query_{query.status}")
            elif decision.action is R.DeadlineAction.ABANDON:
                await self.fail_attempt(uow, attempt, "timeout: no callback", AttemptStatus.ABANDONED)
            else:
                assert decision.next_check_at is not None
                await uow.orders.extend_deadline(attempt.id, decision.next_check_at)
                await jobs.reschedule(uow, job, decision.next_check_at)
                return
            await jobs.finish(uow, job)

        await self.db.run_grouped(act)

    def _too_early(self, attempt: Attempt, channel: catalog.Channel | None) -> float | None:
        """When a deadline job that ran too soon should run again; None when it is really due."""
        now = self.db.clock.now()
        if channel is not None and attempt.dispatch_state == DISPATCH_SENT:
            # No dispatch reply recorded yet: the dispatch is still on its way (a busy worker) or its
            # worker died. Look again soon (the reply, which moves the deadline, may be being recorded
            # right now) up to a grace period; past it, ask the supplier as usual (a dispatch that
            # never left answers `not_found`).
            until = attempt.started_at + 2 * channel.timeout_s + DISPATCH_GRACE_S
            if now < until:
                return float(min(until, now + max(0.1, channel.timeout_s / 2)))
        due = attempt.deadline_at
        if due is not None and now < due - 0.001:
            # The reply moved the deadline while this job was already claimed (it could not move
            # the job): run again when the channel's time from the dispatch is really up.
            return float(due)
        return None
