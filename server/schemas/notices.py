"""Notices: request and response shapes."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import AliasChoices, AliasPath, Field, StringConstraints, model_validator

from server.schemas.activities import Audience
from server.schemas.common import Cursor, In, Instant, Out, Timestamp
from server.schemas.files import AttachmentOut, Attachments
from services import clock


class NoticeIn(In):
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
    body: Annotated[str, StringConstraints(max_length=20_000)] = ""
    audience: Audience
    require_ack: bool = False
    ack_due_at: Instant | None = None
    priority: Literal["normal", "high", "urgent"] = "normal"
    attachments: Attachments = Field(default_factory=list)
    remind_after_s: int | None = Field(default=None, ge=60, le=30 * 24 * 3600,
                                       description="one reminder to whoever has not read by then")

    schema_rules: ClassVar[dict[str, Any]] = {"anyOf": [
        {"properties": {"require_ack": {"const": True}}},
        {"properties": {"ack_due_at": {"type": "null"}}}]}

    @model_validator(mode="after")
    def _ack_deadline(self) -> NoticeIn:
        if self.ack_due_at is not None and not self.require_ack:
            raise ValueError("设置 ack_due_at 时须同时设置 require_ack")
        if self.ack_due_at is not None and self.ack_due_at <= clock.now():
            raise ValueError("确认截止时间须晚于现在")
        return self


class SentQuery(In):
    limit: int = Field(default=50, ge=1, le=200)
    cursor: Cursor = None


class SentNoticeOut(Out):
    id: int
    title: str
    priority: str
    audience: dict[str, Any]
    require_ack: bool
    ack_due_at: Timestamp | None
    sender_id: int | None
    status: str
    recipients: int
    read: int
    acked: int
    created_at: Timestamp
    delivered_at: Timestamp | None


class SentNoticesOut(Out):
    items: list[SentNoticeOut]
    next_cursor: int | None


class NoticeQueuedOut(Out):
    id: int
    status: Literal["queued"]


class UnitStats(Out):
    unit_id: int | None
    unit_name: str
    delivered: int
    read: int
    acked: int
    signed: bool


class NoticeStatsOut(Out):
    notice_id: int
    status: str
    recipients: int = Field(description="the audience; for a unit admin, their unit's members in it")
    delivered: int
    pushed: int = Field(description="pushes WeChat accepted (pushes.sent)")
    pushes: dict[str, int] = Field(description="inbox rows by push outcome: sent, unknown (a worker "
                                   "died while sending: maybe pushed, never resent), failed, "
                                   "refused, no_grant, sending, pending (not tried yet)")
    scope: Literal["all", "unit"]
    read: int
    acked: int
    share_delivered: float | None
    share_read: float | None
    seconds_to_deliver_99: float | None
    seconds_to_deliver_all: float | None
    by_unit: list[UnitStats]
    units_signed: int
    my_unit_unread: list[dict] | None = None


class InboxQuery(In):
    cursor: Cursor = None
    limit: int = Field(default=20, ge=1, le=100)


def _of_notice(name: str) -> Any:
    return Field(validation_alias=AliasChoices(name, AliasPath("notice", name)))


class InboxEntry(Out):
    """An inbox row with its notice."""

    notice_id: int
    kind: str = _of_notice("kind")
    topic: str = _of_notice("topic")
    title: str = _of_notice("title")
    body: str = _of_notice("body")
    priority: str = _of_notice("priority")
    attachments: list[AttachmentOut] = _of_notice("attachments")
    require_ack: bool = _of_notice("require_ack")
    ack_due_at: Timestamp | None = _of_notice("ack_due_at")
    ref_type: str = Field(validation_alias=AliasChoices("ref_type", AliasPath("notice", "ref_type")),
                          description="what it is about, e.g. practice (a featured good practice)")
    ref_id: int | None = _of_notice("ref_id")
    delivered_at: Timestamp
    read_at: Timestamp | None
    acked_at: Timestamp | None


class InboxOut(Out):
    items: list[InboxEntry]
    unread: int
    next_cursor: int | None


class ReceiptOut(Out):
    notice_id: int
    read_at: Timestamp | None
    acked_at: Timestamp | None


class UnitReceiptOut(Out):
    notice_id: int
    unit_id: int
    signed_by: int = Field(validation_alias=AliasChoices("signed_by_id", "signed_by"))
    signed_at: Timestamp


class SubscriptionIn(In):
    template_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    result: Literal["accept", "reject"]


class SubscriptionOut(Out):
    template_id: str
    available: int
