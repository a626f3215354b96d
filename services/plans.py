"""The duty unit's quarterly work plan (工作计划): drafted in versions, discussed by the zone's
member units (商讨), submitted, then filed (备案) or returned by the committee. Every version is
kept. The 2-4 activities guideline warns both ways: a plan of more than four, and fewer than two
held three weeks before the quarter ends (a daily job)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from models.activities import Activity, ActivityStatus
from models.governance import (
    PlanEvent,
    PlanEventKind,
    PlanState,
    RotationWarning,
    WorkPlan,
    WorkPlanVersion,
)
from models.org import Rotation, Unit
from services import audit, clock, inbox
from services.activities import GUIDELINE_MAX_PER_ROTATION
from services.auth import Principal
from services.errors import (
    Forbidden,
    IllegalTransition,
    InvalidInput,
    PlanNotStarted,
    RotationNotFound,
    RotationOver,
)

GUIDELINE_MIN_HELD = 2
FEW_HELD_BEFORE_END = timedelta(days=21)
PLAN_DUE_AFTER_START = timedelta(days=15)  # a plan submitted by then counts as on time


async def rotation_or_raise(rotation_id: int, *, related: tuple[str, ...] = ()) -> Rotation:
    """The rotation, with `related` ("unit", "zone") fetched in the same query."""
    rotation = await Rotation.get_or_none(id=rotation_id).select_related(*related)
    if rotation is None:
        raise RotationNotFound(rotation_id=rotation_id)
    return rotation


def is_duty_admin(principal: Principal, rotation: Rotation) -> bool:
    return principal.is_unit_admin and principal.unit_id == rotation.unit_id


async def check_reads(principal: Principal, rotation: Rotation) -> None:
    """Staff of the zone, and the admins of the zone's units (they discuss the plan)."""
    if principal.governs(rotation.zone_id):
        return
    if principal.is_unit_admin and principal.unit_id is not None and \
            await Unit.exists(id=principal.unit_id, zone_id=rotation.zone_id):
        return
    if is_duty_admin(principal, rotation):  # a unit since moved to another zone
        return
    raise Forbidden()


def guideline_warnings(items: list[dict[str, Any]]) -> list[str]:
    return ["over_guideline"] if len(items) > GUIDELINE_MAX_PER_ROTATION else []


async def plan_view(rotation: Rotation) -> dict[str, Any]:
    """The plan of a rotation as everyone sees it (an empty draft when nothing is written yet)."""
    plan = await WorkPlan.get_or_none(rotation_id=rotation.id)
    versions = await WorkPlanVersion.filter(plan_id=plan.id) if plan else []
    events = await PlanEvent.filter(plan_id=plan.id) if plan else []
    latest = versions[-1] if versions else None
    return {
        "rotation_id": rotation.id, "zone_id": rotation.zone_id, "unit_id": rotation.unit_id,
        "year": rotation.year, "quarter": rotation.quarter,
        "state": plan.state.value if plan else PlanState.DRAFT.value,
        "version": plan.version if plan else 0,
        "submitted_at": plan.submitted_at if plan else None,
        "decided_at": plan.decided_at if plan else None,
        "decision_comment": plan.decision_comment if plan else "",
        "filed_version": plan.filed_version if plan else None,
        "due_at": rotation.starts_at + PLAN_DUE_AFTER_START,
        "current": latest, "versions": versions, "events": events,
        "warnings": guideline_warnings(latest.items) if latest else [],
    }


async def get(principal: Principal, rotation_id: int) -> dict[str, Any]:
    rotation = await rotation_or_raise(rotation_id)
    await check_reads(principal, rotation)
    return await plan_view(rotation)


