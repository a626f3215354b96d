"""Shapes every route shares: errors, ids, names."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Id = Annotated[int, Field(ge=1, le=999_999_999)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9-]{5,20}$")]


class In(BaseModel):
    """Request bodies: unknown fields are ignored, strings are stripped."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="ignore")


class Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorOut(Out):
    code: str = Field(description="stable machine code, e.g. not_found")
    message: str = Field(description="human message (zh-CN)")


class InvalidRequestOut(ErrorOut):
    errors: list[FieldError]


class OkOut(Out):
    ok: bool = True
