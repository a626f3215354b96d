"""Shapes every route shares: the request base, ids, names, instants, errors.

One rule for every request body (`In`): unknown fields are refused, and types are strict — a JSON
`true` is not a number, `"100"` is not an integer, `0` is not a time. Times must carry an offset
and lie in a sane range; strings may not hold NUL or other control characters (the router
checks every string of a body before the model sees it).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
)

from services.clock import SHANGHAI

Id = Annotated[int, Field(ge=1, le=999_999_999)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9-]{5,20}$")]

EARLIEST_YEAR, LATEST_YEAR = 2000, 2100
MAX_OFFSET = timedelta(hours=14)


def _sane_instant(value: datetime) -> datetime:
    offset = value.utcoffset()
    assert offset is not None  # AwareDatetime
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValueError(f"时间须在 {EARLIEST_YEAR} 年至 {LATEST_YEAR} 年之间")
    if abs(offset) > MAX_OFFSET or offset.total_seconds() % 60:
        raise ValueError("时区偏移须为整分钟且不超过 ±14:00")
    return value


def _sane_day(value: date) -> date:
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValueError(f"日期须在 {EARLIEST_YEAR} 年至 {LATEST_YEAR} 年之间")
    return value


Instant = Annotated[AwareDatetime, AfterValidator(_sane_instant),
                    Field(description="ISO 8601 with an offset, years 2000-2100")]
Day = Annotated[date, AfterValidator(_sane_day), Field(description="YYYY-MM-DD, years 2000-2100")]
Year = Annotated[int, Field(ge=EARLIEST_YEAR, le=LATEST_YEAR)]
#: Pagination, one name everywhere: send the previous page's `next_cursor` as `cursor`.
Cursor = Annotated[int | None, Field(ge=1, le=2_147_483_647, description="the previous page's next_cursor")]


#: A string without control characters (tab, LF and CR are text), as the router enforces.
NO_CONTROL_CHARACTERS = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f]*$"


def _state_string_rules(schema: dict[str, Any]) -> None:
    """Every free-text string of a request schema says it holds no control characters."""
    if schema.get("type") == "string" and not {"format", "pattern", "enum", "const"} & schema.keys():
        schema["pattern"] = NO_CONTROL_CHARACTERS
    for key in ("properties", "$defs"):
        for sub in schema.get(key, {}).values():
            _state_string_rules(sub)
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for sub in schema.get(key, []):
            _state_string_rules(sub)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            _state_string_rules(schema[key])


def _request_schema(schema: dict[str, Any], cls: type[BaseModel]) -> None:
    _state_string_rules(schema)
    schema.update(getattr(cls, "schema_rules", {}))


class In(BaseModel):
    """Request bodies and queries: strings stripped, unknown fields refused, strict types.
    `schema_rules` (a class attribute) adds what the model's validators check across fields,
    as JSON Schema (anyOf, oneOf), so the published schema says what the server accepts."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid", strict=True,
                              json_schema_extra=_request_schema)
    schema_rules: ClassVar[dict[str, Any]] = {}


def _shanghai(value: datetime) -> str:
    return value.astimezone(SHANGHAI).isoformat()


#: Every time the API answers: ISO 8601 with the +08:00 offset, whatever the database held.
Timestamp = Annotated[datetime, PlainSerializer(_shanghai, return_type=str, when_used="json")]


class Out(BaseModel):
    """Responses: rendered from the service's result (dicts, dataclasses or models alike); only
    the declared fields are answered."""

    model_config = ConfigDict(from_attributes=True, extra="ignore")


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
