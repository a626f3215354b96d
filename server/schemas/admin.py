"""Administration and the audit log: request and response shapes."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, StringConstraints, model_validator

from server.schemas.common import Cursor, Id, In, Name, Out, Phone, Timestamp

Username = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_.-]{3,64}$")]
Password = Annotated[str, StringConstraints(min_length=10, max_length=128)]
PositionName = Literal["secretary", "deputy_secretary", "committee_member", "member"]


class StaffIn(In):
    username: Username
    name: Name
    phone: Phone
    role: Literal["committee", "liaison"]
    zone_ids: list[Id] = Field(default_factory=list, max_length=100, description="the zones a liaison guides")
    password: Password | None = Field(default=None, description="default: one is made and answered once")


class OwnPasswordIn(In):
    username: Username
    password: Password
    current_password: str | None = Field(default=None, max_length=128,
                                         description="needed when a password is set already")


class OwnPasswordOut(Out):
    username: str
    sessions_ended: bool = Field(description="a changed password ends every session, this one's too")


class StaffZonesIn(In):
    zone_ids: list[Id] = Field(max_length=100)


class StaffOut(Out):
    id: int
    username: str | None
    name: str
    phone: str
    role: str
    is_active: bool
    zone_ids: list[int]
    password: str | None = Field(default=None, description="only when zonehub made it: shown this once")


class StaffListOut(Out):
    items: list[StaffOut]


class ZoneIn(In):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    description: Annotated[str, StringConstraints(max_length=2_000)] = ""


class ZonePatchIn(In):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] = None  # type: ignore[assignment]
    description: Annotated[str, StringConstraints(max_length=2_000)] = None  # type: ignore[assignment]

    schema_rules: ClassVar[dict[str, Any]] = {"minProperties": 1}

    @model_validator(mode="after")
    def _something(self) -> ZonePatchIn:
        if not self.model_fields_set:
            raise ValueError("请至少修改一项")
        return self


class ZoneRowOut(Out):
    id: int
    name: str
    description: str


class MemberPatchIn(In):
    """Only the fields sent change; null is not a value for any of them."""

    name: Name = None  # type: ignore[assignment]
    phone: Phone = None  # type: ignore[assignment]
    position: PositionName = None  # type: ignore[assignment]
    role: Literal["member", "unit_admin"] = Field(default=None, description="staff governing the zone")  # type: ignore[assignment]
    unit_id: Id = Field(default=None, description="move to another unit (committee)")  # type: ignore[assignment]
    is_active: bool = None  # type: ignore[assignment]

    schema_rules: ClassVar[dict[str, Any]] = {"minProperties": 1}

    @model_validator(mode="after")
    def _something(self) -> MemberPatchIn:
        if not self.model_fields_set:
            raise ValueError("请至少修改一项")
        return self


class InviteCodeOut(Out):
    id: int
    name: str
    invite_code: str


class AuditQuery(In):
    limit: int = Field(default=50, ge=1, le=200)
    cursor: Cursor = None
    action: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,32}(\.[a-z_]{1,32})?$")] | None = Field(
        default=None, description="e.g. refund (every refund.*) or refund.requested")
    actor_id: Id | None = None
    target_type: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,32}$")] | None = None
    target_id: int | None = Field(default=None, ge=1, le=9_223_372_036_854_775_807)
    zone_id: Id | None = None


class AuditEntryOut(Out):
    id: int
    at: Timestamp
    actor_id: int | None
    action: str
    target_type: str
    target_id: int | None
    zone_id: int | None
    address: str | None = Field(description="client address of the request (null: a job)")
    detail: dict[str, Any]


class AuditOut(Out):
    items: list[AuditEntryOut]
    next_cursor: int | None
