"""Supervision items: request and response shapes."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, StringConstraints, model_validator

from server.schemas.common import Cursor, Id, In, Instant, Out, Timestamp
from server.schemas.files import AttachmentOut, Attachments
from services.escalation import DEFAULT_LADDER

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
Note = Annotated[str, StringConstraints(max_length=5_000)]


class LadderIn(In):
    """Overrides of the escalation ladder (hours); what is left out keeps its default."""

    remind_before_h: int | None = Field(default=None, ge=0, le=720,
                                        description="reminder before the due time; 0: none (default 48)")
    liaison_after_h: int | None = Field(default=None, ge=1, le=2160,
                                        description="liaisons told this long after the due time (default 24)")
    committee_after_h: int | None = Field(default=None, ge=1, le=2160,
                                          description="committee told this long after the due time (default 72)")

    @model_validator(mode="after")
    def _in_order(self) -> LadderIn:
        merged = {**DEFAULT_LADDER, **self.model_dump(exclude_none=True)}
        if merged["committee_after_h"] < merged["liaison_after_h"]:
            raise ValueError("committee_after_h 不能早于 liaison_after_h")
        return self


class ItemIn(In):
    title: Title
    detail: Annotated[str, StringConstraints(max_length=20_000)] = ""
    attachments: Attachments = Field(default_factory=list)
    due_at: Instant
    unit_ids: list[Id] = Field(default_factory=list, max_length=1000)
    zone_ids: list[Id] = Field(default_factory=list, max_length=100,
                               description="every unit of these zones, as they are now")
    ladder: LadderIn | None = None

    schema_rules: ClassVar[dict[str, Any]] = {"anyOf": [
        {"required": [name], "properties": {name: {"minItems": 1}}} for name in ("unit_ids", "zone_ids")]}

    @model_validator(mode="after")
    def _some_units(self) -> ItemIn:
        if not (self.unit_ids or self.zone_ids):
            raise ValueError("请指定 unit_ids 或 zone_ids")
        return self


class ProgressIn(In):
    unit_id: Id | None = Field(default=None, description="default: the caller's unit (the only one allowed)")
    note: Annotated[str, StringConstraints(min_length=1, max_length=5_000)]
    done: bool = Field(default=False, description="true: submit for review")
    attachments: Attachments = Field(default_factory=list)


class UrgeIn(In):
    unit_id: Id
    note: Note = ""


class ReviewIn(In):
    unit_id: Id
    accept: bool
    comment: Note = Field(default="", description="required (2+ characters) when returning")

    schema_rules: ClassVar[dict[str, Any]] = {"anyOf": [
        {"properties": {"accept": {"const": True}}},
        {"required": ["comment"], "properties": {"comment": {"minLength": 2}}}]}


class ItemsQuery(In):
    limit: int = Field(default=50, ge=1, le=200)
    cursor: Cursor = None
    zone_id: Id | None = None


StateName = Literal["open", "in_progress", "submitted", "accepted", "returned"]
StepName = Literal["remind", "overdue", "liaison", "committee"]


class AssignmentOut(Out):
    item_id: int
    unit_id: int
    unit_name: str
    zone_id: int | None
    state: StateName
    escalation_level: int = Field(description="ladder steps fired, 0 to 4")
    escalation: StepName | None = Field(description="the last step fired")
    next_step: StepName | None
    next_step_at: Timestamp | None
    overdue: bool
    assigned_at: Timestamp
    submitted_at: Timestamp | None
    accepted_at: Timestamp | None
    urge_count: int
    last_urged_at: Timestamp | None


class Stats(Out):
    assignments: int
    accepted: int
    submitted: int
    overdue: int
    accepted_on_time: int
    completion_share: float | None = Field(description="accepted / assigned")
    on_time_share: float | None = Field(description="submitted by the due time, of the accepted")
    mean_hours_to_accept: float | None = Field(description="from assignment to acceptance")


class ZoneStats(Stats):
    zone_id: int | None


class UnitStats(Stats):
    unit_id: int


class Dashboard(Out):
    overall: Stats | None
    by_zone: list[ZoneStats]
    by_unit: list[UnitStats]


class Ladder(Out):
    remind_before_h: int
    liaison_after_h: int
    committee_after_h: int


class ItemOut(Out):
    id: int
    title: str
    detail: str
    attachments: list[AttachmentOut]
    due_at: Timestamp
    ladder: Ladder
    created_by_id: int
    created_at: Timestamp
    stats: Stats | None = Field(description="over the assignments the caller sees")
    assignments: list[AssignmentOut]


class ItemsOut(Out):
    items: list[ItemOut]
    next_cursor: int | None
    dashboard: Dashboard = Field(description="every item the caller sees, per zone and per unit")


class TimelineEntry(Out):
    at: Timestamp
    kind: Literal["progress", "submitted", "accepted", "returned", "urge", "escalation"]
    unit_id: int
    by_id: int | None = None
    by_unit_id: int | None = None
    note: str | None = None
    attachments: list[AttachmentOut] | None = None
    step: StepName | None = None
    due_at: Timestamp | None = Field(default=None, description="escalations: when the step was due")


class ItemDetailOut(ItemOut):
    timeline: list[TimelineEntry]


class UrgeOut(Out):
    id: int
    item_id: int
    unit_id: int
    at: Timestamp
    next_allowed_at: Timestamp
