"""Sign-up and the waitlist: request and response shapes."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from server.schemas.common import Id, In, Out, Timestamp

SignupId = Field(validation_alias=AliasChoices("signup_id", "id"))


class SignupOut(Out):
    signup_id: int = SignupId
    activity_id: int
    member_id: int
    status: str
    position: int | None = Field(description="place on the waitlist, 1 = next")


class BatchSignupIn(In):
    member_ids: list[Id] = Field(min_length=1, max_length=500)


class BatchSignupOut(Out):
    items: list[SignupOut]


class SignupRow(Out):
    signup_id: int = SignupId
    member_id: int
    name: str
    unit_id: int | None
    status: str
    queued_at: Timestamp
    confirmed_at: Timestamp | None


class SignupsOut(Out):
    confirmed: list[SignupRow]
    waitlisted: list[SignupRow]
    cancelled: list[SignupRow]
