"""Routes: the quarter's regular meeting, and the handover that closes a rotation."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.routing import Access, Router, path_int
from server.schemas.governance import (
    DeploymentIn,
    HandoverIn,
    HandoverOut,
    MeetingCloseIn,
    MeetingIn,
    MeetingOut,
    MeetingsOut,
    MeetingsQuery,
    MeetingTextIn,
)
from services import errors, handovers, meetings
from services.auth import Principal

router = Router()
TAGS = ["governance"]
MEETING = r"/meetings/{meeting_id:\d{1,9}}"
ZONE = MEETING + r"/zones/{zone_id:\d{1,9}}"
HANDOVER = r"/rotations/{rotation_id:\d{1,9}}/handover"


@router.route("POST", "/meetings", access=Access.COMMITTEE, body=MeetingIn, response=MeetingOut,
              status=201, tags=TAGS, errors=[errors.MeetingExists],
              summary="Schedule the quarter's regular meeting (例会); current and next duty units are invited")
async def schedule(request: web.Request, *, principal: Principal, body: MeetingIn) -> Any:
    return await meetings.schedule(principal, year=body.year, quarter=body.quarter, title=body.title,
                                   starts_at=body.starts_at, place=body.place)


@router.route("GET", "/meetings", access=Access.UNIT_ADMIN, query=MeetingsQuery,
              response=MeetingsOut, tags=TAGS,
              summary="Meetings (staff: all; a unit admin: those their unit attends), newest first")
async def list_meetings(request: web.Request, *, principal: Principal, query: MeetingsQuery) -> Any:
    return {"items": await meetings.list_meetings(principal, year=query.year)}


@router.route("GET", MEETING, access=Access.UNIT_ADMIN, response=MeetingOut, tags=TAGS,
              errors=[errors.MeetingNotFound], summary="One meeting: each zone's report, comments, deployments")
async def get_meeting(request: web.Request, *, principal: Principal) -> Any:
    return await meetings.get(principal, path_int(request, "meeting_id"))


@router.route("PUT", ZONE + "/report", access=Access.UNIT_ADMIN, body=MeetingTextIn,
              response=MeetingOut, tags=TAGS,
              errors=[errors.MeetingNotFound, errors.NotAtMeeting, errors.IllegalTransition],
              summary="The zone's current duty unit reports on its quarter (until the meeting is held)")
async def put_report(request: web.Request, *, principal: Principal, body: MeetingTextIn) -> Any:
    return await meetings.report(principal, path_int(request, "meeting_id"),
                                 path_int(request, "zone_id"), text=body.text)


@router.route("PUT", ZONE + "/comments", access=Access.STAFF, body=MeetingTextIn,
              response=MeetingOut, tags=TAGS, errors=[errors.MeetingNotFound],
              summary="The committee's comments on a zone's report (讲评); the duty unit is told")
async def put_comments(request: web.Request, *, principal: Principal, body: MeetingTextIn) -> Any:
    return await meetings.comment(principal, path_int(request, "meeting_id"),
                                  path_int(request, "zone_id"), text=body.text)


@router.route("POST", MEETING + "/deployments", access=Access.COMMITTEE, body=DeploymentIn,
              response=MeetingOut, status=201, tags=TAGS,
              errors=[errors.MeetingNotFound, errors.NoUnits, errors.InvalidInput],
              summary="Deploy a task for next quarter: a supervision item for the next duty units, in one step")
async def deploy(request: web.Request, *, principal: Principal, body: DeploymentIn) -> Any:
    return await meetings.deploy(principal, path_int(request, "meeting_id"), title=body.title,
                                 detail=body.detail, due_at=body.due_at, zone_ids=body.zone_ids)


@router.route("POST", MEETING + "/close", access=Access.COMMITTEE, body=MeetingCloseIn,
              response=MeetingOut, tags=TAGS, errors=[errors.MeetingNotFound, errors.IllegalTransition],
              summary="The meeting was held: its minutes are recorded, reports are final")
async def close(request: web.Request, *, principal: Principal, body: MeetingCloseIn) -> Any:
    return await meetings.close(principal, path_int(request, "meeting_id"), minutes=body.minutes)


@router.route("GET", HANDOVER, access=Access.MEMBER, response=HandoverOut, tags=TAGS,
              errors=[errors.RotationNotFound, errors.Forbidden],
              summary="The handover of a rotation: the quarter as recorded, both sides' parts")
async def get_handover(request: web.Request, *, principal: Principal) -> Any:
    """For the outgoing and incoming units (their admins and 书记) and staff of the zone."""
    return await handovers.get(principal, path_int(request, "rotation_id"))


@router.route("POST", HANDOVER, access=Access.MEMBER, body=HandoverIn, response=HandoverOut,
              tags=TAGS,
              errors=[errors.RotationNotFound, errors.NotHandoverParty, errors.HandoverNotOpen,
                      errors.HandoverConfirmed],
              summary="Either side writes its part and confirms; both confirmed closes the rotation")
async def post_handover(request: web.Request, *, principal: Principal, body: HandoverIn) -> Any:
    """The outgoing unit writes `note`, the incoming unit `plan`; `confirm` by the unit's admin
    or 书记. Opens 30 days before the quarter ends; confirming again changes nothing."""
    return await handovers.record(principal, path_int(request, "rotation_id"), note=body.note,
                                  plan=body.plan, confirm=body.confirm)
