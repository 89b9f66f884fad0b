"""In-memory fakes of the unit of work and its repositories, for tests of the use cases that need no
database: `MemoryDatabase` gives units of work over plain Python state (`State`); `seed` fills in
configuration and money the way an operator would have."""

from __future__ import annotations

from topup.adapters.db.memory.areas import NotFaked
from topup.adapters.db.memory.seed import add_channel, add_group, add_product, credit
from topup.adapters.db.memory.state import Event, State, StoredJobRow
from topup.adapters.db.memory.uow import MemoryDatabase, MemoryUnitOfWork

__all__ = [
    "Event",
    "MemoryDatabase",
    "MemoryUnitOfWork",
    "NotFaked",
    "State",
    "StoredJobRow",
    "add_channel",
    "add_group",
    "add_product",
    "credit",
]
