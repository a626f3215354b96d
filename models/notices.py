"""Notices and each member's inbox. System messages (a promotion from the waitlist, a cancelled
activity, a compliance warning) are notices too, so a member finds everything in one inbox."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class NoticeKind(StrEnum):
    NOTICE = "notice"   # written by a person for an audience
    SYSTEM = "system"   # sent by zonehub to named members


class NoticePriority(StrEnum):
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class NoticeStatus(StrEnum):
    QUEUED = "queued"            # written; the fan-out has not been planned yet (the outbox)
    DELIVERING = "delivering"    # batches planned; inbox rows being written
    DELIVERED = "delivered"      # every recipient has an inbox row


class PushStatus(StrEnum):
    SENDING = "sending"          # claimed by a worker: never sent twice, even after a crash
    SENT = "sent"
    NO_GRANT = "no_grant"        # the member granted no subscribe message
    REFUSED = "refused"          # 43101
    FAILED = "failed"            # quota, or retries exhausted
    UNKNOWN = "unknown"          # claimed by a worker that died mid-send: maybe sent, never resent


class Notice(Model):
    id = fields.IntField(primary_key=True)
    kind = fields.CharEnumField(NoticeKind, max_length=16)
    status = fields.CharEnumField(NoticeStatus, max_length=16, default=NoticeStatus.DELIVERED)
    priority = fields.CharEnumField(NoticePriority, max_length=16, default=NoticePriority.NORMAL)
    sender_unit: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Unit", related_name=False, null=True, on_delete=fields.SET_NULL)
    sender_unit_id: int | None
    attachments = fields.JSONField(default=list)
    remind_after_s = fields.IntField(null=True, description="one reminder to whoever has not read")
    planned_at = fields.DatetimeField(null=True)
    delivered_at = fields.DatetimeField(null=True, description="when the last inbox row existed")
    reminders_done_at = fields.DatetimeField(null=True)
    deadline_done_at = fields.DatetimeField(null=True)
    enqueued_at = fields.DatetimeField(null=True, description="last hand-over to the queue")
    topic = fields.CharField(max_length=64, default="", description="e.g. activity.promoted")
    title = fields.CharField(max_length=128)
    body = fields.TextField(default="")
    sender: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Member", related_name=False, null=True, on_delete=fields.SET_NULL)
    sender_id: int | None
    audience = fields.JSONField(default=dict)
    require_ack = fields.BooleanField(default=False)
    ack_due_at = fields.DatetimeField(null=True)
    ref_type = fields.CharField(max_length=32, default="")
    ref_id = fields.IntField(null=True)
    recipients = fields.IntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)
    archived_at = fields.DatetimeField(null=True, description="its inbox rows were folded into notice_tally rows")

    class Meta:
        table = "notice"
        ordering = ["-id"]


class NoticeBatch(Model):
    """A slice of the recipients of a notice: the unit of fan-out work, done once."""

    id = fields.IntField(primary_key=True)
    notice: fields.ForeignKeyRelation[Notice] = fields.ForeignKeyField(
        "models.Notice", related_name="batches", on_delete=fields.CASCADE)
    notice_id: int
    batch_no = fields.IntField()
    member_ids = fields.JSONField()
    size = fields.IntField()
    delivered_at = fields.DatetimeField(null=True)
    pushed_at = fields.DatetimeField(null=True)
    attempts = fields.IntField(default=0)
    enqueued_at = fields.DatetimeField(null=True, description="last hand-over to the queue")
    leased_until = fields.DatetimeField(null=True, description="a worker is pushing it until then")

    class Meta:
        table = "notice_batch"
        unique_together = (("notice", "batch_no"),)
        indexes = (("delivered_at", "pushed_at"),)


class InboxItem(Model):
    id = fields.BigIntField(primary_key=True)
    notice: fields.ForeignKeyRelation[Notice] = fields.ForeignKeyField(
        "models.Notice", related_name="inbox_items", on_delete=fields.CASCADE)
    notice_id: int
    member: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Member", related_name=False, on_delete=fields.CASCADE)
    member_id: int
    unit: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Unit", related_name=False, null=True, on_delete=fields.SET_NULL)
    unit_id: int | None
    delivered_at = fields.DatetimeField()
    read_at = fields.DatetimeField(null=True)
    acked_at = fields.DatetimeField(null=True)
    push_status = fields.CharEnumField(PushStatus, max_length=16, null=True)
    pushed_at = fields.DatetimeField(null=True)
    push_error = fields.IntField(null=True, description="the WeChat errcode of a failed push")
    reminded_at = fields.DatetimeField(null=True)

    class Meta:
        table = "inbox_item"
        unique_together = (("notice", "member_id"),)
        indexes = (("member_id", "notice_id"),)


class NoticeTally(Model):
    """What the inbox rows of an archived notice counted, per unit (null: recipients without one),
    so reach and acknowledgement figures outlive the rows."""

    id = fields.BigIntField(primary_key=True)
    notice: fields.ForeignKeyRelation[Notice] = fields.ForeignKeyField(
        "models.Notice", related_name=False, on_delete=fields.CASCADE)
    notice_id: int
    unit_id = fields.IntField(null=True)
    delivered = fields.IntField(default=0)
    read = fields.IntField(default=0)
    acked = fields.IntField(default=0)
    pushes = fields.JSONField(default=dict, description="push status (or pending) to a count")

    class Meta:
        table = "notice_tally"
        unique_together = (("notice_id", "unit_id"),)


class SubscriptionGrant(Model):
    """Subscribe-message grants a member gave in the mini-program: each push consumes one."""

    id = fields.IntField(primary_key=True)
    member: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Member", related_name=False, on_delete=fields.CASCADE)
    member_id: int
    template_id = fields.CharField(max_length=64)
    available = fields.IntField(default=0)
    accepted_total = fields.IntField(default=0)
    rejected_total = fields.IntField(default=0)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "subscription_grant"
        unique_together = (("member_id", "template_id"),)


class UnitReceipt(Model):
    """A unit admin signs for the unit (签收)."""

    id = fields.IntField(primary_key=True)
    notice: fields.ForeignKeyRelation[Notice] = fields.ForeignKeyField(
        "models.Notice", related_name="unit_receipts", on_delete=fields.CASCADE)
    notice_id: int
    unit: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Unit", related_name=False, on_delete=fields.CASCADE)
    unit_id: int
    signed_by: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Member", related_name=False, on_delete=fields.RESTRICT)
    signed_by_id: int
    signed_at = fields.DatetimeField()

    class Meta:
        table = "notice_unit_receipt"
        unique_together = (("notice", "unit_id"),)


class DeadlineList(Model):
    """At the deadline a unit admin gets the names of who has not acknowledged: once per unit."""

    id = fields.IntField(primary_key=True)
    notice: fields.ForeignKeyRelation[Notice] = fields.ForeignKeyField(
        "models.Notice", related_name="deadline_lists", on_delete=fields.CASCADE)
    notice_id: int
    unit: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Unit", related_name=False, on_delete=fields.CASCADE)
    unit_id: int
    member_ids = fields.JSONField()
    sent_at = fields.DatetimeField()

    class Meta:
        table = "notice_deadline_list"
        unique_together = (("notice", "unit_id"),)
