"""Metrics of supplier operations (SPEC section 7): balances, pauses and rate-limit queues per channel.

Part of `/metrics` (see `metrics.gather`): computed from the database at scrape time like the rest.
"""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily, Metric

from topup.adapters.db.engine import Tx
from topup.adapters.db.queries import metrics as q
from topup.services import rate_limits


async def supplier_metrics(tx: Tx, now: float) -> list[Metric]:
    balance = GaugeMetricFamily(
        "topup_channel_balance",
        "The channel's supplier balance at its last successful check, in minor units of its currency.",
        labels=["channel", "currency"],
    )
    age = GaugeMetricFamily(
        "topup_channel_balance_age_seconds",
        "Seconds since the channel's last successful balance check.",
        labels=["channel"],
    )
    for r in await q.last_balances(tx):
        balance.add_metric([r.channel_code, r.currency or ""], r.amount)
        age.add_metric([r.channel_code], max(0.0, now - r.checked_at))
    minimum = GaugeMetricFamily(
        "topup_channel_min_balance", "The balance below which the channel pauses itself.", labels=["channel"]
    )
    paused = GaugeMetricFamily(
        "topup_channel_paused",
        "1 while the channel is paused (skipped for new attempts), by reason; 0 otherwise.",
        labels=["channel", "reason"],
    )
    limit = GaugeMetricFamily(
        "topup_channel_rate_limit_per_s",
        "Dispatches the channel may start in any 1 s (channels with a rate limit).",
        labels=["channel"],
    )
    for ch in await q.channel_operations(tx):
        if ch.min_balance is not None:
            minimum.add_metric([ch.code], ch.min_balance)
        paused.add_metric([ch.code, ch.paused or ""], 1 if ch.paused else 0)
        if ch.rate_limit_per_s:
            limit.add_metric([ch.code], int(ch.rate_limit_per_s))
    waiting = GaugeMetricFamily(
        "topup_rate_limit_waiting",
        "Orders waiting for their turn at a rate-limited channel (not failures; no supplier clock runs).",
        labels=["channel"],
    )
    for code, n in sorted((await rate_limits.waiting(tx)).items()):
        waiting.add_metric([code], n)
    return [balance, age, minimum, paused, limit, waiting]
