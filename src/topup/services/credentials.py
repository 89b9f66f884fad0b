"""Key rotation for supplier credentials: re-seal every channel's credentials under the current key.

Run after the new master key is `TOPUP_SECRET_KEY` and the previous one is in `TOPUP_OLD_SECRET_KEYS` on
every process: they all read both meanwhile, so nothing stops; afterwards the old key can be dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select, update

from topup.adapters.db import tables as t
from topup.adapters.db.engine import Tx
from topup.domain.errors import InvalidState
from topup.domain.roles import Actor
from topup.keys import CredentialBox, CredentialError
from topup.services import audit


@dataclass
class Rotation:
    resealed: list[str] = field(default_factory=list)
    """Channels whose credentials were sealed under an old key (or not sealed) and now use the current one."""
    current: list[str] = field(default_factory=list)
    """Channels already sealed under the current key (sealed again all the same, with a fresh token)."""


async def rotate_credentials(tx: Tx, box: CredentialBox, actor: Actor) -> Rotation:
    """All or nothing: if any channel's credentials open with no configured key, nothing changes."""
    ch = t.channels
    rows = (await tx.conn.execute(select(ch.c.code, ch.c.credentials, ch.c.secret).order_by(ch.c.code))).all()
    out = Rotation()
    unreadable: list[str] = []
    for r in rows:
        if r.credentials:
            try:
                box.open(r.credentials)
            except CredentialError:
                unreadable.append(r.code)
                continue
            was = "current" if box.is_current(r.credentials) else "old"
            sealed = box.rotate(r.credentials)
        elif r.secret:
            was, sealed = "not sealed", box.seal({"secret": r.secret})  # written before sealing existed
        else:
            continue
        await tx.conn.execute(update(ch).where(ch.c.code == r.code).values(credentials=sealed, secret=""))
        (out.current if was == "current" else out.resealed).append(r.code)
        await audit.record(
            tx,
            actor,
            "channel.credentials_rotate",
            f"channel:{r.code}",
            {"sealed_with": was},
            {"sealed_with": "current"},
        )
    if unreadable:
        raise InvalidState(
            f"no configured key opens the credentials of {', '.join(unreadable)}: add the key they were "
            "sealed with to TOPUP_OLD_SECRET_KEYS (nothing was changed)",
            {"channels": unreadable},
        )
    return out
