"""Console pages: re-partitioning proposals, a rotation's work plan and handover, the regular
meetings' writing. Each form is parsed by the API's request model and calls the API's service."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.console.web import (
    FormErrors,
    int_or_none,
    local_instant,
    page,
    parse,
    refusals,
    render,
    yuan_to_fen,
)
from server.schemas.governance import (
    DeploymentIn,
    HandoverIn,
    MeetingCloseIn,
    MeetingIn,
    MeetingTextIn,
)
from server.schemas.plans import PlanCommentIn, PlanDecisionIn, PlanIn
from server.schemas.zoning import ApplyIn, ProposeIn
from services import clock, handovers, meetings, org, plans, zoning
from services.console import Session
from services.errors import Forbidden
from services.partition import PartitionInfeasible

routes = web.RouteTableDef()
PLAN_STATES = {"draft": "草拟中", "submitted": "已提交", "filed": "已备案", "returned": "已退回"}
EVENT_KINDS = {"submitted": "提交备案", "filed": "已备案", "returned": "退回修改", "commented": "意见"}
KINDS = {"party_lesson": "党课", "party_activity": "党建活动", "handover_meeting": "交接会",
         "regular_meeting": "例会", "contest": "比赛", "culture_sports": "文体活动",
         "volunteer": "志愿服务", "other": "其他"}
MEASURES = [("members_cv", "党员数离散系数"), ("strength_cv", "党建评分离散系数"),
            ("dominant_nature_share", "主导单位性质占比"), ("districts_per_zone", "每区行政区数"),
            ("new_pair_share", "新结对比例"), ("min_units", "最少单位数"), ("max_units", "最多单位数"),
            ("objective", "目标函数（越低越好）")]
ITEM_ROWS = 4


def _id(request: web.Request, name: str) -> int:
    return int(request.match_info[name])


# -- re-partitioning (the committee) ------------------------------------------------------------

async def _partitions(request: web.Request, session: Session, *, errors: dict[str, str] | None = None,
                      done: str = "", status: int = 200) -> web.StreamResponse:
    proposals = await zoning.list_proposals(session.principal)  # refuses all but the committee
    detail = {p["id"]: await zoning.get_proposal(session.principal, p["id"]) for p in proposals[:5]}
    year, quarter = clock.quarter_of(clock.now())
    following = f"{year + 1}Q1" if quarter == 4 else f"{year}Q{quarter + 1}"
    return render(request, "partitions.html", session, status=status, proposals=proposals,
                  detail=detail, measures=MEASURES, errors=errors or {}, done=done,
                  next_quarter=following)


@routes.get("/console/partitions")
@page
async def partitions_page(request: web.Request, session: Session) -> web.StreamResponse:
    return await _partitions(request, session)


@routes.post("/console/partitions")
@page
async def propose(request: web.Request, session: Session) -> web.StreamResponse:
    """As POST /partitions: the solver runs in its own process; the proposal is kept, not applied."""
    form = await request.post()
    data: dict[str, Any] = {"seed": int_or_none(str(form.get("seed", ""))) or 0}
    zones = int_or_none(str(form.get("zones", "")))
    if zones is not None:
        data["zones"] = zones
    try:
        body = parse(ProposeIn, data)
        with refusals(fields={PartitionInfeasible.code: "zones",
                              zoning.SolverUnavailable.code: "seed"}):
            made = await zoning.propose(session.principal, seed=body.seed, zones=body.zones,
                                        time_budget_s=body.time_budget_s)
    except FormErrors as exc:
        return await _partitions(request, session, errors=exc.fields, status=exc.status)
    return await _partitions(request, session, done=f"已生成方案 #{made['id']}（未应用）")


@routes.post(r"/console/partitions/{partition_id:\d{1,9}}/apply")
@page
async def apply(request: web.Request, session: Session) -> web.StreamResponse:
    """As POST /partitions/{id}/apply: from a quarter not yet started."""
    form = await request.post()
    proposal_id = _id(request, "partition_id")
    try:
        body = parse(ApplyIn, {"from_quarter": str(form.get("from_quarter", "")).strip()})
        with refusals(fields=dict.fromkeys(
                (zoning.PartitionApplied.code, zoning.PartitionPending.code, zoning.PartitionStale.code,
                 zoning.QuarterStarted.code, "year_out_of_range"), "from_quarter")):
            await zoning.apply(session.principal, proposal_id, from_quarter=body.from_quarter)
    except FormErrors as exc:
        return await _partitions(request, session, status=exc.status,
                                 errors={f"{proposal_id}-{k}": v for k, v in exc.fields.items()})
    return await _partitions(request, session,
                             done=f"方案 #{proposal_id} 已从 {body.from_quarter.upper()} 起应用，轮值已重排")


# -- a rotation: its work plan and its handover ----------------------------------------------------

async def _rotation(request: web.Request, session: Session, *, errors: dict[str, str] | None = None,
                    done: str = "", form: dict[str, Any] | None = None,
                    status: int = 200) -> web.StreamResponse:
    principal = session.principal
    rotation_id = _id(request, "rotation_id")
    plan = handover = None
    try:
        plan = await plans.get(principal, rotation_id)
    except Forbidden:
        pass
    try:
        handover = await handovers.get(principal, rotation_id)
    except Forbidden:
        pass
    if plan is None and handover is None:
        raise Forbidden()
    rotation = await plans.rotation_or_raise(rotation_id, related=("unit", "zone"))
    current = plan["current"] if plan else None
    if form is None:
        form = {"goals": current.goals if current else "", "note": current.note if current else "",
                "budget": f"{current.budget_fen / 100:.2f}" if current else "",
                "items": [dict(i) for i in current.items] if current else []}
    items = list(form.get("items", []))
    items += [{"kind": "", "title": "", "date": "", "note": ""}] * max(0, ITEM_ROWS - len(items))
    return render(request, "rotation.html", session, status=status, rotation=rotation, plan=plan,
                  handover=handover, duty_admin=plans.is_duty_admin(principal, rotation),
                  side=(await handovers.side_of(principal, rotation,
                                                await handovers.next_rotation(rotation))),
                  plan_states=PLAN_STATES, kinds=KINDS, event_kinds=EVENT_KINDS, form=form, items=items,
                  errors=errors or {}, done=done, now=clock.now())


@routes.get(r"/console/rotations/{rotation_id:\d{1,9}}")
@page
async def rotation_page(request: web.Request, session: Session) -> web.StreamResponse:
    return await _rotation(request, session)


@routes.post(r"/console/rotations/{rotation_id:\d{1,9}}/plan")
@page
async def save_plan(request: web.Request, session: Session) -> web.StreamResponse:
    """As PUT /rotations/{id}/plan (the duty unit drafts; a new version when it changed); with
    `submit` it then submits it, as POST .../plan/submit."""
    form = await request.post()
    items = []
    for i in range(ITEM_ROWS):
        row = {k: str(form.get(f"item-{i}-{k}", "")).strip() for k in ("kind", "title", "date", "note")}
        if row["title"] or row["date"]:
            items.append(row)
    raw = {"goals": str(form.get("goals", "")), "note": str(form.get("note", "")),
           "budget": str(form.get("budget", "")), "items": items}
    rotation_id = _id(request, "rotation_id")
    try:
        body = parse(PlanIn, {"goals": raw["goals"], "note": raw["note"], "budget_fen": yuan_to_fen(raw["budget"]),
                              "items": items})
        with refusals():
            await plans.save(session.principal, rotation_id, goals=body.goals,
                             items=[i.model_dump() for i in body.items],
                             budget_fen=body.budget_fen, note=body.note)
            if form.get("submit"):
                await plans.submit(session.principal, rotation_id)
    except FormErrors as exc:
        fields = {("budget" if k == "budget_fen" else k): v for k, v in exc.fields.items()}
        return await _rotation(request, session, errors=fields, form=raw, status=exc.status)
    return await _rotation(request, session, done="工作计划已提交备案" if form.get("submit") else "工作计划已保存")


@routes.post(r"/console/rotations/{rotation_id:\d{1,9}}/plan/submit")
@page
async def submit_plan(request: web.Request, session: Session) -> web.StreamResponse:
    try:
        with refusals(fields={"plan_not_started": "goals", "illegal_transition": "goals"}):
            await plans.submit(session.principal, _id(request, "rotation_id"))
    except FormErrors as exc:
        return await _rotation(request, session, errors=exc.fields, status=exc.status)
    return await _rotation(request, session, done="工作计划已提交备案")


@routes.post(r"/console/rotations/{rotation_id:\d{1,9}}/plan/comments")
@page
async def comment_plan(request: web.Request, session: Session) -> web.StreamResponse:
    form = await request.post()
    try:
        body = parse(PlanCommentIn, {"body": str(form.get("body", ""))})
        with refusals(fields={"plan_not_started": "body", "illegal_transition": "body"}):
            await plans.comment(session.principal, _id(request, "rotation_id"), body=body.body)
    except FormErrors as exc:
        return await _rotation(request, session, errors=exc.fields, status=exc.status)
    return await _rotation(request, session, done="意见已发表")


@routes.post(r"/console/rotations/{rotation_id:\d{1,9}}/plan/decision")
@page
async def decide_plan(request: web.Request, session: Session) -> web.StreamResponse:
    """As POST .../plan/file: staff file (备案) the submitted plan or return it with comments."""
    form = await request.post()
    try:
        body = parse(PlanDecisionIn, {"decision": str(form.get("decision", "")),
                                      "comment": str(form.get("comment", ""))})
        with refusals(fields={"plan_not_started": "decision",
                              "illegal_transition": "decision"}):
            await plans.decide(session.principal, _id(request, "rotation_id"), decision=body.decision,
                               comment=body.comment)
    except FormErrors as exc:
        return await _rotation(request, session, errors=exc.fields, status=exc.status)
    return await _rotation(request, session, done="已备案" if body.decision == "file" else "已退回修改")


@routes.post(r"/console/rotations/{rotation_id:\d{1,9}}/handover")
@page
async def handover(request: web.Request, session: Session) -> web.StreamResponse:
    """As POST /rotations/{id}/handover: the outgoing unit writes its note, the incoming one its
    plan; `confirm` by the unit's admin or 书记."""
    form = await request.post()
    data: dict[str, Any] = {"confirm": form.get("confirm") == "1"}
    for name in ("note", "plan"):
        if name in form:
            data[name] = str(form.get(name, ""))
    try:
        body = parse(HandoverIn, data)
        with refusals(fields={"handover_not_open": "handover", "handover_confirmed": "handover",
                              "not_handover_party": "handover"}):
            await handovers.record(session.principal, _id(request, "rotation_id"), note=body.note,
                                   plan=body.plan, confirm=body.confirm)
    except FormErrors as exc:
        return await _rotation(request, session, errors=exc.fields, status=exc.status)
    return await _rotation(request, session, done="交接已确认" if body.confirm else "交接内容已保存")


