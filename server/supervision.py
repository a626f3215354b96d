"""Routes: supervision items (督办): assign, report, review, urge; the list is the dashboard."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.routing import Access, Router, path_int
from server.schemas.supervision import (
    AssignmentOut,
    ItemDetailOut,
    ItemIn,
    ItemOut,
    ItemsOut,
    ItemsQuery,
    ProgressIn,
    ReviewIn,
    UrgeIn,
    UrgeOut,
)
from services import errors, supervision, supervision_board
from services.auth import Principal

router = Router()
TAGS = ["supervision"]
ID = r"/supervision-items/{item_id:\d{1,9}}"


@router.route("POST", "/supervision-items", access=Access.STAFF, body=ItemIn,
              response=ItemOut, status=201, tags=TAGS,
              errors=[errors.UnitNotFound, errors.ZoneNotFound, errors.NoUnits,
                      errors.AttachmentNotCitable, errors.InvalidInput],
              summary="Assign an item to units, or to every unit of zones (committee; liaisons: their zones)")
async def create_item(request: web.Request, *, principal: Principal, body: ItemIn) -> Any:
    """Each unit's admins are told at once. The escalation ladder defaults to a reminder 48 h
    before the due time, overdue at the due time (unit and duty unit told), the zone's liaisons
    24 h later and the committee 72 h later; `ladder` overrides any of these hours."""
    return await supervision.create(
        principal, title=body.title, detail=body.detail,
        attachments=[a.model_dump() for a in body.attachments], due_at=body.due_at,
        unit_ids=body.unit_ids, zone_ids=body.zone_ids,
        ladder=body.ladder.model_dump(exclude_none=True) if body.ladder else None)


@router.route("GET", "/supervision-items", access=Access.UNIT_ADMIN, query=ItemsQuery,
              response=ItemsOut, tags=TAGS,
              summary="Items with per-unit status and escalation, and the dashboard per zone and unit")
async def list_items(request: web.Request, *, principal: Principal, query: ItemsQuery) -> Any:
    """Committee: every item. Liaison: those of their zones. Unit admin: items assigned to the
    unit; while on duty, also those assigned to units of the zone. Figures count the assignments
    the caller sees."""
    return await supervision_board.list_items(principal, limit=query.limit, cursor=query.cursor,
                                              zone_id=query.zone_id)


@router.route("GET", ID, access=Access.UNIT_ADMIN, response=ItemDetailOut, tags=TAGS,
              errors=[errors.ItemNotFound],
              summary="One item: its assignments and the timeline of progress, reviews, urges and escalations")
async def get_item(request: web.Request, *, principal: Principal) -> Any:
    return await supervision_board.detail(principal, path_int(request, "item_id"))


@router.route("POST", ID + "/progress", access=Access.UNIT_ADMIN, body=ProgressIn,
              response=AssignmentOut, tags=TAGS,
              errors=[errors.ItemNotFound, errors.NotAssigned, errors.IllegalTransition,
                      errors.AttachmentNotCitable],
              summary="The assigned unit's admin reports progress, or submits with done: true")
async def report_progress(request: web.Request, *, principal: Principal, body: ProgressIn) -> Any:
    """open or returned -> in_progress; open, in_progress or returned -> submitted (the ladder
    stops). Anything else answers 409 illegal_transition."""
    return await supervision.report(principal, item_id=path_int(request, "item_id"),
                                    unit_id=body.unit_id, note=body.note, done=body.done,
                                    attachments=[x.model_dump() for x in body.attachments])


@router.route("POST", ID + "/review", access=Access.STAFF, body=ReviewIn,
              response=AssignmentOut, tags=TAGS,
              errors=[errors.ItemNotFound, errors.NotAssigned, errors.IllegalTransition,
                      errors.InvalidInput],
              summary="Accept a submission, or return it with a comment (committee; liaisons: their zones)")
async def review(request: web.Request, *, principal: Principal, body: ReviewIn) -> Any:
    """Only a submitted assignment can be reviewed. Returning re-arms the escalation ladder at
    the first step not yet fired."""
    return await supervision.review(principal, item_id=path_int(request, "item_id"),
                                    unit_id=body.unit_id, accept=body.accept, comment=body.comment)


@router.route("POST", ID + "/urge", access=Access.UNIT_ADMIN, body=UrgeIn, response=UrgeOut,
              status=201, tags=TAGS,
              errors=[errors.ItemNotFound, errors.NotAssigned, errors.IllegalTransition,
                      errors.UrgeTooSoon, errors.NotOnDuty, errors.NoRotation],
              summary="Urge a unit (催办): its admins are told (duty unit of its zone; staff)")
async def urge(request: web.Request, *, principal: Principal, body: UrgeIn) -> Any:
    """One urge per unit and item in 12 hours, whoever urges: a second answers 429 urge_too_soon
    with next_allowed_at and a Retry-After header."""
    return await supervision.urge(principal, item_id=path_int(request, "item_id"),
                                  unit_id=body.unit_id, note=body.note)
