"""Routes: re-partitioning the zones (调整网络区) — propose, read, apply from a future quarter."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.routing import Access, Router, path_int
from server.schemas.zoning import ApplyIn, PartitionOut, PartitionsOut, ProposeIn
from services import zoning as svc
from services.auth import Principal
from services.errors import YearOutOfRange
from services.partition import PartitionInfeasible

router = Router()
TAGS = ["partitions"]
ONE = r"/partitions/{partition_id:\d{1,9}}"


@router.route("POST", "/partitions", access=Access.COMMITTEE, body=ProposeIn,
              response=PartitionOut, status=201, tags=TAGS,
              errors=[PartitionInfeasible, svc.SolverUnavailable],
              summary="Propose a partition of all units into zones of 8-10 (kept, not applied)")
async def propose(request: web.Request, *, principal: Principal, body: ProposeIn) -> Any:
    """Balances members and strength across zones, mixes natures of work, keeps districts
    together where it can and pairs units that never shared a zone (simulated annealing, run
    in a separate process). Answers its measures beside today's partition and random ones."""
    return await svc.propose(principal, seed=body.seed, zones=body.zones,
                             time_budget_s=body.time_budget_s)


@router.route("GET", "/partitions", access=Access.COMMITTEE, response=PartitionsOut, tags=TAGS,
              summary="Proposals, newest first, with their measures and status")
async def list_partitions(request: web.Request, *, principal: Principal) -> dict[str, Any]:
    return {"items": await svc.list_proposals(principal)}


@router.route("GET", ONE, access=Access.COMMITTEE, response=PartitionOut, tags=TAGS,
              errors=[svc.PartitionNotFound],
              summary="One proposal: its zones and their units, its measures")
async def get_partition(request: web.Request, *, principal: Principal) -> Any:
    return await svc.get_proposal(principal, path_int(request, "partition_id"))


@router.route("POST", ONE + "/apply", access=Access.COMMITTEE, body=ApplyIn,
              response=PartitionOut, tags=TAGS,
              errors=[svc.PartitionNotFound, svc.PartitionApplied, svc.PartitionPending,
                      svc.PartitionStale, svc.QuarterStarted, YearOutOfRange],
              summary="Apply a proposal from a quarter not yet started: rotations regenerate")
async def apply_partition(request: web.Request, *, principal: Principal, body: ApplyIn) -> Any:
    """Rotations from that quarter on are made for the new zones (past ones stay); the units
    move to their new zones when the quarter begins."""
    return await svc.apply(principal, path_int(request, "partition_id"),
                           from_quarter=body.from_quarter)
