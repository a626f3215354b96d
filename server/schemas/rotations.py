"""Rotations: request and response shapes."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from server.schemas.auth import UnitRef
from server.schemas.common import Id, In, Out, Timestamp, Year


class RotationOut(Out):
    id: int
    zone_id: int
    unit: UnitRef
    year: int
    quarter: int
    starts_at: Timestamp
    ends_at: Timestamp


class RotationsOut(Out):
    items: list[RotationOut]


class RotationsQuery(In):
    year: Year | None = None


class GenerateIn(In):
    year: Year


class GenerateOut(Out):
    year: int
    created: int
    existing: int


class DutyChangeIn(In):
    unit_id: Id
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=500)]


class DutyOrderIn(In):
    unit_ids: list[Id] = Field(min_length=1, max_length=100,
                               description="every unit of the zone once, in the new duty order")


class PlanZone(Out):
    zone_id: int
    rotations: list[RotationOut]


class PlanOut(Out):
    year: int
    generated_at: Timestamp | None = Field(description="when generated ahead by the daily job")
    confirmed_at: Timestamp | None
    confirmed_by_id: int | None
    zones: list[PlanZone]
