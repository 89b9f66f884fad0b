"""Storage the operator use cases need (see `topup.services.uow.UnitOfWork`): accounts, API tokens,
the audit log and resolving exceptions."""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol


class OperatorRow(NamedTuple):
    id: str
    password_hash: str
    created_at: float
    role: str


class TokenRow(NamedTuple):
    id: str
    operator_id: str
    name: str
    role: str
    token_hash: str
    created_at: float
    revoked_at: float | None


class TokenLogin(NamedTuple):
    """A token with its account, as signing in with it needs."""

    token_hash: str
    role: str
    revoked_at: float | None
    id: str
    account_role: str


class AuditEntry(NamedTuple):
    """One audit log entry (`before` / `after` with secrets already masked)."""

    at: float
    actor: str
    role: str
    via: str
    address: str | None
    credential: str
    action: str
    object: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class AuditRow(NamedTuple):
    id: int
    at: float
    actor: str
    role: str
    via: str
    address: str | None
    credential: str
    action: str
    object: str
    before: Any
    after: Any


class ExceptionRow(NamedTuple):
    """Work for operators (`detail` JSON)."""

    id: str
    kind: str
    order_id: str | None
    ref: str | None
    channel_code: str | None
    detail: Any
    created_at: float
    resolved_at: float | None
    resolved_by: str | None
    resolution_note: str | None


class OperatorsRepository(Protocol):
    # ---- accounts
    async def get(self, name: str) -> OperatorRow | None: ...

    async def role_of(self, name: str) -> str | None:
        """The account's stored role."""
        ...

    async def list_all(self) -> list[OperatorRow]:
        """By name."""
        ...

    async def add(self, name: str, password_hash: str, role: str) -> None:
        """A new account (created at the transaction's time)."""
        ...

    async def change(self, name: str, values: dict[str, Any]) -> None:
        """Set `password_hash` and/or `role`."""
        ...

    async def remove(self, name: str) -> None:
        """Revoke the account's live tokens and delete it."""
        ...

    # ---- API tokens
    async def live_tokens(self) -> list[TokenRow]:
        """Every token not revoked."""
        ...

    async def add_token(
        self, token_id: str, operator: str, name: str, role: str, token_hash: str
    ) -> TokenRow:
        """Store a new token (created at the transaction's time); returns it as stored."""
        ...

    async def tokens(self, operator: str) -> list[TokenRow]:
        """The operator's tokens, oldest first."""
        ...

    async def token(self, token_id: str, operator: str) -> TokenRow | None: ...

    async def revoke_token(self, token_id: str) -> None:
        """Revoked at the transaction's time."""
        ...

    async def token_login(self, token_id: str) -> TokenLogin | None: ...

    # ---- audit log
    async def append_audit(self, entry: AuditEntry) -> None: ...

    async def audit_entries(
        self, *, since: float | None, actor: str | None, obj: str | None, before_id: int | None, limit: int
    ) -> list[AuditRow]:
        """Newest first. `obj` is an exact object (`channel:supA`) or a kind (`channel`)."""
        ...

    # ---- exceptions
    async def resolve_exception(self, exception_id: str, by: str, note: str) -> bool:
        """Mark it resolved (at the transaction's time); False when it is not open (or missing)."""
        ...

    async def exception(self, exception_id: str) -> ExceptionRow | None: ...
