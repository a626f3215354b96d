"""Running the zones: the duty unit's quarterly work plan and its filing, the committee's regular
meeting with the current and next duty units, and the handover that closes a rotation."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class PlanState(StrEnum):
    DRAFT = "draft"          # the duty unit writes; member units of the zone comment (商讨)
    SUBMITTED = "submitted"  # with the committee
    FILED = "filed"          # 备案: accepted and on record
    RETURNED = "returned"    # back to the duty unit with the committee's comments


class WorkPlan(Model):
    """A rotation's work plan (工作计划). Its content lives in numbered versions, all kept."""

    id = fields.IntField(primary_key=True)
    rotation: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Rotation", related_name=False, on_delete=fields.CASCADE)
    rotation_id: int
    zone: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Zone", related_name=False, on_delete=fields.CASCADE)
    zone_id: int
    unit: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Unit", related_name=False, on_delete=fields.RESTRICT)
    unit_id: int
    state = fields.CharEnumField(PlanState, max_length=16, default=PlanState.DRAFT)
    version = fields.IntField(default=0, description="the latest version's number")
    submitted_version = fields.IntField(null=True)
    submitted_at = fields.DatetimeField(null=True)
    decided_at = fields.DatetimeField(null=True)
    decided_by: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Member", related_name=False, null=True, on_delete=fields.SET_NULL)
    decided_by_id: int | None
    decision_comment = fields.TextField(default="")
    filed_version = fields.IntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "work_plan"
        unique_together = (("rotation",),)


class WorkPlanVersion(Model):
    id = fields.IntField(primary_key=True)
    plan: fields.ForeignKeyRelation[WorkPlan] = fields.ForeignKeyField(
        "models.WorkPlan", related_name="versions", on_delete=fields.CASCADE)
    plan_id: int
    version = fields.IntField()
    goals = fields.TextField()
    items = fields.JSONField(default=list, description="planned activities: kind, title, date, note")
    budget_fen = fields.BigIntField(default=0)
    note = fields.TextField(default="")
    author: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Member", related_name=False, on_delete=fields.RESTRICT)
    author_id: int
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "work_plan_version"
        ordering = ["plan_id", "version"]
        unique_together = (("plan", "version"),)


class PlanEventKind(StrEnum):
    SUBMITTED = "submitted"
    FILED = "filed"
    RETURNED = "returned"
    COMMENTED = "commented"


class PlanEvent(Model):
    """What happened to a plan, in order: comments of the zone's units, submissions, decisions."""

    id = fields.IntField(primary_key=True)
    plan: fields.ForeignKeyRelation[WorkPlan] = fields.ForeignKeyField(
        "models.WorkPlan", related_name="events", on_delete=fields.CASCADE)
    plan_id: int
    kind = fields.CharEnumField(PlanEventKind, max_length=16)
    version = fields.IntField()
    unit: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Unit", related_name=False, null=True, on_delete=fields.RESTRICT)
    unit_id: int | None
    author: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Member", related_name=False, on_delete=fields.RESTRICT)
    author_id: int
    body = fields.TextField(default="")
    at = fields.DatetimeField()

    class Meta:
        table = "plan_event"
        ordering = ["plan_id", "id"]


class RotationWarning(Model):
    """A guideline warning sent for a rotation (e.g. fewer than two activities held three weeks
    before the quarter ends): recorded, so each kind is sent once."""

    id = fields.IntField(primary_key=True)
    rotation: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Rotation", related_name=False, on_delete=fields.CASCADE)
    rotation_id: int
    kind = fields.CharField(max_length=32)
    detail = fields.JSONField(default=dict)
    sent_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "rotation_warning"
        unique_together = (("rotation", "kind"),)


class MeetingState(StrEnum):
    SCHEDULED = "scheduled"
    HELD = "held"


class Meeting(Model):
    """The quarter's regular meeting (例会) of the committee with every zone's current and next
    duty unit."""

    id = fields.IntField(primary_key=True)
    year = fields.IntField()
    quarter = fields.SmallIntField(description="the quarter under review (the current duty units')")
    title = fields.CharField(max_length=128)
    place = fields.CharField(max_length=255, default="")
    starts_at = fields.DatetimeField()
    state = fields.CharEnumField(MeetingState, max_length=16, default=MeetingState.SCHEDULED)
    minutes = fields.TextField(default="")
    held_at = fields.DatetimeField(null=True)
    created_by: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Member", related_name=False, on_delete=fields.RESTRICT)
    created_by_id: int
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "meeting"
        ordering = ["-starts_at"]
        unique_together = (("year", "quarter"),)


