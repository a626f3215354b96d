"""Routes: rotations of a zone, generating a year, the year's plan and its confirmation, the duty
order, and a mid-quarter change of the duty unit."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.routing import Access, Router, path_int
from server.schemas.rotations import (
    DutyChangeIn,
    DutyOrderIn,
    GenerateIn,
    GenerateOut,
    PlanOut,
    RotationOut,
    RotationsOut,
    RotationsQuery,
)
from services import rotations as svc
from services.auth import Principal
from services.errors import InvalidInput, UnitNotFound, UnitNotInZone, ZoneNotFound

router = Router()
TAGS = ["rotations"]
ZONE = r"/zones/{zone_id:\d{1,9}}"
YEAR = r"/rotation-plans/{year:\d{4}}"


@router.route("GET", ZONE + "/rotations", access=Access.MEMBER, query=RotationsQuery,
              response=RotationsOut, tags=TAGS, errors=[ZoneNotFound],
              summary="The zone's rotations, filter year")
async def list_rotations(request: web.Request, *, principal: Principal,
                         query: RotationsQuery) -> dict[str, Any]:
    return {"items": await svc.list_rotations(path_int(request, "zone_id"), year=query.year)}


@router.route("POST", "/rotations/generate", access=Access.COMMITTEE, body=GenerateIn,
              response=GenerateOut, tags=TAGS, errors=[svc.YearOutOfRange],
              summary="Create the rotations of every zone for a year (idempotent)")
async def generate_rotations(request: web.Request, *, principal: Principal,
                             body: GenerateIn) -> dict[str, Any]:
    """Strongest unit first in a zone's first round; every unit once per round, one quarter
    each; the order continues across years. Existing rotations are kept. (A daily job does this
    for next year ahead of time.)"""
    result = await svc.generate_rotations(year=body.year)
    return {"year": body.year, **result}


@router.route("GET", YEAR, access=Access.STAFF, response=PlanOut, tags=TAGS,
              errors=[svc.YearOutOfRange, svc.PlanNotFound],
              summary="A year's rotations in every zone, and whether the committee confirmed them")
async def get_plan(request: web.Request, *, principal: Principal) -> dict[str, Any]:
    return await svc.get_plan(int(request.match_info["year"]))


@router.route("POST", YEAR + "/confirm", access=Access.COMMITTEE, response=PlanOut, tags=TAGS,
              errors=[svc.YearOutOfRange, svc.PlanNotFound],
              summary="Confirm a year's rotations (the first confirmation stands)")
async def confirm_plan(request: web.Request, *, principal: Principal) -> dict[str, Any]:
    return await svc.confirm_plan(principal, year=int(request.match_info["year"]))


@router.route("PUT", ZONE + "/duty-order", access=Access.COMMITTEE, body=DutyOrderIn,
              response=RotationsOut, tags=TAGS, errors=[ZoneNotFound, InvalidInput],
              summary="Set a zone's duty order: rotations not yet started follow it")
async def set_duty_order(request: web.Request, *, principal: Principal,
                         body: DutyOrderIn) -> dict[str, Any]:
    """List every unit of the zone once, in the new order. Rotations that have started are
    history and stay; the ones after follow the new order from the unit on duty now."""
    return {"items": await svc.reorder(principal, zone_id=path_int(request, "zone_id"),
                                       unit_ids=body.unit_ids)}


@router.route("POST", ZONE + "/duty-change", access=Access.COMMITTEE, body=DutyChangeIn,
              response=RotationOut, tags=TAGS,
              errors=[UnitNotFound, UnitNotInZone, svc.NoCurrentRotation, svc.AlreadyOnDuty],
              summary="Hand the rest of the current quarter to another unit (kept in history)")
async def change_duty(request: web.Request, *, principal: Principal,
                      body: DutyChangeIn) -> dict[str, Any]:
    return await svc.change_duty_unit(principal, zone_id=path_int(request, "zone_id"),
                                      unit_id=body.unit_id, reason=body.reason)
