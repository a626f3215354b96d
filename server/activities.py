"""Routes: activities, sign-up and waitlist, check-in, attendance, "three ones", contests."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from models.activities import Activity, Checkin, ContestEntry, Signup
from server.jsonutil import json_response
from server.keys import PASS_SIGNER
from server.routing import Access, Router, path_int
from server.schemas.activities import (
    ActivitiesOut,
    ActivitiesQuery,
    ActivityIn,
    ActivityOut,
    ActivityPatch,
    AttendanceOut,
    BatchSignupIn,
    BatchSignupOut,
    CancelIn,
    CheckinCodeOut,
    CheckinIn,
    CheckinOut,
    ComplianceOut,
    ComplianceQuery,
    CreatedActivityOut,
    EntriesOut,
    EntryIn,
    EntryOut,
    FinalIn,
    HistoryOut,
    PassKeyOut,
    PassOut,
    PreliminaryIn,
    ResultsOut,
    ScansIn,
    ScansOut,
    SignupOut,
    SignupsOut,
    ZoneAttendanceOut,
    ZoneAttendanceQuery,
)
from server.schemas.common import OkOut
from services import activities as svc
from services import clock, compliance, contests
from services.access import NotOnDuty
from services.auth import Principal
from services.errors import Forbidden, NotFound
from services.passes import qr_svg

router = Router()
TAGS = ["activities"]
ID = r"/activities/{activity_id:\d{1,9}}"
PASS_TTL_S = 7 * 24 * 3600


def activity_out(a: Activity, *, mine: Signup | None = None, position: int | None = None,
                 checked_in: bool | None = None) -> dict[str, Any]:
    return {
        "id": a.id, "zone_id": a.zone_id, "organiser_unit_id": a.organiser_unit_id,
        "rotation_id": a.rotation_id, "kind": a.kind.value, "title": a.title,
        "description": a.description, "place": a.place, "lat": a.lat, "lng": a.lng,
        "radius_m": a.radius_m, "starts_at": a.starts_at, "ends_at": a.ends_at,
        "capacity": a.capacity, "unit_quota": a.unit_quota, "signup_opens_at": a.signup_opens_at,
        "signup_closes_at": a.signup_closes_at, "checkin_opens_at": a.checkin_opens_at,
        "checkin_closes_at": a.checkin_closes_at, "walk_ins": a.walk_ins, "waitlist": a.waitlist,
        "audience": a.audience, "status": a.status.value, "confirmed": a.confirmed,
        "waitlisted": a.waitlisted, "checked_in": a.checked_in,
        "my_status": mine.status.value if mine else None, "my_position": position,
        "my_checked_in": checked_in,
    }


async def signup_out(row: Signup) -> dict[str, Any]:
    return {"signup_id": row.id, "activity_id": row.activity_id, "member_id": row.member_id,
            "status": row.status.value, "position": await svc.waitlist_position(row)}


def entry_out(e: ContestEntry) -> dict[str, Any]:
    return {"id": e.id, "contest_id": e.contest_id, "zone_id": e.zone_id, "unit_id": e.unit_id,
            "member_id": e.member_id, "title": e.title,
            "preliminary_score": float(e.preliminary_score) if e.preliminary_score is not None else None,
            "preliminary_rank": e.preliminary_rank, "advanced": e.advanced,
            "final_score": float(e.final_score) if e.final_score is not None else None,
            "final_rank": e.final_rank}


# -- activities ----------------------------------------------------------------------------------

@router.route("POST", "/activities", access=Access.UNIT_ADMIN, body=ActivityIn,
              response=CreatedActivityOut, status=201, tags=TAGS,
              errors=[NotOnDuty, svc.OutsideRotation, NotFound],
              summary="Create an activity (duty unit: own zone, own quarter; committee: anywhere)")
async def create_activity(request: web.Request, *, principal: Principal,
                          body: ActivityIn) -> dict[str, Any]:
    """More than 4 activities planned in one rotation answers a warning, not a refusal."""
    data = body.model_dump(exclude_unset=False)
    if body.audience is not None:
        data["audience"] = body.audience.model_dump()
    created = await svc.create(principal, data)
    return {**activity_out(created.activity), "warnings": created.warnings}


@router.route("GET", "/activities", access=Access.MEMBER, query=ActivitiesQuery,
              response=ActivitiesOut, tags=TAGS,
              summary="Activities I can see, filters zone_id, kind, from, to")
async def list_activities(request: web.Request, *, principal: Principal,
                          query: ActivitiesQuery) -> dict[str, Any]:
    rows = await svc.list_activities(principal, zone_id=query.zone_id, kind=query.kind,
                                     start=query.from_, end=query.to, limit=query.limit)
    mine = {s.activity_id: s for s in await Signup.filter(
        member_id=principal.member_id, activity_id__in=[a.id for a in rows])}
    return {"items": [activity_out(a, mine=mine.get(a.id)) for a in rows]}


@router.route("GET", ID, access=Access.MEMBER, response=ActivityOut, tags=TAGS,
              errors=[svc.ActivityNotFound], summary="One activity with seats taken and my status")
async def get_activity(request: web.Request, *, principal: Principal) -> dict[str, Any]:
    activity = await svc.get_or_raise(path_int(request, "activity_id"))
    await svc.check_can_see(principal, activity)
    mine = await Signup.get_or_none(activity_id=activity.id, member_id=principal.member_id)
    checked = await Checkin.exists(activity_id=activity.id, member_id=principal.member_id)
    return activity_out(activity, mine=mine,
                        position=await svc.waitlist_position(mine) if mine else None,
                        checked_in=checked)


@router.route("PATCH", ID, access=Access.UNIT_ADMIN, body=ActivityPatch, response=ActivityOut,
              tags=TAGS, errors=[svc.ActivityNotFound, NotOnDuty, svc.CapacityBelowConfirmed,
                                 svc.ActivityCancelled],
              summary="Edit an activity (organiser; committee); capacity never below confirmed")
async def update_activity(request: web.Request, *, principal: Principal,
                          body: ActivityPatch) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    if "audience" in changes and body.audience is not None:
        changes["audience"] = body.audience.model_dump()
    activity = await svc.update(principal, path_int(request, "activity_id"), changes)
    return activity_out(activity)


@router.route("POST", ID + "/cancel", access=Access.UNIT_ADMIN, body=CancelIn,
              response=ActivityOut, tags=TAGS, errors=[svc.ActivityNotFound, NotOnDuty],
              summary="Cancel an activity; everyone signed up is told")
async def cancel_activity(request: web.Request, *, principal: Principal,
                          body: CancelIn) -> dict[str, Any]:
    return activity_out(await svc.cancel(principal, path_int(request, "activity_id"),
                                         reason=body.reason))


# -- sign-up -------------------------------------------------------------------------------------

@router.route("POST", ID + "/signup", access=Access.MEMBER, response=SignupOut, status=201,
              tags=["signup"], errors=[svc.ActivityNotFound, svc.SignupNotOpen, svc.SignupClosed,
                                       svc.ActivityFull, svc.NotInAudience, svc.ActivityCancelled],
              replays=True,
              summary="Sign up: confirmed if a seat is free, else waitlisted; repeating returns the same")
async def signup(request: web.Request, *, principal: Principal) -> web.Response:
    row = await svc.signup(activity_id=path_int(request, "activity_id"),
                           member_id=principal.member_id, principal_role=principal.role.value)
    repeated = getattr(row, "_repeated", False)
    return json_response(await signup_out(row), status=200 if repeated else 201)


@router.route("DELETE", ID + "/signup", access=Access.MEMBER, response=SignupOut, tags=["signup"],
              errors=[svc.NotSignedUp, svc.SignupClosed, svc.AlreadyCheckedIn],
              summary="Cancel my sign-up or leave the waitlist; the first waitlisted moves up")
async def cancel_signup(request: web.Request, *, principal: Principal) -> dict[str, Any]:
    row = await svc.cancel_signup(activity_id=path_int(request, "activity_id"),
                                  member_id=principal.member_id)
    return await signup_out(row)


@router.route("POST", ID + "/signups/batch", access=Access.UNIT_ADMIN, body=BatchSignupIn,
              response=BatchSignupOut, status=201, tags=["signup"],
              errors=[Forbidden, svc.SignupClosed, svc.ActivityFull, svc.NotInAudience],
              summary="A unit admin signs up several of their members, all or nothing")
async def signup_batch(request: web.Request, *, principal: Principal,
                       body: BatchSignupIn) -> dict[str, Any]:
    rows = await svc.signup_batch(principal, activity_id=path_int(request, "activity_id"),
                                  member_ids=body.member_ids)
    return {"items": [await signup_out(r) for r in rows]}


@router.route("GET", ID + "/signups", access=Access.UNIT_ADMIN, response=SignupsOut,
              tags=["signup"], errors=[svc.ActivityNotFound, NotOnDuty],
              summary="Sign-ups and the waitlist (organiser; committee)")
async def list_signups(request: web.Request, *, principal: Principal) -> dict[str, Any]:
    _, rows = await svc.list_signups(principal, path_int(request, "activity_id"))
    out: dict[str, list[dict[str, Any]]] = {"confirmed": [], "waitlisted": [], "cancelled": []}
    for r in sorted(rows, key=lambda r: (r.queued_at, r.id)):
        out[r.status.value].append({"signup_id": r.id, "member_id": r.member_id,
                                    "name": r.member.name, "unit_id": r.unit_id,
                                    "status": r.status.value, "queued_at": r.queued_at,
                                    "confirmed_at": r.confirmed_at})
    return out


# -- check-in ------------------------------------------------------------------------------------

@router.route("GET", ID + "/checkin-code", access=Access.UNIT_ADMIN, response=CheckinCodeOut,
              tags=["checkin"], errors=[svc.ActivityNotFound, NotOnDuty],
              summary="The venue code to show on site; it rotates every 30 s")
async def checkin_code(request: web.Request, *, principal: Principal) -> dict[str, Any]:
    return await svc.venue_code(principal, path_int(request, "activity_id"))


@router.route("POST", ID + "/checkin", access=Access.MEMBER, body=CheckinIn, response=CheckinOut,
              tags=["checkin"], errors=[svc.CheckinError, svc.ActivityNotFound],
              summary="Check in with the scanned venue code; repeating it counts once")
async def checkin(request: web.Request, *, principal: Principal, body: CheckinIn) -> dict[str, Any]:
    """Error codes: checkin_not_open, checkin_closed, checkin_code_invalid, checkin_code_forged,
    checkin_code_expired, location_required, too_far, not_signed_up, waitlisted."""
    result = await svc.checkin_with_code(principal, activity_id=path_int(request, "activity_id"),
                                         token=body.token, lat=body.lat, lng=body.lng)
    c = result.checkin
    return {"activity_id": c.activity_id, "member_id": c.member_id,
            "checked_in_at": c.checked_in_at, "walk_in": c.walk_in, "first_time": result.created}


@router.route("POST", ID + "/pass-scans", access=Access.UNIT_ADMIN, body=ScansIn,
              response=ScansOut, tags=["checkin"], errors=[svc.ActivityNotFound, NotOnDuty],
              summary="The organiser's scans of personal passes, live or uploaded after an offline session")
async def pass_scans(request: web.Request, *, principal: Principal, body: ScansIn) -> dict[str, Any]:
    """Each scan carries a client nonce: a retried upload answers `duplicate` and counts once;
    the same nonce with another member's pass answers `scan_replayed`."""
    results = await svc.scan_passes(principal, activity_id=path_int(request, "activity_id"),
                                    signer=request.app[PASS_SIGNER],
                                    scans=[s.model_dump() for s in body.scans])
    return {"results": results}


