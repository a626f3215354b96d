"""Routes: activities — create, list, read, edit, cancel."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.routing import Access, Router, path_int
from server.schemas.activities import (
    ActivitiesOut,
    ActivitiesQuery,
    ActivityIn,
    ActivityOut,
    ActivityPatch,
    CancelIn,
    CreatedActivityOut,
)
from services import activities as svc
from services import errors
from services.auth import Principal

router = Router()
TAGS = ["activities"]
ID = r"/activities/{activity_id:\d{1,9}}"


@router.route("POST", "/activities", access=Access.UNIT_ADMIN, body=ActivityIn,
              response=CreatedActivityOut, status=201, tags=TAGS,
              errors=[errors.NotOnDuty, errors.NoRotation, errors.OutsideRotation,
                      errors.ZoneNotFound, errors.UnitNotFound, errors.AudienceOutOfScope,
                      errors.InvalidInput],
              summary="Create an activity (duty unit: own zone, own quarter; staff: their zones)")
async def create_activity(request: web.Request, *, principal: Principal, body: ActivityIn) -> Any:
    """More than 4 activities planned in one rotation answers a warning, not a refusal."""
    return await svc.create(principal, body.model_dump())


@router.route("GET", "/activities", access=Access.MEMBER, query=ActivitiesQuery,
              response=ActivitiesOut, tags=TAGS, errors=[errors.ActivityNotFound],
              summary="Activities I can see, soonest first, filters zone_id, kind, from, to; paged")
async def list_activities(request: web.Request, *, principal: Principal,
                          query: ActivitiesQuery) -> dict[str, Any]:
    return await svc.list_activities(principal, zone_id=query.zone_id, kind=query.kind,
                                     start=query.from_, end=query.to, limit=query.limit,
                                     cursor=query.cursor)


@router.route("GET", ID, access=Access.MEMBER, response=ActivityOut, tags=TAGS,
              errors=[errors.ActivityNotFound], summary="One activity with seats taken and my status")
async def get_activity(request: web.Request, *, principal: Principal) -> Any:
    return await svc.get_for(principal, path_int(request, "activity_id"))


@router.route("PATCH", ID, access=Access.UNIT_ADMIN, body=ActivityPatch, response=ActivityOut,
              tags=TAGS, errors=[errors.ActivityNotFound, *errors.DUTY_REFUSALS,
                                 errors.CapacityBelowConfirmed, errors.ActivityCancelled,
                                 errors.OutsideRotation, errors.AudienceOutOfScope,
                                 errors.InvalidInput, errors.Busy],
              summary="Edit an activity (organiser; staff of its zone); capacity never below confirmed")
async def update_activity(request: web.Request, *, principal: Principal, body: ActivityPatch) -> Any:
    """Only the fields sent change; more room moves the waitlist up at once."""
    return await svc.update(principal, path_int(request, "activity_id"),
                            body.model_dump(exclude_unset=True))


@router.route("POST", ID + "/cancel", access=Access.UNIT_ADMIN, body=CancelIn,
              response=ActivityOut, tags=TAGS,
              errors=[errors.ActivityNotFound, *errors.DUTY_REFUSALS],
              summary="Cancel an activity; everyone signed up is told")
async def cancel_activity(request: web.Request, *, principal: Principal, body: CancelIn) -> Any:
    return await svc.cancel(principal, path_int(request, "activity_id"), reason=body.reason)
