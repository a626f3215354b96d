"""Demo year, supervision (督办): items the committee (and one liaison) assigned, long done,
overdue, due soon and due later, with assignments in every state. Each assignment's ladder is
replayed with the service's own rules (`next_step`, `step_at` through it, `step_level`): the
steps that came due before it stopped are escalation events, and its `escalation_level`,
`next_step` and `next_step_at` are where that replay ends — what the cron would have left."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from models.supervision import (
    Assignment,
    AssignmentState,
    EscalationEvent,
    ProgressReport,
    Review,
    Step,
    SupervisionItem,
    Urge,
)
from services import clock
from services.demo_year import BATCH, Year, insert
from services.escalation import ladder_of, next_step, step_level

S = AssignmentState
PROGRESS = ["已召开专题会议部署，正在逐项落实。", "已完成初稿，正在征求意见。", "正在收集整理佐证材料。"]
DONE = ["已按要求完成，相关材料已上传。", "已完成整改并形成书面报告。"]
RETURNED = "材料不完整，请补充佐证材料后重新提交。"
ACCEPTED = "材料齐全，同意办结。"


@dataclass
class Plan:
    title: str
    detail: str
    created_at: datetime
    due_at: datetime
    unit_ids: list[int]
    zone_ids: list[int]
    weights: dict[AssignmentState, float]
    created_by_id: int
    rows: list[Assignment] = field(default_factory=list)
    history: list[list] = field(default_factory=list)    # per row: reports, reviews, urges, events


def _plans(y: Year) -> list[Plan]:
    now, day = y.now, timedelta(days=1)
    zones = [z.id for z in y.zones]
    everyone = sorted(y.unit_zone)
    on_duty = sorted(r.unit_id for r in y.rotations if r.starts_at <= now < r.ends_at)
    liaison = y.liaison_of[zones[0]]
    theirs = [z for z, m in y.liaison_of.items() if m == liaison]
    next_year, next_quarter = (y.year, y.quarter + 1) if y.quarter < 4 else (y.year + 1, 1)
    return [
        Plan("报送网络区阶段性工作总结", "各单位报送本阶段网络区工作总结，附活动台账。",
             y.in_past(0.30), y.in_past(0.42), everyone, [],
             {S.ACCEPTED: 0.9, S.IN_PROGRESS: 0.05, S.RETURNED: 0.05}, y.admin_id),
        Plan("开展“三个一”落实情况自查", "对照“三个一”要求开展自查，报送自查报告。",
             now - 20 * day, now - 2 * day, [], zones[:5],
             {S.ACCEPTED: 0.45, S.SUBMITTED: 0.2, S.IN_PROGRESS: 0.15, S.OPEN: 0.1,
              S.RETURNED: 0.1}, y.admin_id),
        Plan(f"报送{next_year}年第{next_quarter}季度网络区活动计划",
             "会同成员单位拟定下季度活动计划并报备。", now - 7 * day, now + timedelta(hours=30), [],
             zones[5:], {S.OPEN: 0.3, S.IN_PROGRESS: 0.3, S.SUBMITTED: 0.25, S.ACCEPTED: 0.1,
                         S.RETURNED: 0.05}, y.admin_id),
        Plan("做好轮值交接准备工作", "整理本季度工作台账，准备交接会汇报材料。",
             now - 2 * day, now + 12 * day, on_duty, [], {S.OPEN: 0.6, S.IN_PROGRESS: 0.4},
             y.admin_id),
        Plan("组织党员参加“书香机关”读书节", "挂点网络区各单位组织党员报名读书节并报送参与情况。",
             now - 12 * day, now - 4 * day, [], theirs, {S.ACCEPTED: 0.7, S.IN_PROGRESS: 0.3},
             liaison),
    ]


async def load(y: Year) -> None:
    plans = _plans(y)
    for plan in plans:
        named = {u for u, z in y.unit_zone.items() if z in plan.zone_ids}
        units = sorted(set(plan.unit_ids) | named)
        states = list(plan.weights)  # every state of the item at least once, then by weight
        weights = list(plan.weights.values())
        states += y.rng.choices(states, weights=weights, k=len(units) - len(states))
        y.rng.shuffle(states)
        for unit_id, state in zip(units, states, strict=True):
            _assignment(y, plan, unit_id, state)
    ladder = ladder_of(None)
    item_ids = await insert(SupervisionItem, [SupervisionItem(
        title=p.title, detail=p.detail, due_at=p.due_at, ladder=ladder, created_at=p.created_at,
        target={"unit_ids": p.unit_ids, "zone_ids": p.zone_ids}, created_by_id=p.created_by_id)
        for p in plans])
    for plan, item_id in zip(plans, item_ids, strict=True):
        for row in plan.rows:
            row.item_id = item_id
    rows = [(row, h) for p in plans for row, h in zip(p.rows, p.history, strict=True)]
    ids = await insert(Assignment, [row for row, _ in rows])
    children: dict[type, list] = {ProgressReport: [], Review: [], Urge: [], EscalationEvent: []}
    for (_, history), assignment_id in zip(rows, ids, strict=True):
        for child in history:
            child.assignment_id = assignment_id
            children[type(child)].append(child)
    for model, objects in children.items():
        await model.bulk_create(objects, batch_size=BATCH)
    for plan, item_id in zip(plans, item_ids, strict=True):
        y.system(at=plan.created_at, topic="supervision.assigned", title=f"新督办事项：{plan.title}",
                 member_ids=[y.admin_of[r.unit_id] for r in plan.rows],
                 body=f"请于 {clock.local_iso(plan.due_at)} 前办结并提交。",
                 ref_type="supervision_item", ref_id=item_id)


def _replay(y: Year, plan: Plan, after: Step | None, start: datetime, until: datetime,
            history: list) -> tuple[Step | None, Step | None, datetime | None]:
    """Fire the ladder's steps from `start` (after step `after`) up to `until`, as the cron does
    each minute; returns the last step fired and the step due next with its time."""
    ladder = ladder_of(None)
    step, when = next_step(after, due_at=plan.due_at, ladder=ladder, at=start)
    while step is not None and when is not None:
        fired = when + timedelta(seconds=y.rng.randint(5, 55))
        if fired > until:
            break
        history.append(EscalationEvent(step=step, due_at=when, fired_at=fired,
                                       claim=f"{y.rng.getrandbits(64):016x}"))
        after = step
        step, when = next_step(step, due_at=plan.due_at, ladder=ladder, at=fired)
    return after, step, when


def _assignment(y: Year, plan: Plan, unit_id: int, state: AssignmentState) -> None:
    """One unit's assignment and its history, by the state it is in now."""
    rng, now, start, due = y.rng, y.now, plan.created_at, plan.due_at
    admin, zone_id = y.admin_of[unit_id], y.unit_zone[unit_id]
    reviewer = rng.choice([y.admin_id, y.liaison_of[zone_id]])
    history: list = []
    row = Assignment(unit_id=unit_id, zone_id=zone_id, state=state, assigned_at=start)

    def progress(until: datetime) -> None:
        at = start + (until - start) * rng.uniform(0.1, 0.9)
        history.append(ProgressReport(by_id=admin, note=rng.choice(PROGRESS), done=False, at=at))

    returned_at = None
    if state in (S.OPEN, S.IN_PROGRESS):
        if state is S.IN_PROGRESS:
            progress(now)
        last, step, when = _replay(y, plan, None, start, now, history)
    else:
        late = due < now and rng.random() < 0.15
        submitted = (due + (now - due) * rng.uniform(0.1, 0.6) if late
                     else start + (min(due, now) - start) * rng.uniform(0.3, 0.95))
        if rng.random() < 0.5:
            progress(submitted)
        history.append(ProgressReport(by_id=admin, note=rng.choice(DONE), done=True, at=submitted))
        last, step, when = _replay(y, plan, None, start, submitted, history)
        step = when = None  # submitting stops the ladder
        row.submitted_at = submitted
        decided = submitted + (now - submitted) * rng.uniform(0.2, 0.8)
        if state is S.ACCEPTED:
            history.append(Review(by_id=reviewer, accept=True, comment=ACCEPTED, at=decided))
            row.accepted_at, row.on_time = decided, submitted <= due
            row.accept_s = int((decided - start).total_seconds())
        elif state is S.RETURNED:
            history.append(Review(by_id=reviewer, accept=False, comment=RETURNED, at=decided))
            returned_at = decided
            # Returning re-arms the ladder at the first step not yet fired.
            last, step, when = _replay(y, plan, last, decided, now, history)
    row.escalation_level = step_level(last) if last else 0
    row.next_step, row.next_step_at = step, when
    row.overdue_at = next((e.fired_at for e in history
                           if isinstance(e, EscalationEvent) and e.step is Step.OVERDUE), None)
    if state in (S.OPEN, S.IN_PROGRESS, S.RETURNED):
        _urges(y, plan, row, returned_at, history)
    plan.rows.append(row)
    plan.history.append(history)


def _urges(y: Year, plan: Plan, row: Assignment, after: datetime | None, history: list) -> None:
    """Overdue: urged 6 and 30 hours after the due time; due soon: now and then, 5 hours ago.
    By the zone's duty unit (the committee when the unit is itself on duty)."""
    now, due = y.now, plan.due_at
    times = [due + timedelta(hours=6), due + timedelta(hours=30)] if due < now else \
        ([now - timedelta(hours=5)] if y.rng.random() < 0.4 else [])
    times = [t for t in times if plan.created_at < t <= now and (after is None or t > after)]
    for at in times:
        rotation = y.rotation_at(row.zone_id, at)
        duty = rotation.unit_id if rotation and rotation.unit_id != row.unit_id else None
        history.append(Urge(by_id=y.admin_of[duty] if duty else y.admin_id, by_unit_id=duty,
                            note="请抓紧办理，按时提交。", at=at))
    if times:
        row.last_urged_at, row.urge_count = times[-1], len(times)
