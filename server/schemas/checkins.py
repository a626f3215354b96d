"""Check-in: request and response shapes."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from server.schemas.common import In, Instant, Out, Timestamp


class CheckinCodeOut(Out):
    token: str
    expires_at: Timestamp
    svg: str


class CheckinIn(In):
    token: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    lat: float | None = Field(default=None, ge=-90, le=90)
    lng: float | None = Field(default=None, ge=-180, le=180)


class CheckinOut(Out):
    activity_id: int
    member_id: int
    checked_in_at: Timestamp
    walk_in: bool
    first_time: bool = Field(description="false when this repeats an earlier check-in")


class Scan(In):
    pass_token: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    nonce: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,64}$")]
    scanned_at: Instant | None = Field(default=None, description="when scanned offline")


class ScansIn(In):
    scans: list[Scan] = Field(min_length=1, max_length=1000)


class ScanResult(Out):
    nonce: str
    status: Literal["checked_in", "already_checked_in", "duplicate", "error"]
    code: str | None = None
    member_id: int | None = None
    first_outcome: str | None = None


class ScansOut(Out):
    results: list[ScanResult]


class PassOut(Out):
    token: str
    expires_at: Timestamp
    svg: str
    public_key: str


class PassKeyOut(Out):
    alg: Literal["Ed25519"]
    public_key: str = Field(description="raw 32-byte key, base64url")
