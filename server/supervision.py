"""Routes: supervision items (督办): assign, report, review, urge; the list is the dashboard."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from models.supervision import Assignment, SupervisionItem
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
from services import supervision as svc
from services.access import NotOnDuty
from services.auth import Principal
from services.errors import Forbidden

router = Router()
TAGS = ["supervision"]
ID = r"/supervision-items/{item_id:\d{1,9}}"


def assignment_out(a: Assignment) -> dict[str, Any]:
    last = svc.last_fired(a.escalation_level)
    return {"item_id": a.item_id, "unit_id": a.unit_id, "unit_name": a.unit.name,
            "zone_id": a.zone_id, "state": a.state.value, "escalation_level": a.escalation_level,
            "escalation": last.value if last else None,
            "next_step": a.next_step.value if a.next_step else None, "next_step_at": a.next_step_at,
            "overdue": a.overdue_at is not None and a.state in svc.LIVE,
            "assigned_at": a.assigned_at, "submitted_at": a.submitted_at,
            "accepted_at": a.accepted_at, "urge_count": a.urge_count,
            "last_urged_at": a.last_urged_at}


def item_out(item: SupervisionItem, rows: list[Assignment], stats: dict[str, Any] | None) -> dict[str, Any]:
    return {"id": item.id, "title": item.title, "detail": item.detail,
            "attachments": item.attachments, "due_at": item.due_at, "ladder": item.ladder,
            "created_by_id": item.created_by_id, "created_at": item.created_at,
            "stats": stats, "assignments": [assignment_out(a) for a in rows]}


async def _assignment_out(a: Assignment) -> dict[str, Any]:
    await a.fetch_related("unit")
    return assignment_out(a)


@router.route("POST", "/supervision-items", access=Access.STAFF, body=ItemIn,
              response=ItemOut, status=201, tags=TAGS,
              errors=[svc.UnitNotFound, svc.ZoneNotFound, svc.NoUnits],
              summary="Assign an item to units, or to every unit of zones (committee; liaisons)")
async def create_item(request: web.Request, *, principal: Principal, body: ItemIn) -> dict[str, Any]:
    """Each unit's admins are told at once. The escalation ladder defaults to a reminder 48 h
    before the due time, overdue at the due time (unit and duty unit told), the zone's liaisons
    24 h later and the committee 72 h later; `ladder` overrides any of these hours."""
    created = await svc.create(
        principal, title=body.title, detail=body.detail,
        attachments=[a.model_dump() for a in body.attachments], due_at=body.due_at,
        unit_ids=body.unit_ids, zone_ids=body.zone_ids,
        ladder=body.ladder.model_dump(exclude_none=True) if body.ladder else None)
    rows = await Assignment.filter(item_id=created.item.id).select_related("unit").order_by("unit_id")
    stats = await svc.stats(None, by=None, item_id=created.item.id)
    return item_out(created.item, rows, stats[0] if stats else None)


@router.route("GET", "/supervision-items", access=Access.UNIT_ADMIN, query=ItemsQuery,
              response=ItemsOut, tags=TAGS,
              summary="Items with per-unit status and escalation, and the dashboard per zone and unit")
async def list_items(request: web.Request, *, principal: Principal,
                     query: ItemsQuery) -> dict[str, Any]:
    """Committee: every item. Unit admin: items assigned to the unit; while on duty, also those
    assigned to units of the zone. Figures count the assignments the caller sees."""
    items, rows, scope = await svc.list_items(principal, limit=query.limit,
                                              before_id=query.before_id, zone_id=query.zone_id)
    zone = {"zone_id": query.zone_id} if query.zone_id is not None else {}
    per_item = {s["item_id"]: s for s in await svc.stats(
        scope, by="item_id", item_id__in=[i.id for i in items], **zone)}
    by_item: dict[int, list[Assignment]] = {}
    for a in rows:
        by_item.setdefault(a.item_id, []).append(a)
    return {"items": [item_out(i, by_item.get(i.id, []), per_item.get(i.id)) for i in items],
            "next_cursor": items[-1].id if len(items) == query.limit else None,
            "dashboard": await svc.dashboard(scope, **zone)}


@router.route("GET", ID, access=Access.UNIT_ADMIN, response=ItemDetailOut, tags=TAGS,
              errors=[svc.ItemNotFound],
              summary="One item: its assignments and the timeline of progress, reviews, urges and escalations")
async def get_item(request: web.Request, *, principal: Principal) -> dict[str, Any]:
    item, rows, timeline, scope = await svc.detail(principal, path_int(request, "item_id"))
    stats = await svc.stats(scope, by=None, item_id=item.id)
    return {**item_out(item, rows, stats[0] if stats else None), "timeline": timeline}


@router.route("POST", ID + "/progress", access=Access.UNIT_ADMIN, body=ProgressIn,
              response=AssignmentOut, tags=TAGS,
              errors=[svc.ItemNotFound, svc.NotAssigned, svc.IllegalTransition, Forbidden],
              summary="The assigned unit's admin reports progress, or submits with done: true")
async def report_progress(request: web.Request, *, principal: Principal,
                          body: ProgressIn) -> dict[str, Any]:
    """open or returned -> in_progress; open, in_progress or returned -> submitted (the ladder
    stops). Anything else answers 409 illegal_transition."""
    a = await svc.report(principal, item_id=path_int(request, "item_id"), unit_id=body.unit_id,
                         note=body.note, attachments=[x.model_dump() for x in body.attachments],
                         done=body.done)
    return await _assignment_out(a)


@router.route("POST", ID + "/review", access=Access.STAFF, body=ReviewIn,
              response=AssignmentOut, tags=TAGS,
              errors=[svc.ItemNotFound, svc.NotAssigned, svc.IllegalTransition],
              summary="Accept a submission, or return it with a comment (committee; liaisons)")
async def review(request: web.Request, *, principal: Principal, body: ReviewIn) -> dict[str, Any]:
    """Only a submitted assignment can be reviewed. Returning re-arms the escalation ladder at
    the first step not yet fired."""
    a = await svc.review(principal, item_id=path_int(request, "item_id"), unit_id=body.unit_id,
                         accept=body.accept, comment=body.comment)
    return await _assignment_out(a)


@router.route("POST", ID + "/urge", access=Access.UNIT_ADMIN, body=UrgeIn, response=UrgeOut,
              status=201, tags=TAGS,
              errors=[svc.ItemNotFound, svc.NotAssigned, svc.IllegalTransition, svc.UrgeTooSoon,
                      NotOnDuty],
              summary="Urge a unit (催办): its admins are told (duty unit of its zone; committee)")
async def urge(request: web.Request, *, principal: Principal, body: UrgeIn) -> dict[str, Any]:
    """One urge per unit and item in 12 hours, whoever urges: a second answers 429 urge_too_soon
    with next_allowed_at and a Retry-After header."""
    row = await svc.urge(principal, item_id=path_int(request, "item_id"), unit_id=body.unit_id,
                         note=body.note)
    return {"id": row.id, "item_id": path_int(request, "item_id"), "unit_id": body.unit_id,
            "at": row.at, "next_allowed_at": row.at + svc.URGE_INTERVAL}
