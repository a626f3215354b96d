"""The audit log: who changed what (money, roles and accounts, rotations, supervision decisions),
written in the transaction that makes the change, so a change and its record stand or fall
together."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class AuditEntry(Model):
    id = fields.BigIntField(primary_key=True)
    at = fields.DatetimeField()
    actor: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Member", related_name=False, null=True, on_delete=fields.SET_NULL,
        description="who did it (null: zonehub itself, a job)")
    actor_id: int | None
    action = fields.CharField(max_length=64, description="e.g. refund.requested, member.role_changed")
    target_type = fields.CharField(max_length=32)
    target_id = fields.BigIntField(null=True)
    zone_id = fields.IntField(null=True, description="the zone it concerns, for scoping")
    address = fields.CharField(max_length=45, null=True,
                               description="the client address of the request that made it (null: a job)")
    detail = fields.JSONField(default=dict, description="what changed: amounts, before and after")

    class Meta:
        table = "audit_entry"
        ordering = ["-id"]
        indexes = (("target_type", "target_id"), ("actor_id", "id"), ("zone_id", "id"))
