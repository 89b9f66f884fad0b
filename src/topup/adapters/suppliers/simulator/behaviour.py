"""How one simulated channel behaves, and the per-order decision drawn from it."""

from __future__ import annotations

import random
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_SECRET = "sim-secret"

QueryStatus = Literal["processing", "not_found", "failed", "success"]


class Outcome(StrEnum):
    """Where a dispatched order ends up in the simulator."""

    SUCCESS = "success"
    """Accepted; a success callback follows."""
    FAILED = "failed"
    """Accepted; a failure callback follows."""
    SILENT = "silent"
    """Accepted; no callback (unless `late_success_after_s`)."""
    REJECTED = "rejected"
    """Answered `{"result": "rejected"}`."""
    INSUFFICIENT = "insufficient"
    """Refused: the channel's simulated balance does not cover the order."""


class ChannelBehaviour(BaseModel):
    """Every knob of one channel. Defaults: accept, then a success callback shortly after."""

    model_config = ConfigDict(extra="forbid")

    protocol: str = "topup-json"
    """The wire format this channel speaks (a module of `simulator.modes`)."""
    secret: str = DEFAULT_SECRET
    credentials: dict[str, Any] = Field(default_factory=dict)
    """The protocol's own secrets (e.g. Juhe `openid`/`key`); topup-json uses `secret`."""
    callback_url: str | None = None
    """Where callbacks go for protocols whose supplier takes the URL from its console, not the order."""
    callback_retries: int | None = Field(default=None, ge=0, le=50)
    """Retries after a failed callback (default: the simulator's `callback_retries`)."""
    balance: int | None = None
    """Prepaid balance in minor units; each order takes its amount, one that does not fit is refused
    as the protocol refuses an insufficient balance (None: unlimited)."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Protocol quirks, per mode (e.g. Reloadly `token_ttl_s`)."""
    success_ratio: float = Field(default=1.0, ge=0, le=1)
    reject_ratio: float = Field(default=0.0, ge=0, le=1)
    silent_ratio: float = Field(default=0.0, ge=0, le=1)
    silent_query: QueryStatus = "processing"
    query_answer: QueryStatus | None = None
    callback_delay_s: float = Field(default=0.1, ge=0)
    reply_latency_s: float = Field(default=0.0, ge=0)
    late_success_after_s: float | None = Field(default=None, ge=0)
    duplicate_callbacks: int = Field(default=1, ge=1, le=50)
    hang_s: float = Field(default=0.0, ge=0)
    http_status: int | None = Field(default=None, ge=100, le=599)
    malformed_reply: bool = False
    callback_before_reply: bool = False
    seed: int | str | None = None
    fail_accounts: list[str] = Field(default_factory=list)
    silent_accounts: list[str] = Field(default_factory=list)
    reject_accounts: list[str] = Field(default_factory=list)
    failure_code: str = "E42"
    reject_code: str = "R01"

    @field_validator("protocol")
    @classmethod
    def _known_protocol(cls, value: str) -> str:
        from .modes import modes  # the modes import the engine, which imports this module

        if value not in modes():
            raise ValueError(f"the simulator speaks {sorted(modes())}, not {value!r}")
        return value

    def merged(self, patch: dict[str, Any]) -> ChannelBehaviour:
        """A copy with `patch` applied, validated as a whole (raises pydantic.ValidationError)."""
        return ChannelBehaviour.model_validate({**self.model_dump(), **patch})


def channel_rng(seed: int | str | None, channel: str) -> random.Random:
    """One generator per channel, so one channel's traffic never shifts another's draws."""
    return random.Random(None if seed is None else f"{seed}:{channel}")


def decide(behaviour: ChannelBehaviour, account: str, rng: random.Random) -> Outcome:
    """Pick the outcome of a new order: account lists first, then the ratios."""
    # Always draw three numbers so a seeded run does not depend on which branch was taken.
    reject_roll, silent_roll, success_roll = rng.random(), rng.random(), rng.random()
    if account in behaviour.reject_accounts:
        return Outcome.REJECTED
    if account in behaviour.fail_accounts:
        return Outcome.FAILED
    if account in behaviour.silent_accounts:
        return Outcome.SILENT
    if reject_roll < behaviour.reject_ratio:
        return Outcome.REJECTED
    if silent_roll < behaviour.silent_ratio:
        return Outcome.SILENT
    return Outcome.SUCCESS if success_roll < behaviour.success_ratio else Outcome.FAILED