async def save(principal: Principal, rotation_id: int, *, goals: str, items: list[dict[str, Any]],
               budget_fen: int, note: str) -> dict[str, Any]:
    """The duty unit writes its plan, before or during its quarter: a new version when the
    content changed (the same content again changes nothing). A submitted or filed plan is not
    edited; a returned one goes back to draft with the new version."""
    rotation = await rotation_or_raise(rotation_id)
    if not is_duty_admin(principal, rotation):
        raise Forbidden("只有该轮值单位的管理员可以编写工作计划")
    if rotation.ends_at <= clock.now():
        raise RotationOver(rotation_id=rotation.id)
    for i, item in enumerate(items):
        if not rotation.starts_at.date() - timedelta(days=1) <= item["date"] <= rotation.ends_at.date():
            raise InvalidInput(errors=[{"loc": ["body", "items", i, "date"], "type": "value_error",
                                        "msg": "计划活动的日期须在本轮值季度内"}])
    content = {"goals": goals, "items": [{**i, "date": i["date"].isoformat()} for i in items],
               "budget_fen": budget_fen, "note": note}
    async with in_transaction():
        try:
            plan, _ = await WorkPlan.get_or_create(
                rotation_id=rotation.id,
                defaults={"zone_id": rotation.zone_id, "unit_id": rotation.unit_id})
        except IntegrityError:  # created at the same moment by another request
            plan = await WorkPlan.get(rotation_id=rotation.id)
        plan = await WorkPlan.select_for_update().get(id=plan.id)
        if plan.state in (PlanState.SUBMITTED, PlanState.FILED):
            raise IllegalTransition(state=plan.state.value, action="edit")
        latest = await WorkPlanVersion.filter(plan_id=plan.id, version=plan.version).first()
        if latest is None or {k: getattr(latest, k) for k in content} != content:
            await WorkPlanVersion.create(plan_id=plan.id, version=plan.version + 1,
                                         author_id=principal.member_id, **content)
            await WorkPlan.filter(id=plan.id).update(version=plan.version + 1, state=PlanState.DRAFT)
    return await plan_view(rotation)


async def comment(principal: Principal, rotation_id: int, *, body: str) -> dict[str, Any]:
    """A member unit of the zone discusses the draft (商讨)."""
    rotation = await rotation_or_raise(rotation_id)
    await check_reads(principal, rotation)
    if not principal.is_unit_admin or is_duty_admin(principal, rotation):
        raise Forbidden("由网络区成员单位的管理员提出意见")
    plan = await WorkPlan.get_or_none(rotation_id=rotation.id)
    if plan is None or plan.version == 0:
        raise PlanNotStarted(rotation_id=rotation.id)
    if plan.state is not PlanState.DRAFT and plan.state is not PlanState.RETURNED:
        raise IllegalTransition(state=plan.state.value, action="comment")
    async with in_transaction():
        await PlanEvent.create(plan_id=plan.id, kind=PlanEventKind.COMMENTED, version=plan.version,
                               unit_id=principal.unit_id, author_id=principal.member_id, body=body,
                               at=clock.now())
        await inbox.send_system(
            member_ids=await inbox.unit_admin_ids([rotation.unit_id]), topic="plan.commented",
            title="成员单位对工作计划提出了意见", body=body[:200], ref_type="rotation",
            ref_id=rotation.id)
    return await plan_view(rotation)


async def submit(principal: Principal, rotation_id: int) -> dict[str, Any]:
    """The duty unit hands its latest version to the committee for filing."""
    rotation = await rotation_or_raise(rotation_id)
    if not is_duty_admin(principal, rotation):
        raise Forbidden("只有该轮值单位的管理员可以提交工作计划")
    plan = await WorkPlan.get_or_none(rotation_id=rotation.id)
    if plan is None or plan.version == 0:
        raise PlanNotStarted(rotation_id=rotation.id)
    now = clock.now()
    async with in_transaction():
        moved = await WorkPlan.filter(id=plan.id, state__in=[PlanState.DRAFT, PlanState.RETURNED]) \
            .update(state=PlanState.SUBMITTED, submitted_at=now, submitted_version=plan.version)
        if not moved:
            fresh = await WorkPlan.get(id=plan.id)
            if fresh.state is PlanState.SUBMITTED:
                return await plan_view(rotation)  # submitted already: the same answer
            raise IllegalTransition(state=fresh.state.value, action="submit")
        await PlanEvent.create(plan_id=plan.id, kind=PlanEventKind.SUBMITTED, version=plan.version,
                               unit_id=rotation.unit_id, author_id=principal.member_id, at=now)
        await inbox.send_system(
            member_ids=await inbox.staff_ids(rotation.zone_id), topic="plan.submitted",
            title="轮值单位提交了季度工作计划，请备案", ref_type="rotation", ref_id=rotation.id)
    return await plan_view(rotation)


