"""Settings from the environment (TOPUP_ prefix); nothing connects at import time."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOPUP_", extra="ignore")

    database_url: str = "sqlite:///topup.db"
    admin_token: str = "change-me-admin-token"
    # The master key: supplier credentials are encrypted at rest under a key derived from it.
    # `old_secret_keys` (comma-separated) still decrypt during a rotation (`topup keys rotate`).
    secret_key: str = "change-me-secret-key-for-development-only"
    old_secret_keys: str = ""
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
    worker_channel_slow_s: float = 2.0
    worker_poll_s: float = 0.2
    job_lease_s: float = 60.0
    run_worker: bool = True
    # Sandbox payments expire after this many seconds unpaid.
    sandbox_payment_ttl_s: float = 900.0
    # Signing secret of the built-in sandbox payment gateway; derived from admin_token when unset.
    sandbox_secret: str | None = None
    # Session cookie signing key for the web pages; derived from admin_token when unset.
    session_secret: str | None = None
    db_pool_size: int = 10
    # Extra connections beyond the pool under a burst. Each is opened for one transaction and closed
    # again, which under sustained load means a new PostgreSQL backend per transaction: keep it 0 and
    # size the pool instead.
    db_max_overflow: int = 0
    # How long a starting process waits for the database to come up before giving up.
    startup_wait_s: float = 60.0
    # Multiplies every webhook retry delay and the 25 h retry window (tests use tiny values).
    notify_retry_scale: float = 1.0

    def old_secret_key_list(self) -> list[str]:
        return [k.strip() for k in self.old_secret_keys.split(",") if k.strip()]

    def callback_base(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")