# -- regular meetings --------------------------------------------------------------------------------

async def _meetings(request: web.Request, session: Session, *, errors: dict[str, str] | None = None,
                    form: dict[str, Any] | None = None, done: str = "", status: int = 200) -> web.StreamResponse:
    found = await meetings.list_meetings(session.principal, year=None)
    year, quarter = clock.quarter_of(clock.now())
    return render(request, "meetings.html", session, status=status, meetings=found, errors=errors or {},
                  form=form or {"year": year, "quarter": quarter}, done=done)


@routes.get("/console/meetings")
@page
async def meetings_page(request: web.Request, session: Session) -> web.StreamResponse:
    return await _meetings(request, session)


@routes.post("/console/meetings")
@page
async def schedule(request: web.Request, session: Session) -> web.StreamResponse:
    form = await request.post()
    raw = {k: str(form.get(k, "")) for k in ("year", "quarter", "title", "starts_at", "place")}
    try:
        body = parse(MeetingIn, {"year": int_or_none(raw["year"]), "quarter": int_or_none(raw["quarter"]),
                                 "title": raw["title"], "starts_at": local_instant(raw["starts_at"]),
                                 "place": raw["place"]})
        with refusals(fields={"meeting_exists": "quarter"}):
            made = await meetings.schedule(session.principal, year=body.year, quarter=body.quarter,
                                           title=body.title, starts_at=body.starts_at, place=body.place)
    except FormErrors as exc:
        return await _meetings(request, session, errors=exc.fields, form=raw, status=exc.status)
    raise web.HTTPSeeOther(f"/console/meetings/{made['id']}")


