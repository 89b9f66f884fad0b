"""Operator configuration: products, channels and groups, with a short-lived per-process cache.

`model` holds the configuration as services read it, `cache` the snapshot and its cache, `changes`
the operator's edits and the groups' routing state; every name is importable from here.
"""

from __future__ import annotations

from topup.services.catalog.cache import ConfigCache, load_snapshot
from topup.services.catalog.changes import (
    group_state,
    put_channel,
    put_group,
    put_product,
    record_switch,
    save_group_state,
    set_channel_enabled,
)
from topup.services.catalog.model import Channel, Group, Product, Snapshot

__all__ = [
    "Channel",
    "ConfigCache",
    "Group",
    "Product",
    "Snapshot",
    "group_state",
    "load_snapshot",
    "put_channel",
    "put_group",
    "put_product",
    "record_switch",
    "save_group_state",
    "set_channel_enabled",
]
