"""Notices and each member's inbox. System messages (a promotion from the waitlist, a cancelled
activity, a compliance warning) are notices too, so a member finds everything in one inbox."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class NoticeKind(StrEnum):
    NOTICE = "notice"   # written by a person for an audience
    SYSTEM = "system"   # sent by zonehub to named members


class Notice(Model):
    id = fields.IntField(primary_key=True)
    kind = fields.CharEnumField(NoticeKind, max_length=16)
    topic = fields.CharField(max_length=64, default="", description="e.g. activity.promoted")
    title = fields.CharField(max_length=128)
    body = fields.TextField(default="")
    sender_id = fields.IntField(null=True)
    audience = fields.JSONField(default=dict)
    require_ack = fields.BooleanField(default=False)
    ack_due_at = fields.DatetimeField(null=True)
    ref_type = fields.CharField(max_length=32, default="")
    ref_id = fields.IntField(null=True)
    recipients = fields.IntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "notice"
        ordering = ["-id"]


class InboxItem(Model):
    id = fields.BigIntField(primary_key=True)
    notice: fields.ForeignKeyRelation[Notice] = fields.ForeignKeyField(
        "models.Notice", related_name="inbox_items", on_delete=fields.CASCADE)
    notice_id: int
    member_id = fields.IntField()
    unit_id = fields.IntField(null=True)
    delivered_at = fields.DatetimeField()
    read_at = fields.DatetimeField(null=True)
    acked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "inbox_item"
        unique_together = (("notice", "member_id"),)
        indexes = (("member_id", "id"),)
