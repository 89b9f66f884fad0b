"""Settings from the environment (TOPUP_ prefix); nothing connects at import time."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Development defaults: `topup serve` refuses them on any interface but loopback (safety.py).
DEV_ADMIN_TOKEN = "change-me-admin-token"
DEV_SECRET_KEY = "change-me-secret-key-for-development-only"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOPUP_", extra="ignore")

    database_url: str = "sqlite:///topup.db"
    admin_token: str = DEV_ADMIN_TOKEN
    # The master key: supplier credentials are encrypted at rest under a key derived from it.
    # `old_secret_keys` (comma-separated) still decrypt during a rotation (`topup keys rotate`).
    secret_key: str = DEV_SECRET_KEY
    old_secret_keys: str = ""
    # A file holding the master key (a mounted secret); when set it wins over `secret_key`.
    secret_key_file: str | None = None
    # When set, `/metrics` needs `Authorization: Bearer <metrics_token>` (unset: open, for a private
    # monitoring network). A token of its own, so the scraper never holds the operator's token.
    metrics_token: str | None = None
    public_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    # Allow per-order notify_url values on loopback/private addresses (tests and demos only).
    allow_private_notify_urls: bool = False
    log_level: str = "INFO"
    log_json: bool = True
    # Worker tuning.
    worker_concurrency: int = 64
    # Of those, how many `route` jobs (store the next attempt, then dispatch it) run at once. A burst
    # (a paid 10,000-row batch) then reaches suppliers as a steady stream instead of all at once;
    # the rest wait as unclaimed jobs, with no attempt stored and so no supplier clock running.
    worker_dispatch_concurrency: int = 16
    # A channel is slow while one of its dispatches has been out longer than `worker_channel_slow_s`
    # (or ended that late within as long); a slow channel gets at most this many dispatches in flight
    # per worker, its further orders are deferred (0: no limit). A supplier that hangs then holds this
    # many of the worker's dispatch slots, not all of them. A channel that always answers within
    # `worker_channel_slow_s` is never limited, so set that above the replies' normal time.
    worker_channel_concurrency: int = 8
    # Inline first dispatch (services/fulfilment/inline.py): the process that accepts an order sends
    # its first attempt right after the intake commit, at most this many at once (beyond: a route
    # job). 0 (the default) turns it off: measured on one 2-core machine it cost more than the route
    # job it saves (docs/performance.md, "Batched worker units and the inline first dispatch").
    inline_dispatch_max: int = 0
    worker_channel_slow_s: float = 2.0
    worker_poll_s: float = 0.2
    job_lease_s: float = 60.0
    run_worker: bool = True
    # Sandbox payments expire after this many seconds unpaid.
    sandbox_payment_ttl_s: float = 900.0
    # Signing secret of the built-in sandbox payment gateway; derived from the master key when unset.
    sandbox_secret: str | None = None
    # Session cookie signing key for the web pages; derived from the master key when unset.
    session_secret: str | None = None
    db_pool_size: int = 10
    # Extra connections beyond the pool under a burst. Each is opened for one transaction and closed
    # again, which under sustained load means a new PostgreSQL backend per transaction: keep it 0 and
    # size the pool instead.
    db_max_overflow: int = 0
    # Group commit: concurrent intake, callback, dispatch-reply and webhook-result transactions of one
    # process share one transaction (each caller answered after its COMMIT; see docs/performance.md).
    # Off: each runs in a transaction of its own.
    group_commit: bool = True
    # How long a starting process waits for the database to come up before giving up.
    startup_wait_s: float = 60.0
    # Multiplies every webhook retry delay and the 25 h retry window (tests use tiny values).
    notify_retry_scale: float = 1.0
    # Retention (docs/operations.md#retention): finished operational rows (webhook deliveries and their
    # events, supplier callbacks, balance checks, group switches) older than `retention_days`, and the
    # timelines of orders final for longer than `timeline_retention_days`, are deleted in batches of
    # `prune_batch_size` rows by the `prune` job every `prune_every_s`. 0 days: keep forever.
    retention_days: float = 90.0
    timeline_retention_days: float = 400.0
    prune_batch_size: int = 5000
    prune_every_s: float = 86400.0

    @model_validator(mode="after")
    def _read_secret_key_file(self) -> Self:
        if self.secret_key_file:
            try:
                key = Path(self.secret_key_file).read_text(encoding="utf-8").strip()
            except OSError as e:
                raise ValueError(f"TOPUP_SECRET_KEY_FILE: cannot read {self.secret_key_file}: {e}") from None
            if not key:
                raise ValueError(f"TOPUP_SECRET_KEY_FILE: {self.secret_key_file} is empty")
            self.secret_key = key
        return self

    def old_secret_key_list(self) -> list[str]:
        return [k.strip() for k in self.old_secret_keys.split(",") if k.strip()]

    def callback_base(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")
