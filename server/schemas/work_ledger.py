"""The work ledger and the year-end evaluation: request and response shapes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from server.schemas.common import Id, In, Out, Timestamp, Year

MetricName = Literal["compliance", "attendance", "supervision", "acknowledgement", "funds",
                     "practice", "plans"]


class LedgerQuery(In):
    year: Year | None = Field(default=None, description="default: this year")
    zone_id: Id | None = None
    unit_id: Id | None = Field(default=None, description="one unit's ledger (a unit admin: their own)")
    format: Literal["json", "xlsx"] = "json"


class ColumnOut(Out):
    key: str
    title: str
    kind: Literal["text", "int", "fen", "share", "time", "bool"]


class SectionOut(Out):
    key: str
    title: str
    columns: list[ColumnOut]
    rows: list[dict[str, Any]]
    totals: dict[str, Any] | None


class ZoneSizeOut(Out):
    zone_id: int
    zone_name: str
    units: int


class CityOut(Out):
    party_lessons_held: int
    party_lesson_attendee_times: int
    activities_held: int
    attendee_times: int
    leaders: int
    leaders_attending: int
    leader_participation: float | None
    zones_outside_size: list[ZoneSizeOut] = Field(description="zones of fewer than 8 or more than 10 units")


class LedgerOut(Out):
    year: int
    zone_id: int | None
    unit_id: int | None
    city: CityOut = Field(description="the figures of the scope asked for")
    sections: list[SectionOut]


class RubricIn(In):
    weights: dict[MetricName, Annotated[int, Field(ge=1, le=100)]] = Field(
        min_length=1, description="weight per metric, 1 to 100; a metric left out weighs nothing")


class MetricOut(Out):
    value: float | None = Field(description="a share in [0, 1]; null when there is nothing to measure")
    part: float
    whole: float
    evidence: list[dict[str, Any]]


class ScoreOut(Out):
    id: int
    name: str
    zone_id: int
    score: float | None
    rank: int
    metrics: dict[str, MetricOut]


class EvaluationOut(Out):
    year: int
    weights: dict[str, int]
    metric_titles: dict[str, str]
    units: list[ScoreOut]
    zones: list[ScoreOut]
    computed_at: Timestamp
    stored: bool = Field(description="false: computed now under the year's rubric, not yet stored")
