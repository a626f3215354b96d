"""Organisation: zones, units, rosters, rotations, import."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from server.schemas.auth import MemberOut, UnitRef
from server.schemas.common import Cursor, Id, In, Out
from server.schemas.rotations import RotationOut


class ZoneOut(Out):
    id: int
    name: str
    description: str
    unit_count: int
    duty_unit: UnitRef | None
    rotation: RotationOut | None


class UnitOut(Out):
    id: int
    name: str
    zone_id: int | None
    district: str
    nature: str
    member_count: int
    strength: int
    duty_order: int | None


class UnitAdminOut(UnitOut):
    invite_code: str


class LiaisonOut(Out):
    id: int
    name: str
    phone: str


class ZoneDetailOut(Out):
    id: int
    name: str
    description: str
    units: list[UnitOut]
    liaisons: list[LiaisonOut]
    rotation: RotationOut | None


class ZonesOut(Out):
    items: list[ZoneOut]


class UnitsOut(Out):
    items: list[UnitAdminOut]


class MembersOut(Out):
    items: list[MemberOut]
    next_cursor: int | None


class UnitsQuery(In):
    zone_id: Id | None = None


class MembersQuery(In):
    role: Annotated[str, StringConstraints(pattern=r"^(member|unit_admin)$")] | None = None
    cursor: Cursor = None
    limit: int = Field(default=200, ge=1, le=1000)


class ImportWarning(Out):
    code: str = Field(description="zone_size: a zone holding units outside 8-10 of them")
    message: str
    zone_id: int
    zone_name: str
    units: int


class ImportOut(Out):
    kind: str
    rows: int
    created: int
    updated: int
    unchanged: int
    warnings: list[ImportWarning] = Field(
        description="units imports: every zone left with fewer than 8 or more than 10 units")
