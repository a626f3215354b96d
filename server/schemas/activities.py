"""Activities, sign-ups, check-in, attendance, contests: request and response shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, model_validator

from server.schemas.common import Id, In, Instant, Out

Kind = Literal["party_lesson", "party_activity", "handover_meeting", "regular_meeting", "contest",
               "culture_sports", "volunteer", "other"]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]


class Audience(In):
    all: bool = False
    zone_ids: list[Id] = Field(default_factory=list, max_length=100)
    unit_ids: list[Id] = Field(default_factory=list, max_length=1000)
    roles: list[Literal["unit_admin", "member", "committee"]] = Field(default_factory=list, max_length=3)

    @model_validator(mode="after")
    def _not_empty(self) -> Audience:
        if not (self.all or self.zone_ids or self.unit_ids or self.roles):
            raise ValueError("请指定受众：all、zone_ids、unit_ids 或 roles")
        return self


class _ActivityFields(In):
    title: Title
    description: Annotated[str, StringConstraints(max_length=10_000)] = ""
    place: Annotated[str, StringConstraints(max_length=255)] = ""
    lat: float | None = Field(default=None, ge=-90, le=90)
    lng: float | None = Field(default=None, ge=-180, le=180)
    radius_m: int | None = Field(default=None, ge=10, le=50_000)
    starts_at: Instant
    ends_at: Instant
    capacity: int | None = Field(default=None, ge=1, le=1_000_000, description="null = unlimited")
    unit_quota: int | None = Field(default=None, ge=1, le=100_000)
    signup_opens_at: Instant | None = Field(default=None, description="default: now")
    signup_closes_at: Instant | None = Field(default=None, description="default: the start")
    checkin_opens_at: Instant | None = Field(default=None, description="default: 30 min before the start")
    checkin_closes_at: Instant | None = Field(default=None, description="default: the end")
    walk_ins: bool = False
    waitlist: bool = Field(default=True, description="queue members when full")
    audience: Audience | None = Field(default=None, description="default: the zone")


class ActivityIn(_ActivityFields):
    zone_id: Id | None = Field(default=None, description="null: city-wide (committee only)")
    kind: Kind


class ActivityPatch(In):
    """Only the fields sent change. `null` is refused for fields that cannot be empty; it lifts
    the limit for `capacity` and `unit_quota`, and removes the place's coordinates."""

    title: Title = None  # type: ignore[assignment]  (absent: unchanged; null: refused)
    description: Annotated[str, StringConstraints(max_length=10_000)] = None  # type: ignore[assignment]
    place: Annotated[str, StringConstraints(max_length=255)] = None  # type: ignore[assignment]
    lat: float | None = Field(default=None, ge=-90, le=90)
    lng: float | None = Field(default=None, ge=-180, le=180)
    radius_m: int | None = Field(default=None, ge=10, le=50_000)
    starts_at: Instant = None  # type: ignore[assignment]
    ends_at: Instant = None  # type: ignore[assignment]
    capacity: int | None = Field(default=None, ge=1, le=1_000_000, description="null = unlimited")
    unit_quota: int | None = Field(default=None, ge=1, le=100_000, description="null = no quota")
    signup_opens_at: Instant = None  # type: ignore[assignment]
    signup_closes_at: Instant = None  # type: ignore[assignment]
    checkin_opens_at: Instant = None  # type: ignore[assignment]
    checkin_closes_at: Instant = None  # type: ignore[assignment]
    walk_ins: bool = None  # type: ignore[assignment]
    waitlist: bool = None  # type: ignore[assignment]
    audience: Audience = None  # type: ignore[assignment]


class CancelIn(In):
    reason: Annotated[str, StringConstraints(min_length=2, max_length=500)]


class ActivityOut(Out):
    id: int
    zone_id: int | None
    organiser_unit_id: int | None
    rotation_id: int | None
    kind: str
    title: str
    description: str
    place: str
    lat: float | None
    lng: float | None
    radius_m: int | None
    starts_at: datetime
    ends_at: datetime
    capacity: int | None
    unit_quota: int | None
    signup_opens_at: datetime
    signup_closes_at: datetime
    checkin_opens_at: datetime
    checkin_closes_at: datetime
    walk_ins: bool
    waitlist: bool
    audience: dict
    status: str
    confirmed: int
    waitlisted: int
    checked_in: int
    my_status: str | None = Field(default=None, description="confirmed, waitlisted, cancelled or null")
    my_position: int | None = None
    my_checked_in: bool | None = None


