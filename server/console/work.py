"""Console pages: activities (check-in screen included), supervision, funds, zones and units,
the audit log. Each calls the services the API calls, with the same scope checks."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from server.console.pages import _stream
from server.console.web import (
    FormErrors,
    action_filter,
    before,
    int_or_none,
    local_instant,
    page,
    pager,
    parse,
    refusals,
    render,
    zone_filter,
)
from server.keys import SETTINGS
from server.schemas.activities import ActivityIn, ActivityPatch, CancelIn
from server.schemas.admin import MemberPatchIn
from server.schemas.records import RecordIn
from server.schemas.supervision import ReviewIn, UrgeIn
from services import (
    activities,
    admin,
    attendance,
    audit,
    checkins,
    clock,
    contributions,
    dashboard,
    files,
    org,
    records,
    signups,
    storage,
    supervision,
    supervision_board,
)
from services.console import Session
from services.errors import AttachmentRejected, ServiceError

routes = web.RouteTableDef()
KINDS = {"party_lesson": "党课", "party_activity": "党建活动", "handover_meeting": "交接会",
         "regular_meeting": "例会", "contest": "比赛", "culture_sports": "文体活动",
         "volunteer": "志愿服务", "other": "其他"}


def _id(request: web.Request, name: str) -> int:
    return int(request.match_info[name])


# -- activities -----------------------------------------------------------------------------------

async def _activities(request: web.Request, session: Session, *, errors: dict[str, str] | None = None,
                      form: dict[str, Any] | None = None, status: int = 200) -> web.StreamResponse:
    found = await activities.list_activities(session.principal, zone_id=None, kind=None,
                                             start=None, end=None, limit=100)
    zones = await org.list_zones()
    scope = dashboard.zone_scope(session.principal)
    if scope is not None:
        zones = [z for z in zones if z.id in scope]
    return render(request, "activities.html", session, status=status, items=found["items"],
                  zones=zones, kinds=KINDS, errors=errors or {}, form=form or {})


@routes.get("/console/activities")
@page
async def activities_page(request: web.Request, session: Session) -> web.StreamResponse:
    return await _activities(request, session)


@routes.post("/console/activities")
@page
async def create_activity(request: web.Request, session: Session) -> web.StreamResponse:
    form = await request.post()
    raw = {k: str(form.get(k, "")) for k in ("zone_id", "kind", "title", "description", "place",
                                             "starts_at", "ends_at", "capacity")}
    data: dict[str, Any] = {"zone_id": int_or_none(raw["zone_id"]), "kind": raw["kind"],
                            "title": raw["title"], "description": raw["description"],
                            "place": raw["place"], "starts_at": local_instant(raw["starts_at"]),
                            "ends_at": local_instant(raw["ends_at"]),
                            "capacity": int_or_none(raw["capacity"]),
                            "walk_ins": bool(form.get("walk_ins"))}
    try:
        body = parse(ActivityIn, data)
        with refusals(fields={"not_on_duty": "zone_id", "no_rotation": "zone_id", "zone_not_found": "zone_id",
                              "outside_rotation": "starts_at", "audience_out_of_scope": "zone_id"}):
            created = await activities.create(session.principal, body.model_dump())
    except FormErrors as exc:
        return await _activities(request, session, errors=exc.fields, form=raw, status=exc.status)
    raise web.HTTPSeeOther(f"/console/activities/{created.id}")


async def _activity(request: web.Request, session: Session, *, errors: dict[str, str] | None = None,
                    done: str = "", form: dict[str, Any] | None = None,
                    status: int = 200) -> web.StreamResponse:
    principal = session.principal
    activity_id = _id(request, "activity_id")
    activity = await activities.get_for(principal, activity_id)
    lists = await signups.list_signups(principal, activity_id)
    present = await attendance.attendance(principal, activity_id)
    try:
        record = await records.get(principal, activity_id)
    except ServiceError:
        record = None
    return render(request, "activity.html", session, status=status, activity=activity, signups=lists,
                  kinds=KINDS, attendance=present, record=record, errors=errors or {}, done=done,
                  form=form or {}, now=clock.now(),
                  writes=principal.is_staff or principal.is_unit_admin)


@routes.get(r"/console/activities/{activity_id:\d{1,9}}")
@page
async def activity_page(request: web.Request, session: Session) -> web.StreamResponse:
    return await _activity(request, session)


@routes.post(r"/console/activities/{activity_id:\d{1,9}}/edit")
@page
async def edit_activity(request: web.Request, session: Session) -> web.StreamResponse:
    """As PATCH /activities/{id}: title, place, times, capacity (empty: unlimited), description."""
    form = await request.post()
    raw = {k: str(form.get(k, "")) for k in ("title", "place", "starts_at", "ends_at", "capacity",
                                             "description")}
    data: dict[str, Any] = {"title": raw["title"], "place": raw["place"], "description": raw["description"],
                            "starts_at": local_instant(raw["starts_at"]), "ends_at": local_instant(raw["ends_at"]),
                            "capacity": int_or_none(raw["capacity"])}
    try:
        body = parse(ActivityPatch, data)
        with refusals(fields={"capacity_below_confirmed": "capacity",
                              "outside_rotation": "starts_at"}):
            await activities.update(session.principal, _id(request, "activity_id"),
                                    body.model_dump(exclude_unset=True))
    except FormErrors as exc:
        return await _activity(request, session, status=exc.status, form=raw,
                               errors={f"edit-{k}": v for k, v in exc.fields.items()})
    return await _activity(request, session, done="活动已修改")


@routes.post(r"/console/activities/{activity_id:\d{1,9}}/cancel")
@page
async def cancel_activity(request: web.Request, session: Session) -> web.StreamResponse:
    """As POST /activities/{id}/cancel: everyone signed up is told."""
    form = await request.post()
    try:
        body = parse(CancelIn, {"reason": str(form.get("reason", ""))})
        with refusals():
            await activities.cancel(session.principal, _id(request, "activity_id"), reason=body.reason)
    except FormErrors as exc:
        return await _activity(request, session, status=exc.status,
                               errors={f"cancel-{k}": v for k, v in exc.fields.items()})
    return await _activity(request, session, done="活动已取消，已报名者已收到通知")


async def uploads(request: web.Request, session: Session, form: Any, name: str, *,
                  error_field: str) -> list[dict[str, Any]]:
    """The files of a multipart form's field `name`, stored and remembered as POST /attachments
    does, each as that answer (a refused file: its message beside `error_field`)."""
    settings = request.app[SETTINGS]
    out: list[dict[str, Any]] = []
    for field in form.getall(name, []):
        if not isinstance(field, web.FileField) or not field.filename:
            continue
        filename = unquote(field.filename)  # browsers escape " CR LF as %22 %0D %0A, aiohttp's client all
        content = field.file.read(settings.attachment_max_bytes + 1)
        try:
            if len(content) > settings.attachment_max_bytes:
                raise AttachmentRejected(reason="size", max_bytes=settings.attachment_max_bytes)
            stored = await storage.store_async(settings.files_dir, content=content,
                                               content_type=field.content_type, filename=filename,
                                               max_bytes=settings.attachment_max_bytes)
        except ServiceError as err:
            raise FormErrors({error_field: f"{filename}：{err.message}"}, status=err.http_status) from None
        out.append(asdict(await files.record_upload(session.principal, stored=stored, name=filename)))
    return out


@routes.post(r"/console/activities/{activity_id:\d{1,9}}/record")
@page
async def record_activity(request: web.Request, session: Session) -> web.StreamResponse:
    """As PUT /activities/{id}/record (after POST /attachments for each new photo): the minutes,
    the photos kept (`keep`, by their address) and the new ones uploaded here, all at once."""
    principal = session.principal
    activity_id = _id(request, "activity_id")
    settings = request.app[SETTINGS]
    form = await request.post()  # multipart: read once (the CSRF check read it already)
    minutes = str(form.get("minutes", ""))
    try:
        parse(RecordIn, {"minutes": minutes})  # the text first: nothing is stored for a bad form
        with refusals():
            record = await records.get(principal, activity_id)
        keep = {str(u) for u in form.getall("keep", [])}
        photos: list[dict[str, Any]] = [{"name": p["name"], "url": p["url"]} for p in record["photos"]
                                        if p["url"] in keep]
        photos += await uploads(request, session, form, "photo", error_field="photos")
        body = parse(RecordIn, {"minutes": minutes, "photos": photos})
        with refusals(fields={"not_an_image": "photos", "attachment_not_citable": "photos"}):
            await records.put(principal, activity_id, minutes=body.minutes,
                              photos=[p.model_dump() for p in body.photos], root=settings.files_dir)
    except FormErrors as exc:
        return await _activity(request, session, status=exc.status, form={"minutes": minutes},
                               errors={f"record-{k}": v for k, v in exc.fields.items()})
    return await _activity(request, session, done="活动记录已保存")


@routes.get(r"/console/activities/{activity_id:\d{1,9}}/checkin-screen")
@page
async def checkin_screen(request: web.Request, session: Session) -> web.StreamResponse:
    """Full screen for the venue projector: the code rotates every 30 s; the page fetches the
    current one every few seconds."""
    activity_id = _id(request, "activity_id")
    activity = await activities.get_for(session.principal, activity_id)
    code = await checkins.venue_code(session.principal, activity_id)
    present = await attendance.attendance(session.principal, activity_id)
    return render(request, "checkin_screen.html", session, activity=activity, code=code,
                  attendance=present)


@routes.get(r"/console/activities/{activity_id:\d{1,9}}/checkin-code")
@page
async def checkin_code(request: web.Request, session: Session) -> web.StreamResponse:
    activity_id = _id(request, "activity_id")
    code = await checkins.venue_code(session.principal, activity_id)
    present = await attendance.attendance(session.principal, activity_id)
    return render(request, "checkin_code.html", session, code=code, attendance=present)


# -- supervision ----------------------------------------------------------------------------------

@routes.get("/console/supervision")
@page
async def supervision_page(request: web.Request, session: Session) -> web.StreamResponse:
    zone_id = zone_filter(request)
    board = await supervision_board.list_items(session.principal, limit=100, cursor=before(request),
                                               zone_id=zone_id)
    zones = await org.governed_zones(session.principal)  # a unit admin sees its own zone's items
    return render(request, "supervision.html", session, items=board["items"],
                  pages=pager(request, board["next_cursor"]), zones=zones, zone_id=zone_id,
                  figures=board["dashboard"]["overall"], overdue=await dashboard.overdue(session.principal))


async def _item(request: web.Request, session: Session, *, errors: dict[str, str] | None = None,
                done: str = "", status: int = 200) -> web.StreamResponse:
    item = await supervision_board.detail(session.principal, _id(request, "item_id"))
    return render(request, "supervision_item.html", session, status=status, item=item,
                  errors=errors or {}, done=done)


@routes.get(r"/console/supervision/{item_id:\d{1,9}}")
@page
async def item_page(request: web.Request, session: Session) -> web.StreamResponse:
    return await _item(request, session)


@routes.post(r"/console/supervision/{item_id:\d{1,9}}/urge")
@page
async def urge(request: web.Request, session: Session) -> web.StreamResponse:
    form = await request.post()
    unit = int_or_none(str(form.get("unit_id", "")))
    try:
        body = parse(UrgeIn, {"unit_id": unit, "note": str(form.get("note", ""))})
        with refusals(fields={"urge_too_soon": "note"}):
            await supervision.urge(session.principal, item_id=_id(request, "item_id"),
                                   unit_id=body.unit_id, note=body.note)
    except FormErrors as exc:
        return await _item(request, session, errors={f"urge-{unit}-{k}": v for k, v in exc.fields.items()},
                           status=exc.status)
    return await _item(request, session, done="已催办")


@routes.post(r"/console/supervision/{item_id:\d{1,9}}/review")
@page
async def review(request: web.Request, session: Session) -> web.StreamResponse:
    form = await request.post()
    unit = int_or_none(str(form.get("unit_id", "")))
    try:
        body = parse(ReviewIn, {"unit_id": unit, "accept": form.get("accept") == "1",
                                "comment": str(form.get("comment", ""))})
        with refusals():
            await supervision.review(session.principal, item_id=_id(request, "item_id"),
                                     unit_id=body.unit_id, accept=body.accept, comment=body.comment)
    except FormErrors as exc:
        return await _item(request, session,
                           errors={f"review-{unit}-{k}": v for k, v in exc.fields.items()}, status=exc.status)
    return await _item(request, session, done="已审核")


# -- funds ----------------------------------------------------------------------------------------

@routes.get(r"/console/live/funds/{campaign_id:\d{1,9}}")
@page
async def live_drive(request: web.Request, session: Session) -> web.StreamResponse:
    campaign_id = _id(request, "campaign_id")
    return await _stream(request, session, lambda: contributions.totals(session.principal, campaign_id))


# -- zones and units ------------------------------------------------------------------------------

@routes.get("/console/zones")
@page
async def zones_page(request: web.Request, session: Session) -> web.StreamResponse:
    zones = await org.list_zones()
    units = await org.list_units(session.principal) if (
        session.principal.is_staff or session.principal.is_unit_admin) else []
    return render(request, "zones.html", session, zones=zones, units=units)


async def _unit(request: web.Request, session: Session, unit_id: int, *,
                errors: dict[str, str] | None = None, done: str = "", status: int = 200) -> web.StreamResponse:
    members = await org.list_members(session.principal, unit_id=unit_id)  # refuses other units
    units = await org.list_units(session.principal)
    unit = next(u for u in units if u.id == unit_id)
    return render(request, "unit.html", session, status=status, unit=unit, members=members,
                  units=units, errors=errors or {}, done=done)


@routes.get(r"/console/units/{unit_id:\d{1,9}}")
@page
async def unit_page(request: web.Request, session: Session) -> web.StreamResponse:
    return await _unit(request, session, _id(request, "unit_id"))


@routes.post(r"/console/units/{unit_id:\d{1,9}}/members/{member_id:\d{1,9}}")
@page
async def edit_member(request: web.Request, session: Session) -> web.StreamResponse:
    """Name, phone, position, active (the unit's admin or staff); admin or not (staff governing
    the zone); moved to another unit (the committee) — as PATCH /members/{id}."""
    principal = session.principal
    unit_id, member_id = _id(request, "unit_id"), _id(request, "member_id")
    form = await request.post()
    changes: dict[str, Any] = {"name": str(form.get("name", "")), "phone": str(form.get("phone", "")),
                               "is_active": form.get("is_active") == "1"}
    if principal.is_staff and form.get("role"):
        changes["role"] = str(form.get("role"))
    moved = int_or_none(str(form.get("move_to", "")))
    if principal.is_committee and moved is not None and moved != unit_id:
        changes["unit_id"] = moved
    try:
        body = parse(MemberPatchIn, changes)
        with refusals(fields={"phone_taken": "phone", "unit_not_found": "move_to",
                              "cannot_change_self": "is_active"}):
            await admin.update_member(principal, member_id, body.model_dump(exclude_unset=True))
    except FormErrors as exc:
        return await _unit(request, session, unit_id, status=exc.status,
                           errors={f"{member_id}-{k}": v for k, v in exc.fields.items()})
    return await _unit(request, session, unit_id, done="已保存")


# -- audit log ------------------------------------------------------------------------------------

@routes.get("/console/audit")
@page
async def audit_page(request: web.Request, session: Session) -> web.StreamResponse:
    principal = session.principal
    action, zone_id = action_filter(request), zone_filter(request)
    found = await audit.page(principal, cursor=before(request), limit=100, action=action,
                             actor_id=None, target_type=None, target_id=None, zone_id=zone_id)
    zones = await org.governed_zones(principal)
    return render(request, "audit.html", session, items=found["items"],
                  pages=pager(request, found["next_cursor"]), families=await audit.families(principal),
                  zones=zones, action=action or "", zone_id=zone_id)