async def _meeting(request: web.Request, session: Session, *, errors: dict[str, str] | None = None,
                   done: str = "", status: int = 200) -> web.StreamResponse:
    meeting = await meetings.get(session.principal, _id(request, "meeting_id"))
    zones = await org.list_zones()
    return render(request, "meeting.html", session, status=status, m=meeting, zones=zones,
                  errors=errors or {}, done=done)


@routes.get(r"/console/meetings/{meeting_id:\d{1,9}}")
@page
async def meeting_page(request: web.Request, session: Session) -> web.StreamResponse:
    return await _meeting(request, session)


@routes.post(r"/console/meetings/{meeting_id:\d{1,9}}/zones/{zone_id:\d{1,9}}/{part:report|comments}")
@page
async def zone_text(request: web.Request, session: Session) -> web.StreamResponse:
    """The duty unit's report (PUT .../report) or the committee's comments (PUT .../comments)."""
    form = await request.post()
    zone_id, part = _id(request, "zone_id"), request.match_info["part"]
    try:
        body = parse(MeetingTextIn, {"text": str(form.get("text", ""))})
        write = meetings.report if part == "report" else meetings.comment
        with refusals(fields={"not_at_meeting": "text", "illegal_transition": "text"}):
            await write(session.principal, _id(request, "meeting_id"), zone_id, text=body.text)
    except FormErrors as exc:
        return await _meeting(request, session, status=exc.status,
                              errors={f"{part}-{zone_id}-{k}": v for k, v in exc.fields.items()})
    return await _meeting(request, session, done="汇报已保存" if part == "report" else "讲评已保存，值班单位已收到通知")