async def decide(principal: Principal, rotation_id: int, *, decision: str, comment: str) -> dict[str, Any]:
    """The committee (or the zone's liaison) files the submitted plan (备案) or returns it with
    comments. The first decision on a submission stands; a second one is refused."""
    rotation = await rotation_or_raise(rotation_id)
    if not principal.governs(rotation.zone_id):
        raise Forbidden()
    if decision == "return" and len(comment) < 2:
        raise InvalidInput(errors=[{"loc": ["body", "comment"], "type": "value_error",
                                    "msg": "退回时须说明意见"}])
    plan = await WorkPlan.get_or_none(rotation_id=rotation.id)
    if plan is None or plan.version == 0:
        raise PlanNotStarted(rotation_id=rotation.id)
    now = clock.now()
    to = PlanState.FILED if decision == "file" else PlanState.RETURNED
    async with in_transaction():
        changes: dict[str, Any] = {"state": to, "decided_at": now, "decided_by_id": principal.member_id,
                                   "decision_comment": comment}
        if to is PlanState.FILED:
            changes["filed_version"] = plan.submitted_version
        moved = await WorkPlan.filter(id=plan.id, state=PlanState.SUBMITTED).update(**changes)
        if not moved:
            fresh = await WorkPlan.get(id=plan.id)
            raise IllegalTransition(state=fresh.state.value, action=decision)
        await PlanEvent.create(plan_id=plan.id, kind=PlanEventKind(to.value), version=plan.submitted_version or plan.version,
                               author_id=principal.member_id, body=comment, at=now)
        await audit.record(principal, f"plan.{to.value}", "rotation", rotation.id, zone_id=rotation.zone_id,
                           version=plan.submitted_version, comment=comment)
        await inbox.send_system(
            member_ids=await inbox.unit_admin_ids([rotation.unit_id]), topic=f"plan.{to.value}",
            title="季度工作计划已备案" if to is PlanState.FILED else "季度工作计划被退回，请修改后重新提交",
            body=comment, ref_type="rotation", ref_id=rotation.id)
    return await plan_view(rotation)


async def held_count(rotation: Rotation, *, at: datetime) -> int:
    return await Activity.filter(rotation_id=rotation.id, status=ActivityStatus.ACTIVE,
                                 ends_at__lte=at, checked_in__gt=0).count()


async def warn_few_held(*, at: datetime | None = None) -> int:
    """Daily job: three weeks before a rotation ends, fewer than two activities held tells its
    duty unit and the zone's liaisons — once per rotation (the unique warning row decides)."""
    at = at or clock.now()
    due = await Rotation.filter(starts_at__lte=at, ends_at__gt=at, ends_at__lte=at + FEW_HELD_BEFORE_END)
    warned = set(await RotationWarning.filter(rotation_id__in=[r.id for r in due], kind="few_held")
                 .values_list("rotation_id", flat=True))
    sent = 0
    for rotation in (r for r in due if r.id not in warned):
        held = await held_count(rotation, at=at)
        if held >= GUIDELINE_MIN_HELD:
            continue
        try:
            async with in_transaction():
                await RotationWarning.create(rotation_id=rotation.id, kind="few_held",
                                             detail={"held": held, "min": GUIDELINE_MIN_HELD})
                await inbox.send_system(
                    member_ids=[*await inbox.unit_admin_ids([rotation.unit_id]),
                                *await inbox.liaison_ids(rotation.zone_id)],
                    topic="plan.few_held", title=f"本季度仅开展了 {held} 次活动，少于 2 次的要求",
                    body=f"轮值将于 {clock.local_iso(rotation.ends_at)} 结束，请抓紧安排活动。",
                    ref_type="rotation", ref_id=rotation.id)
            sent += 1
        except IntegrityError:
            continue
    return sent
