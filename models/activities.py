"""Activities, sign-ups, check-ins, contests and the once-only compliance warnings."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class ActivityKind(StrEnum):
    PARTY_LESSON = "party_lesson"
    PARTY_ACTIVITY = "party_activity"
    HANDOVER_MEETING = "handover_meeting"
    REGULAR_MEETING = "regular_meeting"
    CONTEST = "contest"
    CULTURE_SPORTS = "culture_sports"
    VOLUNTEER = "volunteer"
    OTHER = "other"


class ActivityStatus(StrEnum):
    ACTIVE = "active"
    CANCELLED = "cancelled"


class SignupStatus(StrEnum):
    CONFIRMED = "confirmed"
    WAITLISTED = "waitlisted"
    CANCELLED = "cancelled"


class CheckinMethod(StrEnum):
    VENUE_CODE = "venue_code"
    PASS_SCAN = "pass_scan"


class Activity(Model):
    id = fields.IntField(primary_key=True)
    zone: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Zone", related_name="activities", null=True, on_delete=fields.RESTRICT,
        description="null: a city-wide activity of the committee")
    zone_id: int | None
    organiser_unit: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Unit", related_name="organised_activities", null=True, on_delete=fields.RESTRICT)
    organiser_unit_id: int | None
    rotation: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Rotation", related_name="activities", null=True, on_delete=fields.SET_NULL)
    rotation_id: int | None
    created_by: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Member", related_name="created_activities", on_delete=fields.RESTRICT)
    created_by_id: int
    kind = fields.CharEnumField(ActivityKind, max_length=24)
    title = fields.CharField(max_length=128)
    description = fields.TextField(default="")
    place = fields.CharField(max_length=255, default="")
    lat = fields.FloatField(null=True)
    lng = fields.FloatField(null=True)
    radius_m = fields.IntField(null=True)
    starts_at = fields.DatetimeField()
    ends_at = fields.DatetimeField()
    capacity = fields.IntField(null=True, description="null = unlimited")
    unit_quota = fields.IntField(null=True, description="confirmed seats per unit, null = no quota")
    signup_opens_at = fields.DatetimeField()
    signup_closes_at = fields.DatetimeField()
    checkin_opens_at = fields.DatetimeField()
    checkin_closes_at = fields.DatetimeField()
    walk_ins = fields.BooleanField(default=False)
    waitlist = fields.BooleanField(default=True, description="queue members when full")
    audience = fields.JSONField(default=dict)
    status = fields.CharEnumField(ActivityStatus, max_length=16, default=ActivityStatus.ACTIVE)
    confirmed = fields.IntField(default=0)
    waitlisted = fields.IntField(default=0)
    checked_in = fields.IntField(default=0)
    queue_seq = fields.IntField(default=0, description="the last waitlist number given (Signup.queue_seq)")
    checkin_secret = fields.CharField(max_length=64)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    cancelled_at = fields.DatetimeField(null=True)
    reminded_at = fields.DatetimeField(null=True, description="the day-before reminder went out")

    class Meta:
        table = "activity"
        ordering = ["starts_at", "id"]
        indexes = (("zone_id", "starts_at"), ("rotation_id", "kind"))


class UnitSeats(Model):
    """Confirmed seats per unit of an activity with a unit quota (claimed by conditional UPDATE)."""

    id = fields.IntField(primary_key=True)
    activity: fields.ForeignKeyRelation[Activity] = fields.ForeignKeyField(
        "models.Activity", related_name="unit_seats", on_delete=fields.CASCADE)
    activity_id: int
    unit: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Unit", related_name="activity_seats", on_delete=fields.CASCADE)
    unit_id: int
    confirmed = fields.IntField(default=0)

    class Meta:
        table = "activity_unit_seats"
        unique_together = (("activity", "unit"),)


class Signup(Model):
    id = fields.IntField(primary_key=True)
    activity: fields.ForeignKeyRelation[Activity] = fields.ForeignKeyField(
        "models.Activity", related_name="signups", on_delete=fields.CASCADE)
    activity_id: int
    member: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Member", related_name="signups", on_delete=fields.CASCADE)
    member_id: int
    unit: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Unit", related_name="signups", null=True, on_delete=fields.SET_NULL)
    unit_id: int | None
    status = fields.CharEnumField(SignupStatus, max_length=16)
    queued_at = fields.DatetimeField(description="first come, first served order")
    confirmed_at = fields.DatetimeField(null=True)
    cancelled_at = fields.DatetimeField(null=True)
    queue_seq = fields.IntField(null=True, description="waitlist order, numbered by the activity's counter when queued")
    signed_up_by: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Member", related_name=False, null=True, on_delete=fields.SET_NULL, description="a unit admin who signed up the member")
    signed_up_by_id: int | None
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "signup"
        unique_together = (("activity", "member"),)
        indexes = (("activity_id", "status", "queued_at"), ("activity_id", "status", "queue_seq"))


class Checkin(Model):
    id = fields.IntField(primary_key=True)
    activity: fields.ForeignKeyRelation[Activity] = fields.ForeignKeyField(
        "models.Activity", related_name="checkins", on_delete=fields.CASCADE)
    activity_id: int
    member: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Member", related_name="checkins", on_delete=fields.CASCADE)
    member_id: int
    unit: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Unit", related_name=False, null=True, on_delete=fields.SET_NULL)
    unit_id: int | None
    method = fields.CharEnumField(CheckinMethod, max_length=16)
    walk_in = fields.BooleanField(default=False)
    checked_in_at = fields.DatetimeField()
    scanned_by: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Member", related_name=False, null=True, on_delete=fields.SET_NULL)
    scanned_by_id: int | None
    nonce = fields.CharField(max_length=64, null=True)
    lat = fields.FloatField(null=True)
    lng = fields.FloatField(null=True)

    class Meta:
        table = "checkin"
        unique_together = (("activity", "member"),)


class ScanNonce(Model):
    """Client nonces of offline pass scans already processed, so a retried upload counts once."""

    id = fields.IntField(primary_key=True)
    activity: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Activity", related_name=False, on_delete=fields.CASCADE)
    activity_id: int
    nonce = fields.CharField(max_length=64)
    outcome = fields.CharField(max_length=32)
    member: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Member", related_name=False, null=True, on_delete=fields.SET_NULL)
    member_id: int | None
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "scan_nonce"
        unique_together = (("activity_id", "nonce"),)


class ComplianceWarning(Model):
    """A three-ones warning sent for a rotation: recorded, so it is sent once."""

    id = fields.IntField(primary_key=True)
    rotation: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Rotation", related_name="compliance_warnings", on_delete=fields.CASCADE)
    rotation_id: int
    missing = fields.JSONField()
    sent_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "compliance_warning"
        unique_together = (("rotation",),)


class ContestRoundKind(StrEnum):
    PRELIMINARY = "preliminary"
    FINAL = "final"


class ContestEntry(Model):
    """An entry of a contest activity (kind contest): by a member or by a unit."""

    id = fields.IntField(primary_key=True)
    contest: fields.ForeignKeyRelation[Activity] = fields.ForeignKeyField(
        "models.Activity", related_name="entries", on_delete=fields.CASCADE)
    contest_id: int
    zone: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Zone", related_name=False, on_delete=fields.RESTRICT)
    zone_id: int
    unit: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Unit", related_name=False, on_delete=fields.RESTRICT)
    unit_id: int
    member: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Member", related_name=False, null=True, on_delete=fields.SET_NULL)
    member_id: int | None
    title = fields.CharField(max_length=128)
    preliminary_score = fields.DecimalField(max_digits=8, decimal_places=2, null=True)
    preliminary_rank = fields.IntField(null=True)
    advanced = fields.BooleanField(default=False)
    final_score = fields.DecimalField(max_digits=8, decimal_places=2, null=True)
    final_rank = fields.IntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "contest_entry"
        indexes = (("contest_id", "zone_id"),)


class ContestRound(Model):
    """The closing of a round: a zone preliminary (advancing its top N) or the final."""

    id = fields.IntField(primary_key=True)
    contest: fields.ForeignKeyRelation[Activity] = fields.ForeignKeyField(
        "models.Activity", related_name="rounds", on_delete=fields.CASCADE)
    contest_id: int
    kind = fields.CharEnumField(ContestRoundKind, max_length=16)
    zone_id = fields.IntField(null=True)
    advance_top = fields.IntField(null=True)
    closed_by: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Member", related_name=False, on_delete=fields.RESTRICT)
    closed_by_id: int
    closed_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "contest_round"
        unique_together = (("contest", "kind", "zone_id"),)
