"""Activities: request and response shapes (audiences too: notices take the same)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, StringConstraints, model_validator

from server.schemas.common import Cursor, Id, In, Instant, Out, Timestamp
from server.schemas.records import RecordOut

Kind = Literal["party_lesson", "party_activity", "handover_meeting", "regular_meeting", "contest",
               "culture_sports", "volunteer", "other"]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]


class Audience(In):
    all: bool = False
    zone_ids: list[Id] = Field(default_factory=list, max_length=100)
    unit_ids: list[Id] = Field(default_factory=list, max_length=1000)
    roles: list[Literal["unit_admin", "member", "committee"]] = Field(default_factory=list, max_length=3)

    schema_rules: ClassVar[dict[str, Any]] = {"anyOf": [
        {"required": ["all"], "properties": {"all": {"const": True}}},
        *({"required": [name], "properties": {name: {"minItems": 1}}}
          for name in ("zone_ids", "unit_ids", "roles"))]}

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
    starts_at: Timestamp
    ends_at: Timestamp
    capacity: int | None
    unit_quota: int | None
    signup_opens_at: Timestamp
    signup_closes_at: Timestamp
    checkin_opens_at: Timestamp
    checkin_closes_at: Timestamp
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
    record: RecordOut | None = Field(default=None, description=(
        "minutes and photos (GET of one activity; its zone and staff only; null: none or not yours to see)"))


class CreatedActivityOut(ActivityOut):
    warnings: list[str] = Field(description="e.g. rotation_over_guideline (more than 4 planned)")


class ActivitiesOut(Out):
    items: list[ActivityOut]
    next_cursor: int | None


class ActivitiesQuery(In):
    zone_id: Id | None = None
    kind: Kind | None = None
    from_: Instant | None = Field(default=None, alias="from")
    to: Instant | None = None
    limit: int = Field(default=100, ge=1, le=500)
    cursor: Cursor = None
