"""Routes: sign-up, leaving, a unit admin's batch sign-up, the organiser's list."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.routing import Access, Router, path_int
from server.schemas.signups import BatchSignupIn, BatchSignupOut, SignupOut, SignupsOut
from services import errors, signups
from services.auth import Principal

router = Router()
TAGS = ["signup"]
ID = r"/activities/{activity_id:\d{1,9}}"


@router.route("POST", ID + "/signup", access=Access.MEMBER, response=SignupOut, status=201,
              tags=TAGS, errors=[errors.ActivityNotFound, errors.SignupNotOpen, errors.SignupClosed,
                                 errors.ActivityFull, errors.NotInAudience,
                                 errors.ActivityCancelled, errors.Busy],
              replays=True,
              summary="Sign up: confirmed if a seat is free, else waitlisted; repeating returns the same")
async def signup(request: web.Request, *, principal: Principal) -> Any:
    """A repeat answers the standing sign-up with 200 (and Idempotent-Replayed)."""
    return await signups.signup(principal, activity_id=path_int(request, "activity_id"))


@router.route("DELETE", ID + "/signup", access=Access.MEMBER, response=SignupOut, tags=TAGS,
              errors=[errors.ActivityNotFound, errors.NotSignedUp, errors.SignupClosed,
                      errors.AlreadyCheckedIn, errors.Busy],
              summary="Cancel my sign-up or leave the waitlist; the first waitlisted moves up")
async def cancel_signup(request: web.Request, *, principal: Principal) -> Any:
    return await signups.cancel_signup(principal, activity_id=path_int(request, "activity_id"))


@router.route("POST", ID + "/signups/batch", access=Access.UNIT_ADMIN, body=BatchSignupIn,
              response=BatchSignupOut, status=201, tags=TAGS,
              errors=[errors.ActivityNotFound, errors.SignupNotOpen, errors.SignupClosed,
                      errors.ActivityFull, errors.NotInAudience, errors.ActivityCancelled,
                      errors.Busy],
              summary="A unit admin signs up several of their members, all or nothing")
async def signup_batch(request: web.Request, *, principal: Principal,
                       body: BatchSignupIn) -> dict[str, Any]:
    return {"items": await signups.signup_batch(principal, activity_id=path_int(request, "activity_id"),
                                                member_ids=body.member_ids)}


@router.route("GET", ID + "/signups", access=Access.UNIT_ADMIN, response=SignupsOut, tags=TAGS,
              errors=[errors.ActivityNotFound, *errors.DUTY_REFUSALS],
              summary="Sign-ups and the waitlist (organiser; staff of the zone)")
async def list_signups(request: web.Request, *, principal: Principal) -> Any:
    return await signups.list_signups(principal, path_int(request, "activity_id"))