@router.route("GET", "/me/pass", access=Access.MEMBER, response=PassOut, tags=["checkin"],
              summary="My personal check-in pass (Ed25519-signed, verifiable offline)")
async def my_pass(request: web.Request, *, principal: Principal) -> dict[str, Any]:
    signer = request.app[PASS_SIGNER]
    exp = int(time.time()) + PASS_TTL_S
    token = signer.issue(member_id=principal.member_id, unit_id=principal.unit_id, exp=exp)
    return {"token": token, "expires_at": datetime.fromtimestamp(exp, UTC), "svg": qr_svg(token),
            "public_key": signer.public_key_b64}


@router.route("GET", "/checkin/pass-key", access=Access.ANYONE, response=PassKeyOut,
              tags=["checkin"], summary="The public key that verifies personal passes offline")
async def pass_key(request: web.Request) -> dict[str, Any]:
    return {"alg": "Ed25519", "public_key": request.app[PASS_SIGNER].public_key_b64}


# -- attendance and compliance -------------------------------------------------------------------

@router.route("GET", ID + "/attendance", access=Access.UNIT_ADMIN, response=AttendanceOut,
              tags=["attendance"], errors=[svc.ActivityNotFound, NotOnDuty],
              summary="Signed up, checked in and absent, per unit (organiser; committee)")
