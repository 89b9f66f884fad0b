"""Coverage: which group members serve which carrier and province (SPEC section 7). Pure.

A member may list `carriers` and `regions`; absent means all. The routing engine applies coverage
through `Snapshot.members_of(..., to=Destination(...))`; this module checks what operators write and
draws the carrier x province grid the console shows, so gaps are visible before orders fail.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from topup.domain import routing as R
from topup.domain.accounts import BusinessType, Carrier, FuelIssuer
from topup.domain.regions import MAINLAND, REGION_CODES

# The carriers (brands) a member of a group of each business type may list; membership brands are
# whatever operators name them.
BRANDS: dict[str, tuple[str, ...]] = {
    BusinessType.MOBILE_AIRTIME: tuple(c.value for c in Carrier),
    BusinessType.MOBILE_DATA: tuple(c.value for c in Carrier),
    BusinessType.FUEL_CARD: tuple(i.value for i in FuelIssuer),
}
MOBILE_TYPES = (BusinessType.MOBILE_AIRTIME.value, BusinessType.MOBILE_DATA.value)


class CoverageError(ValueError):
    """A member's `carriers` or `regions` name something no order can have."""


def normalise(
    business_type: str, carriers: Iterable[str] | None, regions: Iterable[str] | None
) -> tuple[list[str] | None, list[str] | None]:
    """Sorted, de-duplicated lists (carriers lower-case, regions upper-case); None stays None (all).

    Raises `CoverageError` for an empty list, a carrier the business type has no such brand of, a
    region that is not an ISO 3166-2:CN province code, or regions on a group whose orders have none.
    """
    out_carriers = None
    if carriers is not None:
        out_carriers = sorted({c.strip().lower() for c in carriers})
        if not out_carriers:
            raise CoverageError("carriers: list at least one, or leave it out to cover every carrier")
        allowed = BRANDS.get(business_type)
        unknown = [c for c in out_carriers if allowed is not None and c not in allowed]
        if unknown:
            brands = ", ".join(allowed or ())
            raise CoverageError(f"carriers: {', '.join(unknown)} not among {business_type} brands ({brands})")
    out_regions = None
    if regions is not None:
        out_regions = sorted({r.strip().upper() for r in regions})
        if not out_regions:
            raise CoverageError("regions: list at least one, or leave it out to cover every region")
        unknown = [r for r in out_regions if r not in REGION_CODES]
        if unknown:
            raise CoverageError(
                f"regions: {', '.join(unknown)} not ISO 3166-2:CN province codes (e.g. CN-GD, CN-BJ)"
            )
        if business_type == BusinessType.FUEL_CARD:
            raise CoverageError("regions: fuel-card orders have no region; leave regions out")
    return out_carriers, out_regions


@dataclass(frozen=True)
class Cell:
    """One carrier x region of a group: who would be tried, in order, and who covers it but is idle."""

    carrier: str | None
    region: str | None
    ranking: list[str]
    """Covering members that take orders now, in the order an order would try them."""
    idle: list[str]
    """Covering members that are disabled or paused."""

    @property
    def gap(self) -> bool:
        """Nothing takes these orders: intake answers `no_route`."""
        return not self.ranking


def grid_axes(business_type: str, brand: str | None) -> tuple[list[str | None], list[str | None]]:
    """The carriers (columns) and regions (rows) of a group's grid. Mobile groups: the group's carrier
    (or all four) by the 31 mainland provinces plus `None`, the numbers the data places nowhere."""
    if business_type in MOBILE_TYPES:
        carriers: list[str | None] = [brand] if brand else list(BRANDS[business_type])
        regions: list[str | None] = [p.code for p in MAINLAND]
        return carriers, [*regions, None]
    carriers = [brand] if brand else list(BRANDS.get(business_type, ()))
    return carriers or [None], [None]


def grid(
    members: Sequence[R.Member],
    strategy: str,
    carriers: Sequence[str | None],
    regions: Sequence[str | None],
    success_rates: Mapping[str, float] | None = None,
) -> list[list[Cell]]:
    """Rows (regions) of cells (carriers). The ranking is the group's own order, price guard aside, as
    in the group view (a weighted group shows its priority order)."""
    order = R.Strategy.PRIORITY if strategy == R.Strategy.WEIGHTED else strategy
    rows = []
    for region in regions:
        row = []
        for carrier in carriers:
            to = R.Destination(carrier, region)
            covering = [m for m in members if m.covers(to)]
            ranking = R.rank(covering, order, "", 10**12, success_rates)
            idle = sorted(m.channel for m in covering if not m.enabled)
            row.append(Cell(carrier, region, ranking, idle))
        rows.append(row)
    return rows


def with_coverage(
    member: R.Member, carriers: Iterable[str] | None, regions: Iterable[str] | None
) -> R.Member:
    return replace(
        member,
        carriers=None if carriers is None else frozenset(carriers),
        regions=None if regions is None else frozenset(regions),
    )
