"""Auth and me: request and response shapes."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from server.schemas.common import In, Name, Out, Phone, Timestamp


class WeChatLoginIn(In):
    code: Annotated[str, StringConstraints(min_length=1, max_length=128)] = Field(
        description="the code from wx.login()")


class BindIn(In):
    bind_ticket: Annotated[str, StringConstraints(min_length=8, max_length=128)]
    invite_code: Annotated[str, StringConstraints(min_length=4, max_length=32)]
    name: Name
    phone: Phone


class PasswordLoginIn(In):
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=256, strip_whitespace=False)]


class UnitRef(Out):
    id: int
    name: str


class ZoneRef(Out):
    id: int
    name: str


class DutyOut(Out):
    on_duty: bool = Field(description="is my unit on duty in my zone now")
    zone_has_rotation: bool = Field(description="false: my zone has no rotation now, so no unit "
                                    "holds duty powers until the committee makes one")
    rotation_id: int | None = None
    zone_id: int | None = None
    year: int | None = None
    quarter: int | None = None
    starts_at: Timestamp | None = None
    ends_at: Timestamp | None = None


class MemberOut(Out):
    id: int
    name: str
    phone: str
    role: str
    unit_id: int | None
    position: str = Field(description="secretary (书记), deputy_secretary, committee_member or member")
    is_active: bool
    wechat_bound: bool


class MeOut(Out):
    id: int
    name: str
    phone: str
    roles: list[str] = Field(description="member, unit_admin, committee, liaison, duty_unit")
    unit: UnitRef | None
    zone: ZoneRef | None
    duty: DutyOut
    liaison_zone_ids: list[int]


class TokenOut(Out):
    token: str
    expires_at: Timestamp
    member: MemberOut


class StaffTokenOut(Out):
    token: str
    expires_at: Timestamp
