"""Routes: attendance of an activity, of a zone's year, my own history; the "three ones"."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.routing import Access, Router, path_int
from server.schemas.attendance import (
    AttendanceOut,
    ComplianceOut,
    ComplianceQuery,
    HistoryOut,
    ZoneAttendanceOut,
    ZoneAttendanceQuery,
)
from services import attendance, compliance, errors
from services.auth import Principal

router = Router()
TAGS = ["attendance"]
ZONE = r"/zones/{zone_id:\d{1,9}}"


@router.route("GET", r"/activities/{activity_id:\d{1,9}}/attendance", access=Access.UNIT_ADMIN,
              response=AttendanceOut, tags=TAGS,
              errors=[errors.ActivityNotFound, *errors.DUTY_REFUSALS],
              summary="Signed up, checked in and absent, per unit (organiser; staff of the zone)")
async def activity_attendance(request: web.Request, *, principal: Principal) -> Any:
    return await attendance.attendance(principal, path_int(request, "activity_id"))


@router.route("GET", ZONE + "/attendance", access=Access.UNIT_ADMIN, query=ZoneAttendanceQuery,
              response=ZoneAttendanceOut, tags=TAGS, errors=[errors.ZoneNotFound],
              summary="Attendee-times and attendance rates per unit for a zone's year")
async def zone_attendance(request: web.Request, *, principal: Principal,
                          query: ZoneAttendanceQuery) -> Any:
    return await attendance.zone_attendance(principal, path_int(request, "zone_id"), year=query.year)


@router.route("GET", "/me/activities", access=Access.MEMBER, response=HistoryOut, tags=TAGS,
              summary="My sign-ups and check-ins, newest first")
async def my_activities(request: web.Request, *, principal: Principal) -> dict[str, Any]:
    return {"items": await attendance.my_history(principal.member_id)}


@router.route("GET", ZONE + "/compliance", access=Access.MEMBER, query=ComplianceQuery,
              response=ComplianceOut, tags=TAGS, errors=[errors.ZoneNotFound],
              summary='"Three ones" per rotation of a quarter (param quarter like 2026Q4)')
async def zone_compliance(request: web.Request, *, principal: Principal,
                          query: ComplianceQuery) -> Any:
    return await compliance.zone_compliance(path_int(request, "zone_id"), quarter=query.quarter)
