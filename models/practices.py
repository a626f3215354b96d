"""Good practice (经验交流): experiences a unit publishes, the committee's featuring of one (sent to
every zone as a notice), and who has read each (once per member)."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Practice(Model):
    """An experience a unit published: title, text and images."""

    id = fields.IntField(primary_key=True)
    unit: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Unit", related_name=False, on_delete=fields.RESTRICT)
    unit_id: int
    zone: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Zone", related_name=False, null=True, on_delete=fields.SET_NULL,
        description="the unit's zone when it was published")
    zone_id: int | None
    year = fields.IntField(description="the year it was published (Asia/Shanghai)")
    title = fields.CharField(max_length=128)
    body = fields.TextField()
    images = fields.JSONField(default=list, description="stored images, each in the attachment shape")
    author: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Member", related_name=False, null=True, on_delete=fields.SET_NULL)
    author_id: int | None
    published_at = fields.DatetimeField()
    featured_at = fields.DatetimeField(null=True, description="set once, by the committee")
    featured_by: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Member", related_name=False, null=True, on_delete=fields.SET_NULL)
    featured_by_id: int | None
    notice: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Notice", related_name=False, null=True, on_delete=fields.SET_NULL,
        description="the notice that took it to every zone")
    notice_id: int | None

    class Meta:
        table = "practice"
        indexes = (("year", "unit_id"), ("zone_id", "id"))


class PracticeRead(Model):
    """A member read a practice: one row per member, however often they open it."""

    id = fields.IntField(primary_key=True)
    practice: fields.ForeignKeyRelation[Practice] = fields.ForeignKeyField(
        "models.Practice", related_name="reads", on_delete=fields.CASCADE)
    practice_id: int
    member: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Member", related_name=False, on_delete=fields.CASCADE)
    member_id: int
    read_at = fields.DatetimeField()

    class Meta:
        table = "practice_read"
        unique_together = (("practice", "member"),)
