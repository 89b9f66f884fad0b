"""Operator roles and who is acting: pure, shared by the API, the console and the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """What an operator may do; each role includes everything the ones before it may do."""

    VIEWER = "viewer"
    """Reads everything, changes nothing."""
    OPERATOR = "operator"
    """Day-to-day work: orders, exceptions, channel on/off, balance checks, statements."""
    ADMIN = "admin"
    """Configuration and money: catalog, channels, groups, merchants, credits, operator accounts."""

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, needed: Role) -> bool:
        """Does this role include `needed`?"""
        return self.rank >= needed.rank


_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


class Via(StrEnum):
    """The interface a change came through (recorded in the audit log)."""

    API = "api"
    CONSOLE = "console"
    CLI = "cli"


@dataclass(frozen=True)
class Actor:
    """Who is acting, with which role, through which interface and from where."""

    name: str
    """`admin` for the admin token, else the operator account's name (CLI: the OS user)."""
    role: Role
    via: Via
    address: str | None = None
    """The client address (API, console) or the host name (CLI)."""
    credential: str = ""
    """How the actor proved who it is: `admin-token`, `token:<id>`, `session`, `local`."""

    def can(self, needed: Role) -> bool:
        return self.role.allows(needed)
