"""Work plans: request and response shapes."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, StringConstraints

from server.schemas.activities import Kind
from server.schemas.common import Day, In, Out, Timestamp

Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=5_000)]


class PlanItemIn(In):
    kind: Kind
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
    date: Day = Field(description="within the rotation's quarter")
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""


class PlanIn(In):
    goals: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5_000)]
    items: list[PlanItemIn] = Field(default_factory=list, max_length=20,
                                    description="planned activities (the guideline: 2 to 4)")
    budget_fen: int = Field(default=0, ge=0, le=1_000_000_000)
    note: Text = ""


class PlanCommentIn(In):
    body: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2_000)]


class PlanDecisionIn(In):
    decision: Literal["file", "return"] = Field(description="file (备案) or return with comments")
    comment: Text = Field(default="", description="required (2+ characters) when returning")

    schema_rules: ClassVar[dict[str, Any]] = {"anyOf": [
        {"properties": {"decision": {"const": "file"}}},
        {"required": ["comment"], "properties": {"comment": {"minLength": 2}}}]}


class PlanItemOut(Out):
    kind: str
    title: str
    date: date
    note: str


class PlanVersionOut(Out):
    version: int
    goals: str
    items: list[PlanItemOut]
    budget_fen: int
    note: str
    author_id: int
    created_at: Timestamp


class PlanEventOut(Out):
    kind: Literal["submitted", "filed", "returned", "commented"]
    version: int
    unit_id: int | None
    author_id: int
    body: str
    at: Timestamp


class PlanOut(Out):
    rotation_id: int
    zone_id: int
    unit_id: int
    year: int
    quarter: int
    state: Literal["draft", "submitted", "filed", "returned"]
    version: int = Field(description="the latest version, 0 before the first")
    submitted_at: Timestamp | None
    decided_at: Timestamp | None
    decision_comment: str
    filed_version: int | None
    due_at: Timestamp = Field(description="submitted by then counts as on time")
    current: PlanVersionOut | None
    versions: list[PlanVersionOut]
    events: list[PlanEventOut]
    warnings: list[Literal["over_guideline"]]