@routes.post(r"/console/meetings/{meeting_id:\d{1,9}}/deployments")
@page
async def deploy(request: web.Request, session: Session) -> web.StreamResponse:
    form = await request.post()
    zone_ids = [int_or_none(str(z)) for z in form.getall("zone_ids", []) if str(z).strip()]
    try:
        body = parse(DeploymentIn, {"title": str(form.get("title", "")), "detail": str(form.get("detail", "")),
                                    "due_at": local_instant(str(form.get("due_at", ""))), "zone_ids": zone_ids})
        with refusals(fields={"no_units": "zone_ids"}):
            await meetings.deploy(session.principal, _id(request, "meeting_id"), title=body.title,
                                  detail=body.detail, due_at=body.due_at, zone_ids=body.zone_ids)
    except FormErrors as exc:
        return await _meeting(request, session, status=exc.status,
                              errors={f"deploy-{k}": v for k, v in exc.fields.items()})
    return await _meeting(request, session, done="部署事项已转为督办")


@routes.post(r"/console/meetings/{meeting_id:\d{1,9}}/close")
@page
async def close(request: web.Request, session: Session) -> web.StreamResponse:
    form = await request.post()
    try:
        body = parse(MeetingCloseIn, {"minutes": str(form.get("minutes", ""))})
        with refusals(fields={"illegal_transition": "minutes"}):
            await meetings.close(session.principal, _id(request, "meeting_id"), minutes=body.minutes)
    except FormErrors as exc:
        return await _meeting(request, session, status=exc.status,
                              errors={f"close-{k}": v for k, v in exc.fields.items()})
    return await _meeting(request, session, done="例会已结束，纪要已记录")
