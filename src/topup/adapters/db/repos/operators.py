"""Every statement the operator services run (implements `services.ports.operators`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update

from topup.adapters.db import tables as t
from topup.services.ports.operators import (
    AuditEntry,
    AuditRow,
    ExceptionRow,
    OperatorRow,
    TokenLogin,
    TokenRow,
)

if TYPE_CHECKING:
    from topup.adapters.db.engine import Tx


def _operator(r: Any) -> OperatorRow:
    return OperatorRow(r.id, r.password_hash, r.created_at, r.role)


def _token(r: Any) -> TokenRow:
    return TokenRow(r.id, r.operator_id, r.name, r.role, r.token_hash, r.created_at, r.revoked_at)


def exception_row(r: Any) -> ExceptionRow:
    """A row of `exceptions` as its typed value."""
    return ExceptionRow(*(getattr(r, f) for f in ExceptionRow._fields))


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SqlOperators:
    __slots__ = ("tx",)

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    # ---- accounts

    async def get(self, name: str) -> OperatorRow | None:
        row = (await self.tx.conn.execute(select(t.operators).where(t.operators.c.id == name))).first()
        return None if row is None else _operator(row)

    async def role_of(self, name: str) -> str | None:
        row = (await self.tx.conn.execute(select(t.operators.c.role).where(t.operators.c.id == name))).first()
        return None if row is None else str(row.role)

    async def list_all(self) -> list[OperatorRow]:
        ops = t.operators
        return [_operator(r) for r in (await self.tx.conn.execute(select(ops).order_by(ops.c.id))).all()]

    async def add(self, name: str, password_hash: str, role: str) -> None:
        await self.tx.conn.execute(
            t.operators.insert().values(
                id=name, password_hash=password_hash, role=role, created_at=self.tx.now
            )
        )

    async def change(self, name: str, values: dict[str, Any]) -> None:
        await self.tx.conn.execute(update(t.operators).where(t.operators.c.id == name).values(**values))

    async def remove(self, name: str) -> None:
        tx = self.tx
        await tx.conn.execute(
            update(t.operator_tokens)
            .where(t.operator_tokens.c.operator_id == name, t.operator_tokens.c.revoked_at.is_(None))
            .values(revoked_at=tx.now)
        )
        await tx.conn.execute(delete(t.operators).where(t.operators.c.id == name))

    # ---- API tokens

    async def live_tokens(self) -> list[TokenRow]:
        tokens = (
            await self.tx.conn.execute(
                select(t.operator_tokens).where(t.operator_tokens.c.revoked_at.is_(None))
            )
        ).all()
        return [_token(r) for r in tokens]

    async def add_token(
        self, token_id: str, operator: str, name: str, role: str, token_hash: str
    ) -> TokenRow:
        tx = self.tx
        await tx.conn.execute(
            t.operator_tokens.insert().values(
                id=token_id,
                operator_id=operator,
                name=name,
                role=role,
                token_hash=token_hash,
                created_at=tx.now,
            )
        )
        row = (
            await tx.conn.execute(select(t.operator_tokens).where(t.operator_tokens.c.id == token_id))
        ).one()
        return _token(row)

    async def tokens(self, operator: str) -> list[TokenRow]:
        tok = t.operator_tokens
        q = select(tok).where(tok.c.operator_id == operator).order_by(tok.c.created_at, tok.c.id)
        return [_token(r) for r in (await self.tx.conn.execute(q)).all()]

    async def token(self, token_id: str, operator: str) -> TokenRow | None:
        tok = t.operator_tokens
        row = (
            await self.tx.conn.execute(select(tok).where(tok.c.id == token_id, tok.c.operator_id == operator))
        ).first()
        return None if row is None else _token(row)

    async def revoke_token(self, token_id: str) -> None:
        tok = t.operator_tokens
        await self.tx.conn.execute(update(tok).where(tok.c.id == token_id).values(revoked_at=self.tx.now))

    async def token_login(self, token_id: str) -> TokenLogin | None:
        tok, ops = t.operator_tokens, t.operators
        row = (
            await self.tx.conn.execute(
                select(
                    tok.c.token_hash, tok.c.role, tok.c.revoked_at, ops.c.id, ops.c.role.label("account_role")
                )
                .join(ops, ops.c.id == tok.c.operator_id)
                .where(tok.c.id == token_id)
            )
        ).first()
        if row is None:
            return None
        return TokenLogin(row.token_hash, row.role, row.revoked_at, row.id, row.account_role)

    # ---- audit log

    async def append_audit(self, entry: AuditEntry) -> None:
        await self.tx.conn.execute(t.audit_log.insert().values(**entry._asdict()))

    async def audit_entries(
        self, *, since: float | None, actor: str | None, obj: str | None, before_id: int | None, limit: int
    ) -> list[AuditRow]:
        a = t.audit_log
        q = select(a).order_by(a.c.id.desc()).limit(limit)
        if since is not None:
            q = q.where(a.c.at >= since)
        if actor:
            q = q.where(a.c.actor == actor)
        if obj:
            q = q.where(
                a.c.object == obj if ":" in obj else a.c.object.like(_like_prefix(obj) + ":%", escape="\\")
            )
        if before_id is not None:
            q = q.where(a.c.id < before_id)
        return [
            AuditRow(
                int(r.id),
                r.at,
                r.actor,
                r.role,
                r.via,
                r.address,
                r.credential,
                r.action,
                r.object,
                r.before,
                r.after,
            )
            for r in (await self.tx.conn.execute(q)).all()
        ]

    # ---- exceptions

    async def resolve_exception(self, exception_id: str, by: str, note: str) -> bool:
        res = await self.tx.conn.execute(
            update(t.exceptions)
            .where(t.exceptions.c.id == exception_id, t.exceptions.c.resolved_at.is_(None))
            .values(resolved_at=self.tx.now, resolved_by=by, resolution_note=note)
        )
        return bool(res.rowcount == 1)

    async def exception(self, exception_id: str) -> ExceptionRow | None:
        row = (
            await self.tx.conn.execute(select(t.exceptions).where(t.exceptions.c.id == exception_id))
        ).first()
        return None if row is None else exception_row(row)
