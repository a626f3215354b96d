"""Console pages: administration (staff accounts, liaison zones, zones, invite codes) and the
work ledger with its XLSX download."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from server.console.web import (
    FormErrors,
    int_or_none,
    page,
    parse,
    refusals,
    render,
)
from server.schemas.admin import OwnPasswordIn, StaffIn, ZoneIn, ZonePatchIn
from server.schemas.work_ledger import LedgerQuery, RubricIn
from services import admin, clock, evaluation, org, work_ledger
from services.console import Session
from services.errors import Forbidden, InvalidInput

routes = web.RouteTableDef()
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _id(request: web.Request, name: str) -> int:
    return int(request.match_info[name])


async def _admin(request: web.Request, session: Session, *, errors: dict[str, str] | None = None,
                 form: dict[str, Any] | None = None, done: str = "", status: int = 200) -> web.StreamResponse:
    staff = await admin.list_staff(session.principal)  # the committee only
    return render(request, "admin.html", session, status=status, staff=staff,
                  zones=await org.list_zones(), errors=errors or {}, form=form or {}, done=done)


@routes.get("/console/admin")
@page
async def admin_page(request: web.Request, session: Session) -> web.StreamResponse:
    return await _admin(request, session)


@routes.post("/console/admin/staff")
@page
async def create_staff(request: web.Request, session: Session) -> web.StreamResponse:
    form = await request.post()
    raw = {k: str(form.get(k, "")) for k in ("username", "name", "phone", "role")}
    data: dict[str, Any] = {**raw, "zone_ids": [int(z) for z in form.getall("zone_ids", [])
                                                if str(z).isdigit()]}
    try:
        body = parse(StaffIn, data)
        with refusals(fields={"username_taken": "username",
                              "zone_not_found": "zone_ids"}):
            made = await admin.create_staff(session.principal, **body.model_dump())
    except FormErrors as exc:
        return await _admin(request, session, errors=exc.fields, form=raw, status=exc.status)
    return await _admin(request, session, done=f"已创建账号 {made.username}，初始密码：{made.password}（仅显示一次）")


@routes.post(r"/console/admin/staff/{member_id:\d{1,9}}/{action:reset|disable|enable|zones}")
@page
async def change_staff(request: web.Request, session: Session) -> web.StreamResponse:
    member_id, action = _id(request, "member_id"), request.match_info["action"]
    if action == "reset":
        view = await admin.reset_staff_password(session.principal, member_id)
        return await _admin(request, session, done=f"{view.username} 的新密码：{view.password}（仅显示一次）")
    if action == "zones":
        form = await request.post()
        zones = [int(z) for z in form.getall("zone_ids", []) if str(z).isdigit()]
        view = await admin.set_liaison_zones(session.principal, member_id, zones)
        return await _admin(request, session, done=f"{view.username} 联系的网络区已更新")
    view = await admin.set_staff_active(session.principal, member_id, active=action == "enable")
    return await _admin(request, session, done=f"{view.username} 已{'启用' if view.is_active else '停用'}")


@routes.post("/console/admin/zones")
@page
async def create_zone(request: web.Request, session: Session) -> web.StreamResponse:
    form = await request.post()
    raw = {"zone_name": str(form.get("zone_name", "")), "description": str(form.get("description", ""))}
    try:
        body = parse(ZoneIn, {"name": raw["zone_name"], "description": raw["description"]})
        with refusals(fields={"zone_name_taken": "name"}):
            zone = await admin.create_zone(session.principal, name=body.name, description=body.description)
    except FormErrors as exc:
        fields = {("zone_name" if k == "name" else k): v for k, v in exc.fields.items()}
        return await _admin(request, session, errors=fields, form=raw, status=exc.status)
    return await _admin(request, session, done=f"已创建网络区 {zone.name}")


@routes.post(r"/console/admin/zones/{zone_id:\d{1,9}}")
@page
async def rename_zone(request: web.Request, session: Session) -> web.StreamResponse:
    form = await request.post()
    zone_id = _id(request, "zone_id")
    try:
        body = parse(ZonePatchIn, {"name": str(form.get("name", ""))})
        with refusals(fields={"zone_name_taken": "name"}):
            zone = await admin.update_zone(session.principal, zone_id, name=body.name, description=None)
    except FormErrors as exc:
        return await _admin(request, session, status=exc.status,
                            errors={f"zone-{zone_id}": next(iter(exc.fields.values()))})
    return await _admin(request, session, done=f"网络区已改名为 {zone.name}")


@routes.post(r"/console/units/{unit_id:\d{1,9}}/invite-code")
@page
async def rotate_invite_code(request: web.Request, session: Session) -> web.StreamResponse:
    unit = await admin.rotate_invite_code(session.principal, _id(request, "unit_id"))
    raise web.HTTPSeeOther(f"/console/units/{unit.id}")


# -- the ledger -----------------------------------------------------------------------------------

def _ledger_query(request: web.Request) -> Any:
    q = request.query
    return parse(LedgerQuery, {"year": int_or_none(q.get("year", "")),
                               "zone_id": int_or_none(q.get("zone_id", "")),
                               "unit_id": int_or_none(q.get("unit_id", ""))})


@routes.get("/console/ledger")
@page
async def ledger_page(request: web.Request, session: Session) -> web.StreamResponse:
    principal = session.principal
    try:
        query = _ledger_query(request)
    except FormErrors as exc:
        return render(request, "ledger.html", session, status=exc.status, book=None, errors=exc.fields,
                      zones=await org.list_zones(), query={})
    zone_id, unit_id = query.zone_id, query.unit_id
    if zone_id is None and unit_id is None:  # each role's own scope by default
        if principal.is_liaison and principal.liaison_zone_ids:
            zone_id = min(principal.liaison_zone_ids)
        elif principal.is_unit_admin:
            unit_id = principal.unit_id
    year = query.year or clock.quarter_of(clock.now())[0]
    book = await work_ledger.book(principal, year=year, zone_id=zone_id, unit_id=unit_id)
    return render(request, "ledger.html", session, book=book, errors={}, zones=await org.list_zones(),
                  query={"year": year, "zone_id": zone_id, "unit_id": unit_id})


@routes.get("/console/ledger.xlsx")
@page
async def ledger_download(request: web.Request, session: Session) -> web.StreamResponse:
    try:
        query = _ledger_query(request)
    except FormErrors as exc:
        raise InvalidInput(next(iter(exc.fields.values()))) from None
    year = query.year or clock.quarter_of(clock.now())[0]
    name, body = await work_ledger.workbook(session.principal, year=year, zone_id=query.zone_id,
                                            unit_id=query.unit_id)
    return web.Response(body=body, headers={
        "Content-Type": XLSX, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"})


# -- the year-end evaluation ----------------------------------------------------------------------

def _year(text: str) -> int:
    year = int_or_none(text)
    if not isinstance(year, int) or not 2000 <= year <= 2099:
        year = clock.quarter_of(clock.now())[0]
    return year


async def _evaluation(request: web.Request, session: Session, year: int, *,
                      errors: dict[str, str] | None = None, done: str = "",
                      form: dict[str, str] | None = None, status: int = 200) -> web.StreamResponse:
    result = await evaluation.get(session.principal, year)
    return render(request, "evaluation.html", session, status=status, result=result, year=year,
                  errors=errors or {}, done=done, form=form)


@routes.get("/console/evaluation")
@page
async def evaluation_page(request: web.Request, session: Session) -> web.StreamResponse:
    """Scores and ranks of units and zones under the year's rubric (staff), with the ledger's
    workbook beside them."""
    return await _evaluation(request, session, _year(request.query.get("year", "")))


@routes.post("/console/evaluation/rubric")
@page
async def set_rubric(request: web.Request, session: Session) -> web.StreamResponse:
    """As PUT /evaluations/{year}/rubric (the committee): a weight per metric, 1 to 100; empty or
    0 leaves the metric out. The year is recomputed and stored."""
    form = await request.post()
    year = _year(str(form.get("year", "")))
    raw = {k[len("weight-"):]: str(v).strip() for k, v in form.items() if k.startswith("weight-")}
    weights = {k: int_or_none(v) for k, v in raw.items() if v not in ("", "0")}
    try:
        body = parse(RubricIn, {"weights": weights})
        with refusals():
            await evaluation.set_rubric(session.principal, year, dict(body.weights))
    except FormErrors as exc:
        return await _evaluation(request, session, year, errors=exc.fields, form=raw, status=exc.status)
    return await _evaluation(request, session, year, done="考核权重已保存，本年度已按新权重重新计算")


# -- a unit admin's own console password --------------------------------------------------------

@routes.get("/console/account")
@page
async def account_page(request: web.Request, session: Session) -> web.StreamResponse:
    if not session.principal.is_unit_admin:
        raise Forbidden()
    return render(request, "account.html", session, errors={}, form={}, done="")


@routes.post("/console/account")
@page
async def set_own_password(request: web.Request, session: Session) -> web.StreamResponse:
    form = await request.post()
    raw = {k: str(form.get(k, "")) for k in ("username", "password", "current_password")}
    data = {**raw, "current_password": raw["current_password"] or None}
    try:
        body = parse(OwnPasswordIn, data)
        with refusals(fields={"username_taken": "username",
                              "current_password_wrong": "current_password"}):
            done = await admin.set_own_password(session.principal, **body.model_dump())
    except FormErrors as exc:
        return render(request, "account.html", session, status=exc.status, errors=exc.fields,
                      form={"username": raw["username"]}, done="")
    if done["sessions_ended"]:
        raise web.HTTPSeeOther("/console/login")
    return render(request, "account.html", session, errors={}, form={"username": done["username"]},
                  done=f"已设置。可用用户名 {done['username']} 和密码登录控制台。")
