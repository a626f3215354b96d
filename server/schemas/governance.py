"""Regular meetings and handovers: request and response shapes."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

from server.schemas.common import Id, In, Instant, Out, Timestamp, Year

Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=20_000)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]


class MeetingIn(In):
    year: Year
    quarter: int = Field(ge=1, le=4, description="the quarter under review (its duty units report)")
    title: Title
    starts_at: Instant
    place: Annotated[str, StringConstraints(strip_whitespace=True, max_length=255)] = ""


class MeetingsQuery(In):
    year: Year | None = None


class MeetingTextIn(In):
    text: Text


class MeetingCloseIn(In):
    minutes: Text = ""


class DeploymentIn(In):
    title: Title
    detail: Text = ""
    due_at: Instant
    zone_ids: list[Id] = Field(default_factory=list, max_length=100,
                               description="default: every zone at the meeting")


class MeetingZoneOut(Out):
    zone_id: int
    zone_name: str
    unit_id: int | None = Field(description="the duty unit of the quarter under review")
    unit_name: str | None
    next_unit_id: int | None = Field(description="the next quarter's duty unit")
    next_unit_name: str | None
    report: str
    reported_at: Timestamp | None
    comments: str = Field(description="the committee's comments (讲评)")
    commented_at: Timestamp | None


class DeploymentOut(Out):
    id: int
    title: str
    detail: str
    due_at: Timestamp
    zone_ids: list[int]
    item_id: int = Field(description="the supervision item it became")


class MeetingOut(Out):
    id: int
    year: int
    quarter: int
    title: str
    place: str
    starts_at: Timestamp
    state: str
    minutes: str
    held_at: Timestamp | None
    zones: list[MeetingZoneOut]
    deployments: list[DeploymentOut]


class MeetingsOut(Out):
    items: list[MeetingOut]


class HandoverIn(In):
    note: Text | None = Field(default=None, description="the outgoing unit's own words")
    plan: Text | None = Field(default=None, description="the incoming unit's plan for its quarter")
    confirm: bool = False


class HandoverOut(Out):
    rotation_id: int
    zone_id: int
    unit_id: int
    next_rotation_id: int | None
    next_unit_id: int | None
    report: dict[str, Any] = Field(description="the quarter as recorded: activities and attendance, "
                                   "three ones, supervision, notices, funds (frozen once the "
                                   "outgoing unit confirms)")
    report_frozen: bool
    outgoing_note: str
    incoming_plan: str
    outgoing_confirmed_at: Timestamp | None
    incoming_confirmed_at: Timestamp | None
    closed_at: Timestamp | None
    flagged_at: Timestamp | None
    opens_at: Timestamp
