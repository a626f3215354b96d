"""Re-forming the zones (调整网络区): a proposed partition of all units into zones, kept with its
measures, and once applied the quarter from which it holds."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class ProposalStatus(StrEnum):
    PENDING = "pending"  # proposed, not applied
    APPLIED = "applied"  # rotations regenerated from `starts_at`, units move at that boundary


class PartitionProposal(Model):
    """A partition the solver proposed (services/partition.py), and its application."""

    id = fields.IntField(primary_key=True)
    status = fields.CharEnumField(ProposalStatus, max_length=16, default=ProposalStatus.PENDING)
    seed = fields.BigIntField()
    zone_count = fields.IntField()
    assignment = fields.JSONField(description="unit id to zone index 0..zone_count-1")
    zone_ids = fields.JSONField(
        description="per zone index the existing zone it takes over, null for a new zone")
    basis = fields.JSONField(
        description="the partition it was computed from, unit id to zone id (stale when it differs)")
    measures = fields.JSONField(
        description="measures and objective of today, a random partition and the proposal")
    steps = fields.BigIntField(default=0)
    elapsed_ms = fields.IntField(default=0)
    out_of_time = fields.BooleanField(default=False)
    created_by: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Member", related_name=False, null=True, on_delete=fields.SET_NULL,
        description="null: proposed from the command line")
    created_by_id: int | None
    created_at = fields.DatetimeField(auto_now_add=True)
    from_quarter = fields.CharField(max_length=6, null=True, description="applied from, e.g. 2027Q1")
    starts_at = fields.DatetimeField(null=True, description="the first instant of from_quarter")
    duty_orders = fields.JSONField(
        null=True, description="zone id to its unit ids in the new duty order, set when applied")
    applied_at = fields.DatetimeField(null=True)
    applied_by: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Member", related_name=False, null=True, on_delete=fields.SET_NULL)
    applied_by_id: int | None
    moved_at = fields.DatetimeField(null=True, description="when its units moved to their new zones")

    class Meta:
        table = "partition_proposal"
        ordering = ["-id"]
        indexes = (("status", "moved_at"),)
