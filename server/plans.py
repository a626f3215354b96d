"""Routes: a rotation's work plan — read, write, discuss, submit, file or return."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.routing import Access, Router, path_int
from server.schemas.plans import PlanCommentIn, PlanDecisionIn, PlanIn, PlanOut
from services import errors, plans
from services.auth import Principal

router = Router()
TAGS = ["governance"]
PLAN = r"/rotations/{rotation_id:\d{1,9}}/plan"


@router.route("GET", PLAN, access=Access.UNIT_ADMIN, response=PlanOut, tags=TAGS,
              errors=[errors.RotationNotFound],
              summary="The rotation's work plan: every version, the discussion, the decisions")
async def get_plan(request: web.Request, *, principal: Principal) -> Any:
    return await plans.get(principal, path_int(request, "rotation_id"))


@router.route("PUT", PLAN, access=Access.UNIT_ADMIN, body=PlanIn, response=PlanOut, tags=TAGS,
              errors=[errors.RotationNotFound, errors.RotationOver, errors.IllegalTransition],
              summary="The duty unit writes its quarter's plan (a new version when it changed)")
async def put_plan(request: web.Request, *, principal: Principal, body: PlanIn) -> Any:
    """Before or during the quarter; a submitted or filed plan is not edited, a returned one
    is, and goes back to draft. `warnings` has `over_guideline` above four planned activities."""
    return await plans.save(principal, path_int(request, "rotation_id"), goals=body.goals,
                            items=[i.model_dump() for i in body.items], budget_fen=body.budget_fen,
                            note=body.note)


@router.route("POST", PLAN + "/comments", access=Access.UNIT_ADMIN, body=PlanCommentIn,
              response=PlanOut, tags=TAGS,
              errors=[errors.RotationNotFound, errors.PlanNotStarted, errors.IllegalTransition],
              summary="A member unit of the zone comments on the draft (商讨)")
async def comment_plan(request: web.Request, *, principal: Principal, body: PlanCommentIn) -> Any:
    return await plans.comment(principal, path_int(request, "rotation_id"), body=body.body)


@router.route("POST", PLAN + "/submit", access=Access.UNIT_ADMIN, response=PlanOut, tags=TAGS,
              errors=[errors.RotationNotFound, errors.PlanNotStarted, errors.IllegalTransition],
              summary="The duty unit submits the latest version for filing (repeating it is harmless)")
async def submit_plan(request: web.Request, *, principal: Principal) -> Any:
    return await plans.submit(principal, path_int(request, "rotation_id"))


@router.route("POST", PLAN + "/file", access=Access.STAFF, body=PlanDecisionIn, response=PlanOut,
              tags=TAGS,
              errors=[errors.RotationNotFound, errors.PlanNotStarted, errors.IllegalTransition],
              summary="File (备案) the submitted plan, or return it with comments")
async def file_plan(request: web.Request, *, principal: Principal, body: PlanDecisionIn) -> Any:
    return await plans.decide(principal, path_int(request, "rotation_id"), decision=body.decision,
                              comment=body.comment)
