"""Contests: request and response shapes."""

from __future__ import annotations

from pydantic import Field

from server.schemas.activities import Title
from server.schemas.common import Id, In, Out, Timestamp


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


class RoundOut(Out):
    kind: str
    zone_id: int | None
    advance_top: int | None
    closed_at: Timestamp
    ranking: list[EntryOut]


class ResultsOut(Out):
    contest_id: int
    rounds: list[RoundOut]
