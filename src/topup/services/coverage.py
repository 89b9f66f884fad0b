"""Coverage as operators read it (SPEC section 7): a member's coverage, and a group's carrier x province
grid with the ranking each cell's orders would get, so gaps show before orders fail."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from topup.domain import coverage as C
from topup.domain import routing as R
from topup.domain.errors import InvalidRequest, NotFound
from topup.domain.regions import REGION_CODES, region_name
from topup.services.catalog import Snapshot


def coverage_of(m: R.Member) -> dict[str, Any]:
    """A member's `carriers` / `regions` as the API shows them: only the lists it has (absent = all)."""
    out: dict[str, Any] = {}
    if m.carriers is not None:
        out["carriers"] = sorted(m.carriers)
    if m.regions is not None:
        out["regions"] = sorted(m.regions)
    return out


def destination(carrier: str | None, region: str | None) -> R.Destination | None:
    """A `?carrier=&region=` query as a destination (None when neither is given)."""
    if carrier is None and region is None:
        return None
    if region is not None:
        region = region.strip().upper()
        if region not in REGION_CODES:
            raise InvalidRequest(f"region: {region!r} is not an ISO 3166-2:CN province code (e.g. CN-GD)")
    return R.Destination(carrier.strip().lower() if carrier else None, region)


def grid_view(snap: Snapshot, code: str, success_rates: Mapping[str, float] | None = None) -> dict[str, Any]:
    """`GET /admin/v1/groups/{code}/coverage`: for each region (rows) and carrier (columns), the members
    an order would try in order (`ranking`), the covering members that are disabled or paused (`idle`),
    and `gap` when nothing takes such orders (intake answers `no_route`)."""
    group = snap.groups.get(code)
    if group is None:
        raise NotFound(f"group {code} not found")
    carriers, regions = C.grid_axes(group.business_type, group.brand)
    rows = C.grid(snap.members_of(group), group.strategy, carriers, regions, success_rates)
    out_rows = [
        {
            "region": region,
            "name": region_name(region) if region else "",
            "cells": [
                {"carrier": cell.carrier, "ranking": cell.ranking, "idle": cell.idle, "gap": cell.gap}
                for cell in row
            ],
        }
        for region, row in zip(regions, rows, strict=True)
    ]
    return {
        "group": group.code,
        "business_type": group.business_type,
        "brand": group.brand,
        "carriers": carriers,
        "regions": regions,
        "rows": out_rows,
        "gaps": sum(1 for row in rows for cell in row if cell.gap),
        "members": [{"channel": m.channel, **coverage_of(m)} for m in group.members],
    }
