"""Supervision items (督办): an item assigned to units, one assignment per unit with its own state,
the unit reports, the committee reviews, the duty unit urges, and an escalation ladder that fires
each step once (the unique escalation row decides)."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class AssignmentState(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    RETURNED = "returned"


class Step(StrEnum):
    """The escalation ladder, in the order its steps fire."""

    REMIND = "remind"          # before the due time: the unit admins
    OVERDUE = "overdue"        # at the due time: the unit admins and the duty unit
    LIAISON = "liaison"        # later: the liaisons of the zone
    COMMITTEE = "committee"    # later still: the committee


class SupervisionItem(Model):
    """A task the committee assigned to units, with a due time and its escalation ladder."""

    id = fields.IntField(primary_key=True)
    title = fields.CharField(max_length=128)
    detail = fields.TextField(default="")
    attachments = fields.JSONField(default=list, description="references: name, url, size, content_type")
    due_at = fields.DatetimeField()
    ladder = fields.JSONField(description="hours of each step, the defaults merged with the overrides")
    target = fields.JSONField(default=dict, description="the unit_ids and zone_ids as asked")
    created_by: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Member", related_name="supervision_items", on_delete=fields.RESTRICT)
    created_by_id: int
    created_at = fields.DatetimeField()

    class Meta:
        table = "supervision_item"
        ordering = ["-id"]


class Assignment(Model):
    """One unit answering one item, with its state and the ladder step due next (null when stopped)."""

    id = fields.IntField(primary_key=True)
    item: fields.ForeignKeyRelation[SupervisionItem] = fields.ForeignKeyField(
        "models.SupervisionItem", related_name="assignments", on_delete=fields.CASCADE)
    item_id: int
    unit: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Unit", related_name="supervision_assignments", on_delete=fields.RESTRICT)
    unit_id: int
    zone: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Zone", related_name=False, null=True, on_delete=fields.RESTRICT, description="the zone of the unit when the item was assigned")
    zone_id: int | None
    state = fields.CharEnumField(AssignmentState, max_length=16, default=AssignmentState.OPEN)
    assigned_at = fields.DatetimeField()
    submitted_at = fields.DatetimeField(null=True)
    accepted_at = fields.DatetimeField(null=True)
    on_time = fields.BooleanField(null=True, description="set on acceptance: submitted by the due time")
    accept_s = fields.IntField(null=True, description="set on acceptance: seconds from assignment")
    overdue_at = fields.DatetimeField(null=True, description="when the overdue step fired")
    escalation_level = fields.SmallIntField(default=0, description="steps fired, 0 to 4")
    next_step = fields.CharEnumField(Step, max_length=16, null=True)
    next_step_at = fields.DatetimeField(null=True)
    last_urged_at = fields.DatetimeField(null=True)
    urge_count = fields.IntField(default=0)

    class Meta:
        table = "supervision_assignment"
        unique_together = (("item", "unit"),)
        indexes = (("next_step_at",), ("unit_id", "item_id"), ("zone_id", "item_id"))


class ProgressReport(Model):
    """A unit admin reporting progress, or submitting when done."""

    id = fields.IntField(primary_key=True)
    assignment: fields.ForeignKeyRelation[Assignment] = fields.ForeignKeyField(
        "models.Assignment", related_name="reports", on_delete=fields.CASCADE)
    assignment_id: int
    by: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Member", related_name="supervision_reports", on_delete=fields.RESTRICT)
    by_id: int
    note = fields.TextField(default="")
    attachments = fields.JSONField(default=list)
    done = fields.BooleanField(default=False)
    at = fields.DatetimeField()

    class Meta:
        table = "supervision_report"
        ordering = ["at", "id"]


class Review(Model):
    """The committee accepting a submission or returning it with a comment."""

    id = fields.IntField(primary_key=True)
    assignment: fields.ForeignKeyRelation[Assignment] = fields.ForeignKeyField(
        "models.Assignment", related_name="reviews", on_delete=fields.CASCADE)
    assignment_id: int
    by: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Member", related_name="supervision_reviews", on_delete=fields.RESTRICT)
    by_id: int
    accept = fields.BooleanField()
    comment = fields.TextField(default="")
    at = fields.DatetimeField()

    class Meta:
        table = "supervision_review"
        ordering = ["at", "id"]


class Urge(Model):
    """An urge (催办) sent to the admins of an assigned unit, by the committee or the duty unit."""

    id = fields.IntField(primary_key=True)
    assignment: fields.ForeignKeyRelation[Assignment] = fields.ForeignKeyField(
        "models.Assignment", related_name="urges", on_delete=fields.CASCADE)
    assignment_id: int
    by: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Member", related_name="supervision_urges", on_delete=fields.RESTRICT)
    by_id: int
    by_unit: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Unit", related_name=False, null=True, on_delete=fields.SET_NULL, description="the duty unit that urged, null for the committee")
    by_unit_id: int | None
    note = fields.TextField(default="")
    at = fields.DatetimeField()

    class Meta:
        table = "supervision_urge"
        ordering = ["at", "id"]


class EscalationEvent(Model):
    """A ladder step that fired, once per assignment and step (the worker that inserts it fires)."""

    id = fields.IntField(primary_key=True)
    assignment: fields.ForeignKeyRelation[Assignment] = fields.ForeignKeyField(
        "models.Assignment", related_name="escalations", on_delete=fields.CASCADE)
    assignment_id: int
    step = fields.CharEnumField(Step, max_length=16)
    due_at = fields.DatetimeField(description="when the step was scheduled")
    fired_at = fields.DatetimeField()
    claim = fields.CharField(max_length=16, description="the scan batch that fired it")

    class Meta:
        table = "supervision_escalation"
        ordering = ["fired_at", "id"]
        unique_together = (("assignment", "step"),)
