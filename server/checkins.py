"""Routes: the venue code, checking in with it, personal passes and the organiser's scans."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.keys import PASS_SIGNER
from server.routing import Access, Router, path_int
from server.schemas.checkins import (
    CheckinCodeOut,
    CheckinIn,
    CheckinOut,
    PassKeyOut,
    PassOut,
    ScansIn,
    ScansOut,
)
from services import checkins, errors
from services.auth import Principal

router = Router()
TAGS = ["checkin"]
ID = r"/activities/{activity_id:\d{1,9}}"


@router.route("GET", ID + "/checkin-code", access=Access.UNIT_ADMIN, response=CheckinCodeOut,
              tags=TAGS, errors=[errors.ActivityNotFound, *errors.DUTY_REFUSALS],
              summary="The venue code to show on site; it rotates every 30 s")
async def checkin_code(request: web.Request, *, principal: Principal) -> Any:
    return await checkins.venue_code(principal, path_int(request, "activity_id"))


@router.route("POST", ID + "/checkin", access=Access.MEMBER, body=CheckinIn, response=CheckinOut,
              tags=TAGS, errors=[errors.ActivityNotFound, errors.ActivityCancelled,
                                 errors.CheckinCodeInvalid, errors.CheckinCodeForged,
                                 errors.CheckinCodeExpired, errors.CheckinNotOpen,
                                 errors.CheckinClosed, errors.LocationRequired, errors.TooFar,
                                 errors.NotSignedUp, errors.Waitlisted],
              summary="Check in with the scanned venue code; repeating it counts once")
async def checkin(request: web.Request, *, principal: Principal, body: CheckinIn) -> Any:
    return await checkins.checkin_with_code(principal, activity_id=path_int(request, "activity_id"),
                                            token=body.token, lat=body.lat, lng=body.lng)


@router.route("POST", ID + "/pass-scans", access=Access.UNIT_ADMIN, body=ScansIn,
              response=ScansOut, tags=TAGS,
              errors=[errors.ActivityNotFound, *errors.DUTY_REFUSALS],
              summary="The organiser's scans of personal passes, live or uploaded after an offline session")
async def pass_scans(request: web.Request, *, principal: Principal, body: ScansIn) -> dict[str, Any]:
    """Each scan carries a client nonce: a retried upload answers `duplicate` and counts once;
    the same nonce with another member's pass answers `scan_replayed`."""
    return {"results": await checkins.scan_passes(
        principal, activity_id=path_int(request, "activity_id"), signer=request.app[PASS_SIGNER],
        scans=[s.model_dump() for s in body.scans])}


@router.route("GET", "/me/pass", access=Access.MEMBER, response=PassOut, tags=TAGS,
              summary="My personal check-in pass (Ed25519-signed, verifiable offline)")
async def my_pass(request: web.Request, *, principal: Principal) -> Any:
    return checkins.issue_pass(principal, request.app[PASS_SIGNER])


@router.route("GET", "/checkin/pass-key", access=Access.ANYONE, response=PassKeyOut, tags=TAGS,
              summary="The public key that verifies personal passes offline")
async def pass_key(request: web.Request) -> dict[str, Any]:
    return {"alg": "Ed25519", "public_key": request.app[PASS_SIGNER].public_key_b64}
