"""Demo year, running the zones: who leads each unit (书记, 副书记, 委员), every rotation's work plan
(filed in past quarters — one returned once first — and in the current quarter some still with
the committee or in draft), each past quarter's regular meeting with every zone's report and the
committee's comments, this quarter's meeting scheduled, and the handover of every finished
rotation (closed, its report the quarter as recorded; the last quarter's in one zone left open
and flagged to the liaison). Written after the activities, supervision and funds it reports on."""

from __future__ import annotations

from datetime import timedelta

from models.activities import Activity, ActivityStatus
from models.governance import (
    Handover,
    Meeting,
    MeetingState,
    MeetingZone,
    PlanEvent,
    PlanEventKind,
    PlanState,
    WorkPlan,
    WorkPlanVersion,
)
from models.org import LEADERS, Member, Rotation
from services import clock, quarter_record
from services.demo_year import Year, insert

GOALS = ["围绕学习贯彻党的二十大精神，组织网络区各成员单位开展主题党日和专题党课，推动联学联建。",
         "聚焦“三个一”要求，办好一次党课、一次党建活动和一次交接会，带动成员单位共同参与。",
         "以志愿服务和结对共建为抓手，组织成员单位走进社区，推动党建与业务深度融合。"]
REPORTS = ["本季度开展党课 {n} 次、党建活动若干次，成员单位参与踊跃，累计参加 {t} 人次。",
           "本季度按计划完成“三个一”，组织成员单位 {n} 次集中活动，累计参加 {t} 人次。"]
COMMENTS = ["活动组织有序，成员单位参与度高；下一步要注重成果转化。",
            "“三个一”落实到位，建议进一步丰富活动形式，提高青年党员参与度。",
            "台账资料较为完整，经费使用规范；请加强活动纪要的整理归档。"]
OPEN_ZONE = 5  # 第六网络区: last quarter's handover left open, flagged to the liaison


async def load(y: Year) -> None:
    await _positions(y)
    rotations = [r for r in y.rotations if r.starts_at <= y.now and r.ends_at > y.history_start]
    for r in rotations:
        await _plan(y, r)
    for year, quarter in y.quarters():
        await _meeting(y, year, quarter)


async def handovers(y: Year) -> None:
    """Every finished rotation's handover; called once everything it reports on is written."""
    rotations = [r for r in y.rotations if r.starts_at <= y.now and r.ends_at > y.history_start]
    finished = [r for r in rotations if r.ends_at <= y.now]
    last_end = max((r.ends_at for r in finished), default=None)
    for r in finished:
        leave_open = r.ends_at == last_end and r.zone_id == y.zones[OPEN_ZONE].id
        await _handover(y, r, leave_open=leave_open)


async def _positions(y: Year) -> None:
    """The first three members of each unit lead it: its 书记, 副书记 and one 委员."""
    for k, position in enumerate(LEADERS):
        ids = [ms[k] for ms in y.members.values() if len(ms) > k]
        await Member.filter(id__in=ids).update(position=position)


async def _items(rotation: Rotation) -> list[dict[str, str]]:
    """The rotation's activities as its plan listed them."""
    rows = await Activity.filter(rotation_id=rotation.id, status=ActivityStatus.ACTIVE).order_by("starts_at")
    return [{"kind": a.kind.value, "title": a.title, "note": "",
             "date": a.starts_at.astimezone(clock.SHANGHAI).date().isoformat()} for a in rows[:6]]


