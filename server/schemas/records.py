"""Activity records (minutes and photos): request and response shapes."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from server.schemas.common import In, Out, Timestamp
from server.schemas.files import AttachmentOut, Photos


class RecordIn(In):
    minutes: Annotated[str, StringConstraints(strip_whitespace=True, max_length=20_000)] = Field(
        default="", description="纪要: what happened, decided, who spoke")
    photos: Photos = Field(default_factory=list, description=(
        "at most 10, each from POST /api/v1/attachments and a JPEG or PNG by its first bytes "
        "(else 422 not_an_image)"))


class RecordOut(Out):
    activity_id: int
    minutes: str
    photos: list[AttachmentOut]
    recorded_by_id: int | None
    recorded_unit_id: int | None = Field(description="the unit that recorded it; null: staff")
    created_at: Timestamp | None = Field(description="null: nothing recorded yet")
    updated_at: Timestamp | None
