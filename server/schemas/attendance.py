"""Attendance and the "three ones": request and response shapes."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

from server.schemas.common import In, Out, Timestamp, Year


class UnitAttendance(Out):
    unit_id: int | None
    unit_name: str
    signed_up: int
    checked_in: int
    walk_ins: int = 0
    absent: int | None = None
    attendance_rate: float | None


class AttendanceOut(Out):
    activity_id: int
    signed_up: int
    checked_in: int
    walk_ins: int
    absent: int
    attendance_rate: float | None
    by_unit: list[UnitAttendance]
    absent_members: list[dict]


class ZoneAttendanceQuery(In):
    year: Year


class ZoneAttendanceOut(Out):
    zone_id: int
    year: int
    activities: int
    attendee_times: int
    by_unit: list[UnitAttendance]


class HistoryItem(Out):
    activity_id: int
    title: str
    kind: str
    starts_at: Timestamp
    status: str
    checked_in_at: Timestamp | None


class HistoryOut(Out):
    items: list[HistoryItem]


class ComplianceQuery(In):
    quarter: Annotated[str, StringConstraints(pattern=r"^\d{4}[Qq][1-4]$")]


class RotationCompliance(Out):
    rotation_id: int
    unit_id: int
    unit_name: str
    starts_at: Timestamp
    ends_at: Timestamp
    party_lesson: bool
    party_activity: bool
    handover_meeting: bool
    complete: bool
    missing: list[str]
    activities_planned: int
    warnings: list[str]


class ComplianceOut(Out):
    zone_id: int
    quarter: str
    rotations: list[RotationCompliance]


# -- contests -------------------------------------------------------------------------------------
