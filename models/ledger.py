"""Each zone's fund ledger (经费台账): income by source, expenses, the booked balance. Money is
integer fen. Booked lines are never edited or deleted: a correction is a reversing line."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from models.org import Zone


class Direction(StrEnum):
    INCOME = "income"
    EXPENSE = "expense"


class EntryCategory(StrEnum):
    DUTY_UNIT = "duty_unit"                  # income: paid by the duty unit
    MEMBER_UNIT = "member_unit"              # income: raised by a member unit
    COMMITTEE_SUBSIDY = "committee_subsidy"  # income: approved by the committee before booking
    CAMPAIGN = "campaign"                    # income: a closed zone_fund drive
    OTHER_INCOME = "other_income"
    VENUE_RENT = "venue_rent"                # expense
    MATERIALS = "materials"
    EVENT_COSTS = "event_costs"
    OTHER_EXPENSE = "other_expense"


class EntryStatus(StrEnum):
    PENDING = "pending"      # a subsidy waiting for the committee
    BOOKED = "booked"
    REJECTED = "rejected"


class FundEntry(Model):
    """One line of a zone fund ledger. Booked lines are never changed: a correction is a line
    with the opposite amount that names the line it reverses."""

    id = fields.IntField(primary_key=True)
    zone: fields.ForeignKeyRelation[Zone] = fields.ForeignKeyField(
        "models.Zone", related_name="fund_entries", on_delete=fields.RESTRICT)
    zone_id: int
    direction = fields.CharEnumField(Direction, max_length=8)
    category = fields.CharEnumField(EntryCategory, max_length=24)
    status = fields.CharEnumField(EntryStatus, max_length=8, default=EntryStatus.BOOKED)
    amount_fen = fields.BigIntField(description="negative only on a reversing line")
    unit: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Unit", related_name=False, null=True, on_delete=fields.RESTRICT, description="the paying unit of duty_unit and member_unit income")
    unit_id: int | None
    campaign: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Campaign", related_name=False, null=True, unique=True, on_delete=fields.RESTRICT)
    campaign_id: int | None
    description = fields.CharField(max_length=200)
    attachments = fields.JSONField(default=list)
    occurred_on = fields.DateField()
    idempotency_key = fields.CharField(max_length=64, null=True)
    recorded_by: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Member", related_name=False, on_delete=fields.RESTRICT)
    recorded_by_id: int
    decided_by: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Member", related_name=False, null=True, on_delete=fields.RESTRICT)
    decided_by_id: int | None
    decided_at = fields.DatetimeField(null=True)
    decision_note = fields.CharField(max_length=200, default="")
    reverses: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.FundEntry", related_name=False, null=True, unique=True, on_delete=fields.RESTRICT)
    reverses_id: int | None
    booked_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "fund_entry"
        ordering = ["id"]
        unique_together = (("zone_id", "idempotency_key"),)
        indexes = (("zone_id", "status", "booked_at"),)
