"""The organisation: zones, units, members (people, including committee staff), liaisons, rotations."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class Role(StrEnum):
    MEMBER = "member"
    UNIT_ADMIN = "unit_admin"
    COMMITTEE = "committee"  # committee staff: city-wide powers
    LIAISON = "liaison"      # staff assigned to zones (挂点): committee powers in those zones only


class Position(StrEnum):
    """A member's post in their unit's party organisation."""

    SECRETARY = "secretary"                 # 书记
    DEPUTY_SECRETARY = "deputy_secretary"   # 副书记
    COMMITTEE_MEMBER = "committee_member"   # 委员
    MEMBER = "member"


LEADERS = (Position.SECRETARY, Position.DEPUTY_SECRETARY, Position.COMMITTEE_MEMBER)


class Zone(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=64, unique=True)
    description = fields.TextField(default="")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "zone"
        ordering = ["id"]


class Unit(Model):
    """The party organisation of a directly affiliated unit (直属单位党组织)."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=128, unique=True)
    zone: fields.ForeignKeyNullableRelation[Zone] = fields.ForeignKeyField(
        "models.Zone", related_name="units", null=True, on_delete=fields.SET_NULL
    )
    zone_id: int | None
    district = fields.CharField(max_length=64, default="")
    nature = fields.CharField(max_length=64, default="", description="nature of work")
    member_count = fields.IntField(default=0)
    strength = fields.IntField(default=50, description="party-building strength score 0..100")
    invite_code = fields.CharField(max_length=32, unique=True)
    duty_order = fields.IntField(null=True, description="position in the duty order of its zone")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "unit"
        ordering = ["id"]


class Member(Model):
    """A person: a party member of a unit, a unit admin, or committee staff (unit null)."""

    id = fields.IntField(primary_key=True)
    unit: fields.ForeignKeyNullableRelation[Unit] = fields.ForeignKeyField(
        "models.Unit", related_name="members", null=True, on_delete=fields.RESTRICT
    )
    unit_id: int | None
    name = fields.CharField(max_length=64)
    phone = fields.CharField(max_length=20)
    role = fields.CharEnumField(Role, max_length=16, default=Role.MEMBER)
    position = fields.CharEnumField(Position, max_length=24, default=Position.MEMBER,
                                    description="post in the unit: 书记, 副书记, 委员 or member")
    openid = fields.CharField(max_length=64, null=True, unique=True)
    username = fields.CharField(max_length=64, null=True, unique=True)
    password_hash = fields.CharField(max_length=255, null=True)
    token_version = fields.IntField(default=0)
    is_active = fields.BooleanField(default=True)
    erased_at = fields.DatetimeField(null=True, description="personal fields erased on request (PIPL)")
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "member"
        ordering = ["id"]
        unique_together = (("unit", "phone"),)


class Liaison(Model):
    """Committee staff assigned to a zone (挂点)."""

    id = fields.IntField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "models.Member", related_name="liaisons", on_delete=fields.CASCADE
    )
    member_id: int
    zone: fields.ForeignKeyRelation[Zone] = fields.ForeignKeyField(
        "models.Zone", related_name="liaisons", on_delete=fields.CASCADE
    )
    zone_id: int

    class Meta:
        table = "liaison"
        unique_together = (("member", "zone"),)


class Rotation(Model):
    """A unit on duty in a zone over [starts_at, ends_at) — normally one Asia/Shanghai quarter."""

    id = fields.IntField(primary_key=True)
    zone: fields.ForeignKeyRelation[Zone] = fields.ForeignKeyField(
        "models.Zone", related_name="rotations", on_delete=fields.CASCADE
    )
    zone_id: int
    unit: fields.ForeignKeyRelation[Unit] = fields.ForeignKeyField(
        "models.Unit", related_name="rotations", on_delete=fields.RESTRICT
    )
    unit_id: int
    year = fields.IntField()
    quarter = fields.SmallIntField()
    starts_at = fields.DatetimeField()
    ends_at = fields.DatetimeField()
    told_at = fields.DatetimeField(null=True, description="its unit was told it is on duty next")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "rotation"
        ordering = ["zone_id", "starts_at"]
        unique_together = (("zone", "starts_at"),)
        indexes = (("zone_id", "ends_at"),)


class RotationPlan(Model):
    """A year's rotations as generated ahead of time, for the committee to confirm or reorder."""

    id = fields.IntField(primary_key=True)
    year = fields.IntField(unique=True)
    generated_at = fields.DatetimeField()
    confirmed_at = fields.DatetimeField(null=True)
    confirmed_by: fields.ForeignKeyNullableRelation[Member] = fields.ForeignKeyField(
        "models.Member", related_name="confirmed_rotation_plans", null=True, on_delete=fields.SET_NULL)
    confirmed_by_id: int | None

    class Meta:
        table = "rotation_plan"
        ordering = ["year"]


class RotationChange(Model):
    """History of explicit committee changes of the duty unit mid-quarter."""

    id = fields.IntField(primary_key=True)
    zone: fields.ForeignKeyRelation[Zone] = fields.ForeignKeyField(
        "models.Zone", related_name="rotation_changes", on_delete=fields.CASCADE
    )
    zone_id: int
    from_unit: fields.ForeignKeyRelation[Unit] = fields.ForeignKeyField(
        "models.Unit", related_name="rotation_changes_from", on_delete=fields.RESTRICT
    )
    from_unit_id: int
    to_unit: fields.ForeignKeyRelation[Unit] = fields.ForeignKeyField(
        "models.Unit", related_name="rotation_changes_to", on_delete=fields.RESTRICT
    )
    to_unit_id: int
    effective_at = fields.DatetimeField()
    reason = fields.TextField()
    changed_by: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "models.Member", related_name="rotation_changes", on_delete=fields.RESTRICT
    )
    changed_by_id: int
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "rotation_change"
        ordering = ["id"]


class ImportRun(Model):
    """One accepted org import: what file, what it changed."""

    id = fields.IntField(primary_key=True)
    kind = fields.CharField(max_length=16)
    filename = fields.CharField(max_length=255)
    sha256 = fields.CharField(max_length=64)
    rows = fields.IntField()
    created = fields.IntField()
    updated = fields.IntField()
    unchanged = fields.IntField()
    by: fields.ForeignKeyNullableRelation[Member] = fields.ForeignKeyField(
        "models.Member", related_name="import_runs", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "import_run"
        ordering = ["id"]