async def activity_attendance(request: web.Request, *, principal: Principal) -> dict[str, Any]:
    return await svc.attendance(principal, path_int(request, "activity_id"))


@router.route("GET", "/zones/{zone_id:\\d{1,9}}/attendance", access=Access.UNIT_ADMIN,
              query=ZoneAttendanceQuery, response=ZoneAttendanceOut, tags=["attendance"],
              errors=[NotFound, Forbidden],
              summary="Attendee-times and attendance rates per unit for a zone's year")
async def zone_attendance(request: web.Request, *, principal: Principal,
                          query: ZoneAttendanceQuery) -> dict[str, Any]:
    return await svc.zone_attendance(principal, path_int(request, "zone_id"), year=query.year)


@router.route("GET", "/me/activities", access=Access.MEMBER, response=HistoryOut,
              tags=["attendance"], summary="My sign-ups and check-ins, newest first")
async def my_activities(request: web.Request, *, principal: Principal) -> dict[str, Any]:
    return {"items": await svc.my_history(principal.member_id)}


@router.route("GET", "/zones/{zone_id:\\d{1,9}}/compliance", access=Access.MEMBER,
              query=ComplianceQuery, response=ComplianceOut, tags=["attendance"],
              errors=[NotFound],
              summary='"Three ones" per rotation of a quarter (param quarter like 2026Q4)')
