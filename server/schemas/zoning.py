"""Re-partitioning: request and response shapes."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from server.schemas.common import In, Out, Timestamp


class ProposeIn(In):
    seed: int = Field(default=0, ge=0, le=2_147_483_647,
                      description="the solver's seed: the same seed and city give the same proposal")
    zones: int | None = Field(default=None, ge=1, le=1000,
                              description="how many zones; default the fewest of at most 10 units")
    time_budget_s: int = Field(default=50, ge=1, le=60,
                               description="a safety cap on the solver's time (it normally ends "
                                           "well before, after a fixed number of steps)")


class ApplyIn(In):
    from_quarter: Annotated[str, StringConstraints(pattern=r"^20\d\d[Qq][1-4]$")] = Field(
        description="the quarter from which the new zones hold, e.g. 2027Q1: one not yet started")


class MeasuresOut(Out):
    zones: float
    min_units: float
    max_units: float
    members_range: float = Field(description="total members per zone, max - min")
    members_cv: float = Field(description="coefficient of variation of total members per zone")
    strength_range: float
    strength_cv: float = Field(description="CV of the zones' mean strength")
    dominant_nature_share: float = Field(description="mean share of a zone's commonest nature")
    districts_per_zone: float
    new_pair_share: float = Field(description="share of pairs in one zone that never shared one")
    units_meeting_new: float
    units_all_new: float
    objective: float = Field(description="the solver's objective, lower is better")


class ComparisonOut(Out):
    today: MeasuresOut | None = Field(description="today's partition (null when a unit has no zone)")
    random: MeasuresOut = Field(description="the mean of random_count random valid partitions")
    proposal: MeasuresOut
    random_count: int


class PartitionUnitOut(Out):
    id: int
    name: str
    from_zone_id: int | None = Field(description="its zone when proposed")


class PartitionZoneOut(Out):
    index: int
    zone_id: int | None = Field(description="the zone it takes over (null: a new zone, made when applied)")
    zone_name: str | None
    units: list[PartitionUnitOut] = Field(description="in the new duty order once applied")
    members: int
    mean_strength: float
    natures: int
    districts: int


class PartitionSummaryOut(Out):
    id: int
    status: str = Field(description="pending or applied")
    stale: bool = Field(description="units were added, removed or moved since it was proposed")
    seed: int
    zone_count: int
    measures: ComparisonOut
    steps: int
    elapsed_ms: int
    out_of_time: bool
    created_by_id: int | None
    created_at: Timestamp
    from_quarter: str | None
    starts_at: Timestamp | None
    applied_at: Timestamp | None
    applied_by_id: int | None
    moved_at: Timestamp | None = Field(description="when its units moved to their new zones")


class PartitionOut(PartitionSummaryOut):
    zones: list[PartitionZoneOut]


class PartitionsOut(Out):
    items: list[PartitionSummaryOut]
