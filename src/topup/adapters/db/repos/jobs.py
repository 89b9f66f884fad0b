"""Every statement the jobs services run (implements `services.ports.jobs`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from topup.adapters.db.engine import Tx


class SqlJobs:
    __slots__ = ("tx",)

    def __init__(self, tx: Tx) -> None:
        self.tx = tx
