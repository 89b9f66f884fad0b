"""Periodic supplier balance checks (SPEC section 7), as durable `balance_check` jobs.

Each channel whose protocol has a balance query has one job (key `balance:<code>`): it asks the
supplier, keeps the answer (`balances.record`, which also pauses or resumes the channel) and puts itself
back `balance_check_s` later. Saving a channel queues it (at once for a channel with a `min_balance`),
a rejection that means the supplier account is short (`fulfilment._dispatch`) makes it due at once
(`channel_pause.schedule_check`), and starting a `topup serve` process queues it for channels that
have none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from topup.domain.suppliers import SupplierProtocol
from topup.services import balances, channel_pause, jobs
from topup.services.catalog import ConfigCache
from topup.services.jobs import Job
from topup.services.uow import Transactions


@dataclass
class BalanceWatch:
    db: Transactions
    cache: ConfigCache
    suppliers: Mapping[str, SupplierProtocol]
    callback_base: str

    async def handle(self, job: Job[jobs.BalanceCheckPayload]) -> None:
        """Check one channel's balance now, then again `balance_check_s` later; a channel that is gone
        or whose protocol cannot say ends its job."""
        code = job.payload.channel
        async with self.db.transaction() as tx:
            channel = (await self.cache.fresh(tx)).channels.get(code)
            adapter = self.suppliers.get(channel.protocol) if channel is not None else None
            if channel is None or adapter is None or not adapter.has_balance:
                await jobs.finish(tx, job)
                return
        outcome = await adapter.balance(channel.access(self.callback_base))
        async with self.db.transaction() as tx:
            await balances.record(tx, channel, outcome)
            # Not a failed try (jobs.defer): the job lives as long as its channel.
            await jobs.defer(tx, job, tx.now + channel.balance_check_s, job.payload)

    async def ensure_jobs(self) -> int:
        """Queue a check for every channel that can be asked and has no check queued; how many."""
        async with self.db.transaction() as tx:
            snap = await self.cache.fresh(tx)
            queued = 0
            for code, ch in sorted(snap.channels.items()):
                adapter = self.suppliers.get(ch.protocol)
                if adapter is not None and adapter.has_balance:
                    key = channel_pause.balance_job_key(code)
                    at = channel_pause.first_check_at(tx.now, ch.min_balance, ch.balance_check_s)
                    queued += await jobs.enqueue(tx, jobs.BalanceCheckPayload(code), at, key=key)
        return queued
