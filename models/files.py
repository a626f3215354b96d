"""Attachments: files stored by content (services/storage.py), who uploaded each, and what each
is attached to. A file is served only to whoever may see something it is attached to (or who
uploaded it)."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Upload(Model):
    """One person's upload of a stored file (the same bytes uploaded twice are one file, two rows)."""

    id = fields.IntField(primary_key=True)
    key = fields.CharField(max_length=64, description="SHA-256 of the content: the stored file")
    name = fields.CharField(max_length=128)
    content_type = fields.CharField(max_length=127)
    size = fields.BigIntField()
    uploaded_by: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Member", related_name="uploads", on_delete=fields.CASCADE)
    uploaded_by_id: int
    unit: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Unit", related_name=False, null=True, on_delete=fields.SET_NULL, description="the uploader's unit then: its admins may cite it")
    unit_id: int | None
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "upload"
        unique_together = (("key", "uploaded_by"),)
        indexes = (("key",),)


class AttachmentRef(Model):
    """A stored file attached to something: a notice, a ledger line, a supervision item or
    report, an activity's minutes or photos."""

    id = fields.IntField(primary_key=True)
    key = fields.CharField(max_length=64)
    ref_type = fields.CharField(max_length=32)
    ref_id = fields.IntField()

    class Meta:
        table = "attachment_ref"
        unique_together = (("key", "ref_type", "ref_id"),)
        indexes = (("key",),)
