"""Funds: contribution drives paid through WeChat Pay or recorded offline, their running totals
and refunds (each zone's fund ledger: models/ledger.py). Money is integer fen everywhere. Nothing
here is edited or deleted once it counts: a correction is a reversing row."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class CampaignKind(StrEnum):
    SPECIAL_DUES = "special_dues"   # special party dues, remitted upwards
    DONATION = "donation"
    ZONE_FUND = "zone_fund"         # proceeds booked into one zone fund when the drive closes


class CampaignState(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    CLOSED = "closed"


class Channel(StrEnum):
    WECHAT = "wechat"
    CASH = "cash"
    BANK_TRANSFER = "bank_transfer"


class ContributionStatus(StrEnum):
    PENDING = "pending"      # order created, not paid (yet)
    PAID = "paid"            # counted (offline entries and their reversals are born paid)
    CLOSED = "closed"        # never paid; closed at WeChat Pay
    FLAGGED = "flagged"      # WeChat Pay said paid but app id, merchant id or amount disagree
    REFUNDED = "refunded"    # paid, then refunded in full


class RefundStatus(StrEnum):
    PROCESSING = "processing"
    SUCCESS = "success"
    CLOSED = "closed"
    ABNORMAL = "abnormal"
    FAILED = "failed"        # WeChat Pay refused the request


class Campaign(Model):
    id = fields.IntField(primary_key=True)
    kind = fields.CharEnumField(CampaignKind, max_length=16)
    state = fields.CharEnumField(CampaignState, max_length=8, default=CampaignState.DRAFT)
    title = fields.CharField(max_length=128)
    description = fields.TextField(default="")
    target_fen = fields.BigIntField(null=True)
    zone_ids = fields.JSONField(default=list, description="audience zones, empty for the whole city")
    fund_zone: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Zone", related_name=False, null=True, on_delete=fields.RESTRICT, description="zone_fund drives: the zone whose ledger gets the money")
    fund_zone_id: int | None
    min_amount_fen = fields.BigIntField(default=1)
    max_amount_fen = fields.BigIntField(default=10_000_000)
    starts_at = fields.DatetimeField(null=True)
    ends_at = fields.DatetimeField()
    created_by: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Member", related_name=False, on_delete=fields.RESTRICT)
    created_by_id: int
    created_at = fields.DatetimeField(auto_now_add=True)
    opened_at = fields.DatetimeField(null=True)
    closed_at = fields.DatetimeField(null=True)
    settled_at = fields.DatetimeField(null=True, description="zone_fund drives: booked into the ledger (or nothing to book)")

    class Meta:
        table = "campaign"
        ordering = ["-id"]


class Contribution(Model):
    """One order paid through WeChat Pay, or one offline entry recorded by a unit admin."""

    id = fields.IntField(primary_key=True)
    campaign: fields.ForeignKeyRelation[Campaign] = fields.ForeignKeyField(
        "models.Campaign", related_name="contributions", on_delete=fields.RESTRICT)
    campaign_id: int
    member: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Member", related_name=False, null=True, on_delete=fields.RESTRICT, description="the payer, when a member")
    member_id: int | None
    unit: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Unit", related_name=False, on_delete=fields.RESTRICT)
    unit_id: int
    zone: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Zone", related_name=False, null=True, on_delete=fields.RESTRICT, description="the unit zone when the contribution was made")
    zone_id: int | None
    channel = fields.CharEnumField(Channel, max_length=16)
    status = fields.CharEnumField(ContributionStatus, max_length=16)
    amount_fen = fields.BigIntField(description="negative only on a reversing entry")
    idempotency_key = fields.CharField(max_length=64, null=True)
    out_trade_no = fields.CharField(max_length=32, null=True, unique=True)
    openid = fields.CharField(max_length=64, null=True)
    prepay_id = fields.CharField(max_length=64, null=True)
    transaction_id = fields.CharField(max_length=32, null=True, unique=True)
    paid_at = fields.DatetimeField(null=True)
    closed_at = fields.DatetimeField(null=True)
    next_check_at = fields.DatetimeField(null=True, description="pending orders: next query at WeChat Pay")
    checks = fields.IntField(default=0)
    refunded_fen = fields.BigIntField(default=0)
    refund_reserved_fen = fields.BigIntField(default=0, description="refunds requested, not yet ended")
    flag_reason = fields.CharField(max_length=32, default="")
    flag_detail = fields.JSONField(null=True)
    payer_name = fields.CharField(max_length=64, default="")
    receipt_no = fields.CharField(max_length=64, null=True)
    received_on = fields.DateField(null=True)
    note = fields.TextField(default="")
    recorded_by: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Member", related_name=False, null=True, on_delete=fields.RESTRICT)
    recorded_by_id: int | None
    reverses: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Contribution", related_name=False, null=True, unique=True, on_delete=fields.RESTRICT, description="the entry this one reverses")
    reverses_id: int | None
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "contribution"
        ordering = ["-id"]
        unique_together = (("member_id", "idempotency_key"), ("campaign_id", "unit_id", "receipt_no"))
        indexes = (("campaign_id", "status"), ("member_id", "status"), ("status", "next_check_at"))


class CampaignTotal(Model):
    """Running totals of one unit in one drive, moved in the transaction that moves the money."""

    id = fields.IntField(primary_key=True)
    campaign: fields.ForeignKeyRelation[Campaign] = fields.ForeignKeyField(
        "models.Campaign", related_name="totals", on_delete=fields.CASCADE)
    campaign_id: int
    unit: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Unit", related_name=False, on_delete=fields.RESTRICT)
    unit_id: int
    zone: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Zone", related_name=False, null=True, on_delete=fields.RESTRICT)
    zone_id: int | None
    online_fen = fields.BigIntField(default=0)
    online_count = fields.IntField(default=0)
    offline_fen = fields.BigIntField(default=0)
    offline_count = fields.IntField(default=0)
    refunded_fen = fields.BigIntField(default=0)
    refund_count = fields.IntField(default=0)

    class Meta:
        table = "campaign_total"
        unique_together = (("campaign_id", "unit_id"),)


class Refund(Model):
    id = fields.IntField(primary_key=True)
    contribution: fields.ForeignKeyRelation[Contribution] = fields.ForeignKeyField(
        "models.Contribution", related_name="refunds", on_delete=fields.RESTRICT)
    contribution_id: int
    out_refund_no = fields.CharField(max_length=64, unique=True)
    refund_id = fields.CharField(max_length=32, null=True, unique=True)
    amount_fen = fields.BigIntField()
    reason = fields.CharField(max_length=80, default="")
    status = fields.CharEnumField(RefundStatus, max_length=16, default=RefundStatus.PROCESSING)
    idempotency_key = fields.CharField(max_length=64, null=True)
    requested_by: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Member", related_name=False, on_delete=fields.RESTRICT)
    requested_by_id: int
    next_check_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    ended_at = fields.DatetimeField(null=True)

    class Meta:
        table = "refund"
        ordering = ["-id"]
        unique_together = (("contribution_id", "idempotency_key"),)
        indexes = (("status", "next_check_at"),)
