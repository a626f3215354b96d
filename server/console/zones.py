"""Console pages: a zone's year (rotation calendar, "three ones", plans, handovers) and the
regular meetings."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.console.web import (
    FormErrors,
    int_or_none,
    page,
    parse,
    refusals,
    render,
)
from server.schemas.ledger import SubsidyApproveIn, SubsidyRejectIn
from server.schemas.rotations import DutyChangeIn, DutyOrderIn
from services import (
    clock,
    compliance,
    handovers,
    ledger,
    org,
    plans,
    rotations,
    subsidies,
)
from services.console import Session
from services.errors import Forbidden

routes = web.RouteTableDef()
CATEGORIES = {"duty_unit": "值班单位出资", "member_unit": "成员单位筹集", "committee_subsidy": "工委补助",
              "campaign": "募集转入", "other_income": "其他收入", "venue_rent": "场地租金",
              "materials": "物料", "event_costs": "活动费用", "other_expense": "其他支出"}
PLAN_STATES = {"draft": "草拟中", "submitted": "已提交", "filed": "已备案", "returned": "已退回"}


async def _zone(request: web.Request, session: Session, *, errors: dict[str, str] | None = None,
                done: str = "", status: int = 200) -> web.StreamResponse:
    """Everyone signed in sees a zone and its calendar (as GET /zones/{id} and its rotations);
    plans and handovers show where the person may read them (the services decide)."""
    principal = session.principal
    zone_id = int(request.match_info["zone_id"])
    zone = await org.get_zone(zone_id)
    year = clock.quarter_of(clock.now())[0]
    rows: list[dict[str, Any]] = []
    for rotation in await rotations.list_rotations(zone_id, year=year):
        row: dict[str, Any] = {"rotation": rotation, "status": await compliance.rotation_status(rotation),
                               "plan": None, "handover": None}
        try:
            row["plan"] = await plans.get(principal, rotation.id)
        except Forbidden:
            pass
        try:
            row["handover"] = await handovers.get(principal, rotation.id)
        except Forbidden:
            pass
        rows.append(row)
    return render(request, "zone.html", session, status=status, zone=zone, year=year, rows=rows,
                  plan_states=PLAN_STATES, now=clock.now(), errors=errors or {}, done=done)


@routes.get(r"/console/zones/{zone_id:\d{1,9}}")
@page
async def zone_page(request: web.Request, session: Session) -> web.StreamResponse:
    return await _zone(request, session)


@routes.post(r"/console/zones/{zone_id:\d{1,9}}/duty-order")
@page
async def set_duty_order(request: web.Request, session: Session) -> web.StreamResponse:
    """The committee reorders the zone's rotation (as PUT /zones/{id}/duty-order): each unit
    has a position box; units are taken in the order of their positions (ties keep today's
    order). Rotations not yet started follow."""
    form = await request.post()
    positions: list[tuple[int, int, int]] = []
    bad: dict[str, str] = {}
    for index, unit in enumerate(form.getall("unit", [])):
        unit_text = str(unit)
        pos = str(form.get(f"pos-{unit_text}", "")).strip()
        if not unit_text.isdigit() or not pos.isdigit():
            bad["unit_ids"] = "每个单位须填写顺序号（正整数）"
            continue
        positions.append((int(pos), index, int(unit_text)))
    try:
        if bad:
            raise FormErrors(bad)
        body = parse(DutyOrderIn, {"unit_ids": [u for _, _, u in sorted(positions)]})
        with refusals():
            await rotations.reorder(session.principal, zone_id=int(request.match_info["zone_id"]),
                                    unit_ids=body.unit_ids)
    except FormErrors as exc:
        return await _zone(request, session, errors=exc.fields, status=exc.status)
    return await _zone(request, session, done="轮值顺序已更新，未开始的轮值已按新顺序排定")


@routes.post(r"/console/zones/{zone_id:\d{1,9}}/duty-change")
@page
async def change_duty(request: web.Request, session: Session) -> web.StreamResponse:
    """The committee hands the rest of the current quarter to another unit of the zone (as POST
    /zones/{id}/duty-change): kept in history, the new unit's admins told, duty powers moved."""
    form = await request.post()
    try:
        body = parse(DutyChangeIn, {"unit_id": int_or_none(str(form.get("unit_id", ""))),
                                    "reason": str(form.get("reason", ""))})
        with refusals(fields={"unit_not_found": "unit_id", "unit_not_in_zone": "unit_id",
                              "already_on_duty": "unit_id"}):
            rotation = await rotations.change_duty_unit(
                session.principal, zone_id=int(request.match_info["zone_id"]),
                unit_id=body.unit_id, reason=body.reason)
    except FormErrors as exc:
        return await _zone(request, session, errors=exc.fields, status=exc.status)
    names = await org.unit_names({rotation.unit_id})
    return await _zone(request, session, done=f"本季度余下时间改由{names.get(rotation.unit_id, '')}值班")


# -- a zone's fund ledger and its subsidy approvals ------------------------------------------------

async def _funds(request: web.Request, session: Session, *, errors: dict[str, str] | None = None,
                 done: str = "", status: int = 200) -> web.StreamResponse:
    book = await ledger.ledger(session.principal, zone_id=int(request.match_info["zone_id"]), year=None)
    return render(request, "zone_funds.html", session, status=status, book=book,
                  categories=CATEGORIES, errors=errors or {}, done=done)


@routes.get(r"/console/zones/{zone_id:\d{1,9}}/funds")
@page
async def zone_funds(request: web.Request, session: Session) -> web.StreamResponse:
    return await _funds(request, session)


@routes.post(r"/console/zones/{zone_id:\d{1,9}}/funds/{entry_id:\d{1,9}}/{decision:approve|reject}")
@page
async def decide_subsidy(request: web.Request, session: Session) -> web.StreamResponse:
    form = await request.post()
    zone_id, entry_id = int(request.match_info["zone_id"]), int(request.match_info["entry_id"])
    approve = request.match_info["decision"] == "approve"
    try:
        body = parse(SubsidyApproveIn if approve else SubsidyRejectIn, {"note": str(form.get("note", ""))})
        with refusals(fields={"self_approval": "note"}):  # four eyes: beside the note, not the page
            decide = subsidies.approve if approve else subsidies.reject
            await decide(session.principal, zone_id=zone_id, entry_id=entry_id, note=body.note)
    except FormErrors as exc:
        return await _funds(request, session, status=exc.status,
                            errors={f"{entry_id}-{k}": v for k, v in exc.fields.items()})
    return await _funds(request, session, done="补助已批准并入账" if approve else "补助申请已驳回")