class CreatedActivityOut(ActivityOut):
    warnings: list[str] = Field(description="e.g. rotation_over_guideline (more than 4 planned)")


class ActivitiesOut(Out):
    items: list[ActivityOut]


class ActivitiesQuery(In):
    zone_id: Id | None = None
    kind: Kind | None = None
    from_: Instant | None = Field(default=None, alias="from")
    to: Instant | None = None
    limit: int = Field(default=100, ge=1, le=500)


class SignupOut(Out):
    signup_id: int
    activity_id: int
    member_id: int
    status: str
    position: int | None = Field(description="place on the waitlist, 1 = next")


class BatchSignupIn(In):
    member_ids: list[Id] = Field(min_length=1, max_length=500)


class BatchSignupOut(Out):
    items: list[SignupOut]


class SignupRow(BaseModel):
    signup_id: int
    member_id: int
    name: str
    unit_id: int | None
    status: str
    queued_at: datetime
    confirmed_at: datetime | None


class SignupsOut(Out):
    confirmed: list[SignupRow]
    waitlisted: list[SignupRow]
    cancelled: list[SignupRow]


class CheckinCodeOut(Out):
    token: str
    expires_at: datetime
    svg: str


class CheckinIn(In):
    token: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    lat: float | None = Field(default=None, ge=-90, le=90)
    lng: float | None = Field(default=None, ge=-180, le=180)


class CheckinOut(Out):
    activity_id: int
    member_id: int
    checked_in_at: datetime
    walk_in: bool
    first_time: bool = Field(description="false when this repeats an earlier check-in")


class Scan(In):
    pass_token: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    nonce: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,64}$")]
    scanned_at: Instant | None = Field(default=None, description="when scanned offline")


class ScansIn(In):
    scans: list[Scan] = Field(min_length=1, max_length=1000)


class ScanResult(BaseModel):
    nonce: str
    status: Literal["checked_in", "already_checked_in", "duplicate", "error"]
    code: str | None = None
    member_id: int | None = None
    first_outcome: str | None = None


class ScansOut(Out):
    results: list[ScanResult]


class PassOut(Out):
    token: str
    expires_at: datetime
    svg: str
    public_key: str


class PassKeyOut(Out):
    alg: Literal["Ed25519"]
    public_key: str = Field(description="raw 32-byte key, base64url")


class UnitAttendance(BaseModel):
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
    year: int = Field(ge=2000, le=2100)


class ZoneAttendanceOut(Out):
    zone_id: int
    year: int
    activities: int
    attendee_times: int
    by_unit: list[UnitAttendance]


class HistoryItem(BaseModel):
    activity_id: int
    title: str
    kind: str
    starts_at: datetime
    status: str
    checked_in_at: datetime | None


class HistoryOut(Out):
    items: list[HistoryItem]


class ComplianceQuery(In):
    quarter: Annotated[str, StringConstraints(pattern=r"^\d{4}[Qq][1-4]$")]


class RotationCompliance(BaseModel):
    rotation_id: int
    unit_id: int
    unit_name: str
    starts_at: datetime
    ends_at: datetime
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

class EntryIn(In):
    title: Title
    as_unit: bool = Field(default=False, description="a unit admin enters for the unit")


class EntryOut(Out):
    id: int
    contest_id: int
    zone_id: int
    unit_id: int
    member_id: int | None
    title: str
    preliminary_score: float | None
    preliminary_rank: int | None
    advanced: bool
    final_score: float | None
    final_rank: int | None


class EntriesOut(Out):
    items: list[EntryOut]


class Score(In):
    entry_id: Id
    score: float = Field(ge=0, le=100_000)


class PreliminaryIn(In):
    zone_id: Id
    advance_top: int = Field(ge=1, le=100)
    scores: list[Score] = Field(min_length=1, max_length=1000)


class FinalIn(In):
    scores: list[Score] = Field(min_length=1, max_length=1000)


class RoundOut(BaseModel):
    kind: str
    zone_id: int | None
    advance_top: int | None
    closed_at: datetime
    ranking: list[EntryOut]


class ResultsOut(Out):
    contest_id: int
    rounds: list[RoundOut]
