"""The audit log: who changed what, when and from where, written in the change's own transaction.

Entries are appended, never changed: no service updates or deletes them, and triggers on both
databases refuse it (migration 0004). Values are stored with secrets masked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from topup.domain.roles import Actor
from topup.keys import mask
from topup.services.ports.operators import AuditEntry
from topup.services.uow import UnitOfWork

# Field names whose values are secrets wherever they appear (channel credentials are already masked by
# their protocol's `secret_fields` in `Channel.public()`; this is the net under everything else).
_SECRET_NAME = re.compile(r"(secret|password|passwd|token|private|(^|_)key$)", re.I)
MAX_LIMIT = 500


def masked(value: Any, depth: int = 0) -> Any:
    """`value` with every secret-named field masked (recursively)."""
    if depth > 8:
        return "…"
    if isinstance(value, Mapping):
        return {
            str(k): _mask_one(v) if _SECRET_NAME.search(str(k)) else masked(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [masked(v, depth + 1) for v in value]
    return value


def _mask_one(value: Any) -> Any:
    if value is None or value == "" or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.startswith("****"):
        return value  # already masked upstream
    if isinstance(value, Mapping):
        return {str(k): _mask_one(v) for k, v in value.items()}
    return mask(value)


async def record(
    uow: UnitOfWork,
    actor: Actor,
    action: str,
    obj: str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> None:
    """Append one entry, e.g. `record(tx, actor, "channel.put", "channel:supA", before, after)`."""
    await uow.operators.append_audit(
        AuditEntry(
            at=uow.now,
            actor=actor.name[:100],
            role=str(actor.role),
            via=str(actor.via),
            address=(actor.address or None) and str(actor.address)[:200],
            credential=actor.credential[:64],
            action=action[:64],
            object=obj[:200],
            before=None if before is None else masked(dict(before)),
            after=None if after is None else masked(dict(after)),
        )
    )


def changes(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> dict[str, list[Any]]:
    """The fields that differ, each as [before, after]."""
    b, a = dict(before or {}), dict(after or {})
    return {k: [b.get(k), a.get(k)] for k in sorted(set(b) | set(a)) if b.get(k) != a.get(k)}


async def entries(
    uow: UnitOfWork,
    *,
    since: float | None = None,
    actor: str | None = None,
    obj: str | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Newest first. `obj` is an exact object (`channel:supA`) or a kind (`channel`)."""
    rows = await uow.operators.audit_entries(
        since=since, actor=actor, obj=obj, before_id=before_id, limit=max(1, min(limit, MAX_LIMIT))
    )
    return [
        {
            "id": int(r.id),
            "at": r.at,
            "actor": r.actor,
            "role": r.role,
            "via": r.via,
            "address": r.address,
            "credential": r.credential,
            "action": r.action,
            "object": r.object,
            "before": r.before,
            "after": r.after,
            "changes": changes(r.before, r.after),
        }
        for r in rows
    ]
