"""A member's data: the export and the erasure."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from server.schemas.common import Out, Timestamp


class MemberExportOut(Out):
    member: dict[str, Any] = Field(description="profile: name, phone, unit, role, position, login, WeChat binding")
    signups: list[dict[str, Any]]
    checkins: list[dict[str, Any]] = Field(description="with coordinates while the retention keeps them")
    inbox: list[dict[str, Any]]
    contributions: list[dict[str, Any]]
    refunds: list[dict[str, Any]]
    subscriptions: list[dict[str, Any]]
    changes: list[dict[str, Any]] = Field(description="audit log entries about the member")
    exported_at: str


class ErasedOut(Out):
    member_id: int
    erased_at: Timestamp
    kept: list[str] = Field(description="what the erasure keeps as the law requires")