async def _plan(y: Year, r: Rotation) -> None:
    admin = y.admin_of[r.unit_id]
    written = r.starts_at - timedelta(days=10)
    submitted = r.starts_at + timedelta(days=y.rng.randint(3, 12))
    current = r.ends_at > y.now
    returned_once = not current and y.rng.random() < 0.2
    state = PlanState.FILED
    if current:
        state = y.rng.choice([PlanState.FILED, PlanState.FILED, PlanState.SUBMITTED, PlanState.DRAFT])
        if submitted > y.now:
            state = PlanState.DRAFT
    versions = 2 if returned_once else 1
    decided = submitted + timedelta(days=2)
    filed_at = decided + timedelta(days=3) if returned_once else decided
    if state is PlanState.FILED and filed_at > y.now:
        state = PlanState.SUBMITTED
    [plan_id] = await insert(WorkPlan, [WorkPlan(
        rotation_id=r.id, zone_id=r.zone_id, unit_id=r.unit_id, state=state, version=versions,
        submitted_version=versions if state is not PlanState.DRAFT else None,
        submitted_at=(decided + timedelta(days=1) if returned_once else submitted)
        if state is not PlanState.DRAFT else None,
        decided_at=filed_at if state is PlanState.FILED else None,
        decided_by_id=y.liaison_of[r.zone_id] if state is PlanState.FILED else None,
        decision_comment="同意备案" if state is PlanState.FILED else "",
        filed_version=versions if state is PlanState.FILED else None)])
    items = await _items(r)
    goals = y.rng.choice(GOALS)
    await WorkPlanVersion.bulk_create([WorkPlanVersion(
        plan_id=plan_id, version=v, goals=goals if v == versions else goals[:30], items=items,
        budget_fen=y.rng.randint(3, 12) * 100_000, author_id=admin,
        created_at=written + timedelta(days=5 * (v - 1))) for v in range(1, versions + 1)])
    events: list[PlanEvent] = []
    neighbours = [u.id for u in y.units[r.zone_id] if u.id != r.unit_id][:2]
    for n, unit_id in enumerate(neighbours):
        events.append(PlanEvent(plan_id=plan_id, kind=PlanEventKind.COMMENTED, version=1,
                                unit_id=unit_id, author_id=y.admin_of[unit_id],
                                body="建议增加一次联合志愿服务活动。" if n == 0 else "同意，我单位积极参与。",
                                at=written + timedelta(days=1 + n)))
    if state is not PlanState.DRAFT:
        events.append(PlanEvent(plan_id=plan_id, kind=PlanEventKind.SUBMITTED, version=1,
                                unit_id=r.unit_id, author_id=admin, at=submitted))
    if returned_once:
        events += [PlanEvent(plan_id=plan_id, kind=PlanEventKind.RETURNED, version=1,
                             author_id=y.liaison_of[r.zone_id], body="预算明细不清，请细化后重新提交。",
                             at=decided),
                   PlanEvent(plan_id=plan_id, kind=PlanEventKind.SUBMITTED, version=2,
                             unit_id=r.unit_id, author_id=admin, at=decided + timedelta(days=1))]
    if state is PlanState.FILED:
        events.append(PlanEvent(plan_id=plan_id, kind=PlanEventKind.FILED, version=versions,
                                author_id=y.liaison_of[r.zone_id], body="同意备案", at=filed_at))
        y.system(at=filed_at, member_ids=[admin], topic="plan.filed", title="季度工作计划已备案",
                 ref_type="rotation", ref_id=r.id)
    await PlanEvent.bulk_create(events)


async def _meeting(y: Year, year: int, quarter: int) -> None:
    start, end = clock.quarter_bounds(year, quarter)
    when = (end - timedelta(days=12)).astimezone(clock.SHANGHAI).replace(hour=9, minute=30) \
        .astimezone(start.tzinfo)
    held = when < y.now
    [meeting_id] = await insert(Meeting, [Meeting(
        year=year, quarter=quarter, title=f"{year} 年第 {quarter} 季度网络区工作例会",
        place="机关工委三楼会议室", starts_at=when,
        state=MeetingState.HELD if held else MeetingState.SCHEDULED,
        minutes="各网络区轮值单位汇报了本季度工作，机关工委逐一讲评并部署下季度重点任务。" if held else "",
        held_at=when + timedelta(hours=2) if held else None, created_by_id=y.admin_id,
        created_at=when - timedelta(days=10))])
    rows = []
    for zone in y.zones:
        now_r = y.rotation_at(zone.id, end - timedelta(seconds=1))
        next_r = y.rotation_at(zone.id, end)
        reported = held or y.rng.random() < 0.4
        record = await quarter_record.record(now_r) if now_r and reported else None
        rows.append(MeetingZone(
            meeting_id=meeting_id, zone_id=zone.id, rotation_id=now_r.id if now_r else None,
            next_rotation_id=next_r.id if next_r else None,
            report=y.rng.choice(REPORTS).format(n=record["attendance"]["held"],
                                               t=record["attendance"]["attendee_times"]) if record else "",
            reported_at=when - timedelta(days=2) if record else None,
            reported_by_id=y.admin_of[now_r.unit_id] if record and now_r else None,
            comments=y.rng.choice(COMMENTS) if held else "",
            commented_at=when + timedelta(hours=1) if held else None,
            commented_by_id=y.admin_id if held else None))
    await MeetingZone.bulk_create(rows)


async def _handover(y: Year, r: Rotation, *, leave_open: bool) -> None:
    following = next((n for n in y.rotations if n.zone_id == r.zone_id and n.starts_at == r.ends_at), None)
    out_at = r.ends_at - timedelta(days=2)
    report = await quarter_record.record(r)
    incoming = following is not None and not leave_open
    await Handover.create(
        rotation_id=r.id, zone_id=r.zone_id, next_rotation_id=following.id if following else None,
        report=report if not leave_open else None,
        outgoing_note="本季度工作已按计划完成，台账资料齐全，移交下一轮值单位。" if not leave_open else "",
        incoming_plan="将延续联学联建机制，重点做好下季度“三个一”。" if incoming else "",
        outgoing_confirmed_at=out_at if not leave_open else None,
        outgoing_confirmed_by_id=y.admin_of[r.unit_id] if not leave_open else None,
        incoming_confirmed_at=out_at + timedelta(days=1) if incoming else None,
        incoming_confirmed_by_id=y.admin_of[following.unit_id] if incoming and following else None,
        closed_at=out_at + timedelta(days=1) if incoming else None,
        flagged_at=r.ends_at + timedelta(days=3) if leave_open and r.ends_at + timedelta(days=3) <= y.now else None)
