"""The supplier protocols this build speaks, found by listing the `protocols` package."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator, Mapping
from types import ModuleType

import httpx

from topup.adapters.suppliers import protocols
from topup.domain.suppliers import SupplierProtocol


def protocol_modules() -> list[ModuleType]:
    """Every module of `topup.adapters.suppliers.protocols`, sorted by name."""
    names = sorted(m.name for m in pkgutil.iter_modules(protocols.__path__) if not m.name.startswith("_"))
    return [importlib.import_module(f"{protocols.__name__}.{name}") for name in names]


def protocol_names() -> list[str]:
    return sorted(module.NAME for module in protocol_modules())


class Suppliers(Mapping[str, SupplierProtocol]):
    """Protocol name -> the adapter that speaks it."""

    def __init__(self, adapters: Mapping[str, SupplierProtocol]) -> None:
        self._adapters = dict(adapters)

    def __getitem__(self, name: str) -> SupplierProtocol:
        return self._adapters[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._adapters)

    def __len__(self) -> int:
        return len(self._adapters)


def build_suppliers(
    client: httpx.AsyncClient,
    now: Callable[[], float],
    overrides: Mapping[str, SupplierProtocol] | None = None,
) -> Suppliers:
    """An adapter for every protocol module, sharing one HTTP client; `overrides` replace some (tests)."""
    adapters: dict[str, SupplierProtocol] = {m.NAME: m.create(client, now) for m in protocol_modules()}
    adapters.update(overrides or {})
    return Suppliers(adapters)
