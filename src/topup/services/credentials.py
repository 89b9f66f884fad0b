"""Key rotation for supplier credentials: re-seal every channel's credentials under the current key.

Run after the new master key is `TOPUP_SECRET_KEY` and the previous one is in `TOPUP_OLD_SECRET_KEYS` on
every process: they all read both meanwhile, so nothing stops; afterwards the old key can be dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from topup.domain.errors import InvalidState
from topup.domain.roles import Actor
from topup.keys import CredentialBox, CredentialError
from topup.services import audit
from topup.services.uow import UnitOfWork


@dataclass
class Rotation:
    resealed: list[str] = field(default_factory=list)
    """Channels whose credentials were sealed under an old key (or not sealed) and now use the current one."""
    current: list[str] = field(default_factory=list)
    """Channels already sealed under the current key (sealed again all the same, with a fresh token)."""


async def rotate_credentials(tx: UnitOfWork, box: CredentialBox, actor: Actor) -> Rotation:
    """All or nothing: if any channel's credentials open with no configured key, nothing changes."""
    out = Rotation()
    unreadable: list[str] = []
    for code, credentials, secret in await tx.catalog.channel_credentials():
        if credentials:
            try:
                box.open(credentials)
            except CredentialError:
                unreadable.append(code)
                continue
            was = "current" if box.is_current(credentials) else "old"
            sealed = box.rotate(credentials)
        elif secret:
            was, sealed = "not sealed", box.seal({"secret": secret})  # written before sealing existed
        else:
            continue
        await tx.catalog.reseal_credentials(code, sealed)
        (out.current if was == "current" else out.resealed).append(code)
        await audit.record(
            tx,
            actor,
            "channel.credentials_rotate",
            f"channel:{code}",
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
