"""Activity records (活动记录): the minutes and photos an organiser attaches to an activity after
it happened, the evidence the ledger links."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class ActivityRecord(Model):
    """One activity's record: its minutes (纪要) and photos, rewritten in place by its organiser."""

    id = fields.IntField(primary_key=True)
    activity: fields.OneToOneRelation = fields.OneToOneField(
        "models.Activity", related_name=False, on_delete=fields.CASCADE)
    activity_id: int
    minutes = fields.TextField(default="")
    photos = fields.JSONField(default=list, description="stored images, each in the attachment shape")
    recorded_by: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Member", related_name=False, null=True, on_delete=fields.SET_NULL)
    recorded_by_id: int | None
    recorded_unit: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Unit", related_name=False, null=True, on_delete=fields.SET_NULL,
        description="the unit that recorded it (null: committee staff)")
    recorded_unit_id: int | None
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "activity_record"
