"""Every statement the catalog services run (implements `services.ports.catalog`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from topup.adapters.db.engine import Tx


class SqlCatalog:
    __slots__ = ("tx",)

    def __init__(self, tx: Tx) -> None:
        self.tx = tx
