"""Good practice (经验交流): request and response shapes."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from server.schemas.common import Cursor, Id, In, Out, Timestamp, Year
from server.schemas.files import AttachmentOut, Photos


class PracticeIn(In):
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
    body: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000)]
    images: Photos = Field(default_factory=list, description=(
        "at most 10, each from POST /api/v1/attachments and a JPEG or PNG by its first bytes"))
    unit_id: Id | None = Field(default=None, description="the caller's own unit (the default); another is refused")


class PracticesQuery(In):
    zone_id: Id | None = None
    unit_id: Id | None = None
    year: Year | None = None
    featured: bool | None = Field(default=None, description="true: featured only; false: not featured")
    limit: int = Field(default=50, ge=1, le=200)
    cursor: Cursor = None


class PracticeSummaryOut(Out):
    id: int
    unit_id: int
    unit_name: str
    zone_id: int | None
    year: int
    title: str
    published_at: Timestamp
    featured_at: Timestamp | None
    reads: int = Field(description="members who opened it (each once)")
    images: int = Field(description="how many images")


class PracticesOut(Out):
    items: list[PracticeSummaryOut]
    next_cursor: int | None


class PracticeOut(Out):
    id: int
    unit_id: int
    unit_name: str
    zone_id: int | None
    year: int
    title: str
    body: str
    images: list[AttachmentOut]
    author_id: int | None
    published_at: Timestamp
    featured_at: Timestamp | None
    featured_by_id: int | None
    notice_id: int | None = Field(description="the notice that took it to every zone, once featured")
    reads: int = Field(description="members who opened it (each once)")