async def zone_compliance(request: web.Request, *, principal: Principal,
                          query: ComplianceQuery) -> dict[str, Any]:
    year, quarter = clock.parse_quarter(query.quarter)
    return await compliance.zone_compliance(path_int(request, "zone_id"), year=year, quarter=quarter)


# -- contests ------------------------------------------------------------------------------------

@router.route("POST", ID + "/entries", access=Access.MEMBER, body=EntryIn, response=EntryOut,
              status=201, tags=["contests"],
              errors=[contests.NotAContest, contests.RoundClosed, contests.AlreadyEntered,
                      svc.NotInAudience],
              summary="Enter a contest, as a member or (unit admin) for the unit")
async def add_entry(request: web.Request, *, principal: Principal, body: EntryIn) -> dict[str, Any]:
    entry = await contests.add_entry(principal, contest_id=path_int(request, "activity_id"),
                                     title=body.title, as_unit=body.as_unit)
    return entry_out(entry)


@router.route("GET", ID + "/entries", access=Access.MEMBER, response=EntriesOut,
              tags=["contests"], errors=[contests.NotAContest],
              summary="A contest's entries")
async def list_entries(request: web.Request, *, principal: Principal) -> dict[str, Any]:
    return {"items": [entry_out(e) for e in await contests.entries(principal, path_int(request, "activity_id"))]}


@router.route("POST", ID + "/rounds/preliminary", access=Access.UNIT_ADMIN, body=PreliminaryIn,
              response=OkOut, tags=["contests"],
              errors=[contests.RoundClosed, NotOnDuty, contests.NotAContest],
              summary="Close a zone's preliminary: rank its entries, advance the top N")
async def close_preliminary(request: web.Request, *, principal: Principal,
                            body: PreliminaryIn) -> dict[str, Any]:
    await contests.close_preliminary(principal, contest_id=path_int(request, "activity_id"),
                                     zone_id=body.zone_id, advance_top=body.advance_top,
                                     scores=[s.model_dump() for s in body.scores])
    return {"ok": True}


@router.route("POST", ID + "/rounds/final", access=Access.COMMITTEE, body=FinalIn,
              response=OkOut, tags=["contests"],
              errors=[contests.RoundClosed, contests.PreliminariesOpen, contests.NotAContest],
              summary="Close the committee's final: rank the finalists")
async def close_final(request: web.Request, *, principal: Principal, body: FinalIn) -> dict[str, Any]:
    await contests.close_final(principal, contest_id=path_int(request, "activity_id"),
                               scores=[s.model_dump() for s in body.scores])
    return {"ok": True}


@router.route("GET", ID + "/results", access=Access.MEMBER, response=ResultsOut,
              tags=["contests"], errors=[contests.NotAContest],
              summary="Results per round: each zone's preliminary and the final")
async def contest_results(request: web.Request, *, principal: Principal) -> dict[str, Any]:
    contest_id = path_int(request, "activity_id")
    rounds = await contests.results(principal, contest_id)
    return {"contest_id": contest_id,
            "rounds": [{**r, "ranking": [entry_out(e) for e in r["ranking"]]} for r in rounds]}