class MeetingZone(Model):
    """One zone at a meeting: the current duty unit's report, the committee's comments (讲评)."""

    id = fields.IntField(primary_key=True)
    meeting: fields.ForeignKeyRelation[Meeting] = fields.ForeignKeyField(
        "models.Meeting", related_name="zones", on_delete=fields.CASCADE)
    meeting_id: int
    zone: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Zone", related_name=False, on_delete=fields.CASCADE)
    zone_id: int
    rotation: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Rotation", related_name=False, null=True, on_delete=fields.SET_NULL)
    rotation_id: int | None
    next_rotation: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Rotation", related_name=False, null=True, on_delete=fields.SET_NULL)
    next_rotation_id: int | None
    report = fields.TextField(default="")
    reported_at = fields.DatetimeField(null=True)
    reported_by: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Member", related_name=False, null=True, on_delete=fields.SET_NULL)
    reported_by_id: int | None
    comments = fields.TextField(default="")
    commented_at = fields.DatetimeField(null=True)
    commented_by: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Member", related_name=False, null=True, on_delete=fields.SET_NULL)
    commented_by_id: int | None

    class Meta:
        table = "meeting_zone"
        ordering = ["meeting_id", "zone_id"]
        unique_together = (("meeting", "zone"),)


class Deployment(Model):
    """A task the meeting deploys for the next quarter: it becomes a supervision item for the
    next duty units of its zones, in the same step."""

    id = fields.IntField(primary_key=True)
    meeting: fields.ForeignKeyRelation[Meeting] = fields.ForeignKeyField(
        "models.Meeting", related_name="deployments", on_delete=fields.CASCADE)
    meeting_id: int
    title = fields.CharField(max_length=128)
    detail = fields.TextField(default="")
    due_at = fields.DatetimeField()
    zone_ids = fields.JSONField(default=list)
    item: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.SupervisionItem", related_name=False, on_delete=fields.RESTRICT)
    item_id: int
    created_by: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Member", related_name=False, on_delete=fields.RESTRICT)
    created_by_id: int
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "meeting_deployment"
        ordering = ["meeting_id", "id"]


class Handover(Model):
    """交接: the outgoing rotation's report (prefilled from what was recorded in its quarter), the
    incoming unit's plan, each side's confirmation. Both confirmed: the rotation is closed."""

    id = fields.IntField(primary_key=True)
    rotation: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Rotation", related_name=False, on_delete=fields.CASCADE)
    rotation_id: int
    next_rotation: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Rotation", related_name=False, null=True, on_delete=fields.SET_NULL)
    next_rotation_id: int | None
    zone: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Zone", related_name=False, on_delete=fields.CASCADE)
    zone_id: int
    report = fields.JSONField(null=True, description="the quarter's record, frozen when the outgoing side confirms")
    outgoing_note = fields.TextField(default="")
    incoming_plan = fields.TextField(default="")
    outgoing_confirmed_at = fields.DatetimeField(null=True)
    outgoing_confirmed_by: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Member", related_name=False, null=True, on_delete=fields.SET_NULL)
    outgoing_confirmed_by_id: int | None
    incoming_confirmed_at = fields.DatetimeField(null=True)
    incoming_confirmed_by: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Member", related_name=False, null=True, on_delete=fields.SET_NULL)
    incoming_confirmed_by_id: int | None
    closed_at = fields.DatetimeField(null=True)
    flagged_at = fields.DatetimeField(null=True, description="still open after the boundary: liaisons told")
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "handover"
        unique_together = (("rotation",),)


class Rubric(Model):
    """The committee's weights for a year's evaluation (年终考核). A year without its own takes
    the latest earlier year's, or the defaults."""

    id = fields.IntField(primary_key=True)
    year = fields.IntField(unique=True)
    weights = fields.JSONField()
    updated_by: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Member", related_name=False, null=True, on_delete=fields.SET_NULL)
    updated_by_id: int | None
    updated_at = fields.DatetimeField()

    class Meta:
        table = "evaluation_rubric"


class Evaluation(Model):
    """A year's computed scores and ranks, with the rubric they were computed under. Kept per
    year, replaced when the rubric changes or the committee recomputes."""

    id = fields.IntField(primary_key=True)
    year = fields.IntField(unique=True)
    rubric = fields.JSONField()
    result = fields.JSONField()
    computed_at = fields.DatetimeField()
    computed_by: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Member", related_name=False, null=True, on_delete=fields.SET_NULL)
    computed_by_id: int | None

    class Meta:
        table = "evaluation"
