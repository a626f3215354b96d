"""Supervision items (督办): assign to units, report, review, urge, and escalate on a ladder.

Each assignment moves open -> in_progress -> submitted -> accepted, or submitted -> returned ->
in_progress; every move is a conditional UPDATE on the state it expects, so two requests never
both move it. Its escalation ladder is a pointer (`next_step`, `next_step_at`, indexed) that the
cron reads with one range query. A step fires when its `EscalationEvent` row is inserted: the row is
unique per (assignment, step), so whichever worker inserts it fires the step and every other one
finds it taken. The row, the pointer's advance and the inbox messages commit in one transaction, so
a worker that dies midway leaves the step due for the next scan. Submitting or accepting clears
the pointer, which stops the ladder; returning re-arms it at the first step not yet fired.
"""

from __future__ import annotations

import secrets
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.expressions import F, Q, Subquery
from tortoise.functions import Avg, Count
from tortoise.transactions import in_transaction

from models.org import Liaison, Member, Role, Rotation, Unit, Zone
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
from services import clock, files, inbox
from services.access import check_duty_zone, check_governs, duty_rotation
from services.auth import Principal
from services.errors import (
    Forbidden,
    IllegalTransition,
    InvalidInput,
    NotFound,
    ServiceError,
    UnitNotFound,
    ZoneNotFound,
)

S = AssignmentState
DEFAULT_LADDER: dict[str, int] = {"remind_before_h": 48, "liaison_after_h": 24, "committee_after_h": 72}
STEPS = (Step.REMIND, Step.OVERDUE, Step.LIAISON, Step.COMMITTEE)
LIVE = (S.OPEN, S.IN_PROGRESS, S.RETURNED)  # the states whose ladder runs
URGE_INTERVAL = timedelta(hours=12)
SCAN_BATCH = 500
SCAN_BUDGET_S = 240.0  # one cron run stops here; the next minute carries on

# action -> {state it may start from: state it leads to}
TRANSITIONS: dict[str, dict[AssignmentState, AssignmentState]] = {
    "report": {S.OPEN: S.IN_PROGRESS, S.IN_PROGRESS: S.IN_PROGRESS, S.RETURNED: S.IN_PROGRESS},
    "submit": {S.OPEN: S.SUBMITTED, S.IN_PROGRESS: S.SUBMITTED, S.RETURNED: S.SUBMITTED},
    "accept": {S.SUBMITTED: S.ACCEPTED},
    "return": {S.SUBMITTED: S.RETURNED},
    "urge": {s: s for s in LIVE},
}


class ItemNotFound(NotFound):
    code, default_message = "supervision_item_not_found", "找不到该督办事项"


class NotAssigned(ServiceError):
    code, http_status, default_message = "not_assigned", 404, "该单位不在此督办事项的承办单位中"


class NoUnits(ServiceError):
    code, http_status, default_message = "no_units", 422, "所选网络区中没有单位"


class UrgeTooSoon(ServiceError):
    code, http_status, default_message = "urge_too_soon", 429, "12 小时内已催办过该单位，请稍后再试"


# -- the ladder ----------------------------------------------------------------------------------

def ladder_of(overrides: dict[str, int] | None) -> dict[str, int]:
    return {**DEFAULT_LADDER, **(overrides or {})}


def step_at(step: Step, *, due_at: datetime, ladder: dict[str, int]) -> datetime:
    hours = {Step.REMIND: -ladder["remind_before_h"], Step.OVERDUE: 0,
             Step.LIAISON: ladder["liaison_after_h"], Step.COMMITTEE: ladder["committee_after_h"]}
    return due_at + timedelta(hours=hours[step])


def next_step(after: Step | None, *, due_at: datetime, ladder: dict[str, int],
              at: datetime) -> tuple[Step | None, datetime | None]:
    """The step that follows `after` (None: the first). The reminder is left out when disabled
    (0 h) or when its moment has already passed: after the due time it would say nothing new."""
    for step in STEPS[0 if after is None else STEPS.index(after) + 1:]:
        when = step_at(step, due_at=due_at, ladder=ladder)
        if step is Step.REMIND and (ladder["remind_before_h"] <= 0 or when <= at):
            continue
        return step, when
    return None, None


def last_fired(level: int) -> Step | None:
    return STEPS[level - 1] if level > 0 else None


def step_level(step: Step) -> int:
    return STEPS.index(step) + 1


# -- reading and scope ---------------------------------------------------------------------------

async def get_or_raise(item_id: int) -> SupervisionItem:
    item = await SupervisionItem.get_or_none(id=item_id)
    if item is None:
        raise ItemNotFound(item_id=item_id)
    return item


async def visible(principal: Principal) -> Q | None:
    """Which assignments the caller sees: None = all (committee); a liaison those of their zones;
    a unit admin their unit's, and while on duty every unit's of the zone."""
    if principal.is_committee:
        return None
    if principal.is_liaison:
        return Q(zone_id__in=sorted(principal.liaison_zone_ids))
    if not principal.is_unit_admin or principal.unit_id is None:
        raise Forbidden()
    scope = Q(unit_id=principal.unit_id)
    duty = await duty_rotation(principal)
    if duty is not None:
        scope = scope | Q(zone_id=duty.zone_id)
    return scope


def _scoped(scope: Q | None, **filters: Any) -> Any:
    qs = Assignment.filter(**filters)
    return qs if scope is None else qs.filter(scope)


async def can_read_items(principal: Principal, item_ids: list[int]) -> bool:
    """Whether the caller sees an assignment of one of these items (attachments' readers)."""
    try:
        scope = await visible(principal)
    except Forbidden:
        return False
    return await _scoped(scope, item_id__in=item_ids).exists()


async def can_read_assignments(principal: Principal, assignment_ids: list[int]) -> bool:
    """Whether the caller sees one of these assignments (its reports' attachments)."""
    try:
        scope = await visible(principal)
    except Forbidden:
        return False
    return await _scoped(scope, id__in=assignment_ids).exists()


async def _assignment(item_id: int, unit_id: int) -> Assignment:
    found = await Assignment.get_or_none(item_id=item_id, unit_id=unit_id)
    if found is None:
        await get_or_raise(item_id)
        raise NotAssigned(item_id=item_id, unit_id=unit_id)
    return found


def _check_move(assignment: Assignment, action: str) -> AssignmentState:
    to = TRANSITIONS[action].get(assignment.state)
    if to is None:
        raise IllegalTransition(state=assignment.state.value, action=action,
                                allowed_from=[s.value for s in TRANSITIONS[action]])
    return to


async def _move(assignment: Assignment, action: str, **changes: Any) -> AssignmentState:
    """Apply a transition with a conditional UPDATE; a concurrent move answers illegal_transition."""
    to = _check_move(assignment, action)
    moved = await Assignment.filter(id=assignment.id, state=assignment.state).update(state=to, **changes)
    if not moved:
        fresh = await Assignment.get(id=assignment.id)
        _check_move(fresh, action)  # raises with the state it has now
        raise IllegalTransition(state=fresh.state.value, action=action)
    return to


# -- create --------------------------------------------------------------------------------------

@dataclass
class Created:
    item: SupervisionItem
    unit_ids: list[int]


async def create(principal: Principal, *, title: str, detail: str, attachments: list[dict[str, Any]],
                 due_at: datetime, unit_ids: list[int], zone_ids: list[int],
                 ladder: dict[str, int] | None) -> Created:
    """Committee staff assign an item to the named units and to every unit of the named zones as
    they are now (a liaison: only within their zones); each unit's admins are told."""
    if not principal.is_staff:
        raise Forbidden()
    now = clock.now()
    if due_at <= now:
        raise InvalidInput(errors=[{"loc": ["body", "due_at"], "msg": "截止时间须晚于现在",
                                    "type": "value_error"}])
    zone_ids, unit_ids = sorted(set(zone_ids)), sorted(set(unit_ids))
    known_zones = set(await Zone.filter(id__in=zone_ids).values_list("id", flat=True))
    if missing := [z for z in zone_ids if z not in known_zones]:
        raise ZoneNotFound(zone_ids=missing)
    zone_of = dict(await Unit.filter(Q(id__in=unit_ids) | Q(zone_id__in=zone_ids))
                   .values_list("id", "zone_id"))
    if missing := [u for u in unit_ids if u not in zone_of]:
        raise UnitNotFound(unit_ids=missing)
    if outside := sorted({z for z in zone_of.values() if not principal.governs(z)}):
        raise Forbidden("只能向挂点网络区的单位交办督办事项", zone_ids=outside)
    if not zone_of:
        raise NoUnits(zone_ids=zone_ids)
    rules = ladder_of(ladder)
    first, first_at = next_step(None, due_at=due_at, ladder=rules, at=now)
    attachments = await files.resolve(principal, attachments)
    async with in_transaction():
        item = await SupervisionItem.create(
            title=title, detail=detail, attachments=attachments, due_at=due_at, ladder=rules,
            target={"unit_ids": unit_ids, "zone_ids": zone_ids}, created_by_id=principal.member_id,
            created_at=now)
        await files.attach(attachments, ref_type="supervision_item", ref_id=item.id)
        await Assignment.bulk_create(
            [Assignment(item_id=item.id, unit_id=u, zone_id=z, assigned_at=now, next_step=first,
                        next_step_at=first_at) for u, z in sorted(zone_of.items())],
            batch_size=500)
        await inbox.send_system(
            member_ids=await inbox.unit_admin_ids(zone_of), topic="supervision.assigned",
            title=f"新督办事项：{title}", body=f"请于 {clock.local_iso(due_at)} 前办结并提交。",
            ref_type="supervision_item", ref_id=item.id)
    return Created(item, sorted(zone_of))


# -- report, review, urge ------------------------------------------------------------------------

async def report(principal: Principal, *, item_id: int, unit_id: int | None, note: str,
                 attachments: list[dict[str, Any]], done: bool) -> Assignment:
    """The assigned unit's admin reports progress, or submits (`done`), which stops the ladder."""
    if not principal.is_unit_admin or principal.unit_id is None:
        raise Forbidden("只有承办单位的管理员可以报告进展")
    if unit_id is not None and unit_id != principal.unit_id:
        raise Forbidden("不能替其他单位报告进展", unit_id=unit_id)
    assignment = await _assignment(item_id, principal.unit_id)
    attachments = await files.resolve(principal, attachments)
    now = clock.now()
    changes: dict[str, Any] = {"submitted_at": now, "next_step": None, "next_step_at": None} if done else {}
    async with in_transaction():
        await _move(assignment, "submit" if done else "report", **changes)
        await ProgressReport.create(assignment_id=assignment.id, by_id=principal.member_id,
                                    note=note, attachments=attachments, done=done, at=now)
        await files.attach(attachments, ref_type="supervision_assignment", ref_id=assignment.id)
        if done:
            item = await SupervisionItem.get(id=item_id)
            unit = await Unit.get(id=assignment.unit_id)
            await inbox.send_system(member_ids=[item.created_by_id], topic="supervision.submitted",
                                    title=f"督办待审核：{unit.name} 已提交「{item.title}」",
                                    body=note, ref_type="supervision_item", ref_id=item_id)
    return await Assignment.get(id=assignment.id)


async def review(principal: Principal, *, item_id: int, unit_id: int, accept: bool,
                 comment: str) -> Assignment:
    """Committee staff accept a submission, or return it with a comment, which re-arms the ladder
    at the first step not yet fired. A liaison reviews units of their zones only."""
    if not principal.is_staff:
        raise Forbidden()
    if not accept and len(comment) < 2:
        raise InvalidInput(errors=[{"loc": ["body", "comment"], "type": "value_error",
                                    "msg": "退回时须填写意见（至少 2 个字）"}])
    item = await get_or_raise(item_id)
    assignment = await _assignment(item_id, unit_id)
    check_governs(principal, assignment.zone_id)
    now = clock.now()
    if accept:
        submitted_at = assignment.submitted_at or now
        changes: dict[str, Any] = {
            "accepted_at": now, "on_time": submitted_at <= item.due_at,
            "accept_s": int((now - assignment.assigned_at).total_seconds())}
    else:
        step, when = next_step(last_fired(assignment.escalation_level), due_at=item.due_at,
                               ladder=ladder_of(item.ladder), at=now)
        changes = {"next_step": step, "next_step_at": when}
    async with in_transaction():
        await _move(assignment, "accept" if accept else "return", **changes)
        await Review.create(assignment_id=assignment.id, by_id=principal.member_id, accept=accept,
                            comment=comment, at=now)
        await inbox.send_system(
            member_ids=await inbox.unit_admin_ids([unit_id]),
            topic="supervision.accepted" if accept else "supervision.returned",
            title=f"督办{'已通过' if accept else '被退回'}：{item.title}", body=comment,
            ref_type="supervision_item", ref_id=item_id)
    return await Assignment.get(id=assignment.id)


async def urge(principal: Principal, *, item_id: int, unit_id: int, note: str) -> Urge:
    """Staff governing the assignee's zone, or its duty unit during its quarter, urge a unit: its
    admins are told. At most one urge per unit and item in 12 hours, whoever urges."""
    assignment = await _assignment(item_id, unit_id)
    by_unit_id = None
    if not principal.governs(assignment.zone_id):
        if assignment.zone_id is None:
            raise Forbidden()
        await check_duty_zone(principal, assignment.zone_id)
        by_unit_id = principal.unit_id
    _check_move(assignment, "urge")
    now = clock.now()
    async with in_transaction():
        taken = await Assignment.filter(
            Q(last_urged_at__isnull=True) | Q(last_urged_at__lte=now - URGE_INTERVAL),
            id=assignment.id, state__in=LIVE,
        ).update(last_urged_at=now, urge_count=F("urge_count") + 1)
        if taken:
            row = await Urge.create(assignment_id=assignment.id, by_id=principal.member_id,
                                    by_unit_id=by_unit_id, note=note, at=now)
            item = await SupervisionItem.get(id=item_id)
            await inbox.send_system(
                member_ids=await inbox.unit_admin_ids([unit_id]), topic="supervision.urged",
                title=f"催办：{item.title}",
                body=note or f"请于 {clock.local_iso(item.due_at)} 前办结并提交。",
                ref_type="supervision_item", ref_id=item_id)
            return row
    fresh = await Assignment.get(id=assignment.id)
    _check_move(fresh, "urge")
    last = fresh.last_urged_at or now
    allowed = last + URGE_INTERVAL
    raise UrgeTooSoon(next_allowed_at=allowed,
                      retry_after_s=max(1, int((allowed - now).total_seconds()) + 1))


# -- escalation ----------------------------------------------------------------------------------

@dataclass
class ScanResult:
    fired: int = 0
    batches: int = 0


def due_query(*, at: datetime, limit: int = SCAN_BATCH) -> Any:
    """The steps due at `at`, oldest first: one range scan of the index on next_step_at that stops
    after `limit` entries (stopped ladders have no next_step_at). Ordered by the indexed column
    alone: a tie-breaker would make PostgreSQL sort every due row before the limit."""
    return Assignment.filter(next_step_at__lte=at).order_by("next_step_at").limit(limit) \
        .values_list("id", "next_step", "next_step_at")


async def due(*, at: datetime, limit: int = SCAN_BATCH) -> list[tuple[int, Step, datetime]]:
    """(assignment id, step, scheduled at) of the steps due at `at`."""
    return await due_query(at=at, limit=limit)


async def run_escalations(*, batch: int = SCAN_BATCH, budget_s: float = SCAN_BUDGET_S) -> ScanResult:
    """Cron: fire every due step, batch after batch (a step that makes the next one due at once
    is followed in the same run, in order). Safe on several workers at once."""
    result = ScanResult()
    deadline = time.monotonic() + budget_s
    while True:
        at = clock.now()
        rows = await due(at=at, limit=batch)
        if not rows:
            break
        fired = await fire(rows, at=at)
        result.fired += fired
        result.batches += 1
        if not fired:
            break  # another worker holds (or just fired) all of them: it carries on
        if time.monotonic() >= deadline:
            break  # budget spent (0: one batch); the next run carries on
    return result


async def fire(rows: list[tuple[int, Step, datetime]], *, at: datetime) -> int:
    """Fire the given due steps, those nobody fired yet; returns how many fired here."""
    claim = secrets.token_hex(8)
    # Inserted in key order, so two workers wait on each other's rows in one order: no deadlock.
    rows = sorted(rows, key=lambda r: (r[0], step_level(Step(r[1]))))
    ids = [r[0] for r in rows]
    async with in_transaction():
        await EscalationEvent.bulk_create(
            [EscalationEvent(assignment_id=a, step=s, due_at=d, fired_at=at, claim=claim)
             for a, s, d in rows], batch_size=500, ignore_conflicts=True)
        claimed = await EscalationEvent.filter(assignment_id__in=ids, claim=claim) \
            .values_list("id", "assignment_id", "step")
        if not claimed:
            return 0
        assignments = {a.id: a for a in await Assignment.filter(id__in=[c[1] for c in claimed])}
        items = {i.id: i for i in await SupervisionItem.filter(
            id__in={a.item_id for a in assignments.values()})}
        fired: list[tuple[Assignment, Step]] = []
        for event_id, assignment_id, step_value in claimed:
            step, a = Step(step_value), assignments[assignment_id]
            item = items[a.item_id]
            following, when = next_step(step, due_at=item.due_at, ladder=ladder_of(item.ladder), at=at)
            changes: dict[str, Any] = {"next_step": following, "next_step_at": when,
                                       "escalation_level": step_level(step)}
            if step is Step.OVERDUE:
                changes["overdue_at"] = at
            # Submitted or accepted since the scan read it: the ladder has stopped, nothing fires.
            if await Assignment.filter(id=a.id, state__in=LIVE).update(**changes):
                fired.append((a, step))
            else:
                await EscalationEvent.filter(id=event_id).delete()
        await _send_escalations(fired, items, at=at)
    return len(fired)


async def _send_escalations(fired: list[tuple[Assignment, Step]],
                            items: dict[int, SupervisionItem], *, at: datetime) -> None:
    """One message per item and audience: each unit's admins (reminder, overdue), the zone's duty
    unit (overdue), the zone's liaisons, the committee; inside the firing transaction."""
    if not fired:
        return
    zones = {a.zone_id for a, s in fired if a.zone_id is not None and s in (Step.OVERDUE, Step.LIAISON)}
    duty_unit = dict(await Rotation.filter(zone_id__in=zones, starts_at__lte=at, ends_at__gt=at)
                     .values_list("zone_id", "unit_id"))
    admins = await _admins_by_unit({a.unit_id for a, _ in fired} | set(duty_unit.values()))
    liaisons: dict[int, list[int]] = defaultdict(list)
    for zone_id, member_id in await Liaison.filter(zone_id__in=zones).values_list("zone_id", "member_id"):
        liaisons[zone_id].append(member_id)
    committee = (await Member.filter(role=Role.COMMITTEE, is_active=True).values_list("id", flat=True)
                 if any(s is Step.COMMITTEE for _, s in fired) else [])
    names = dict(await Unit.filter(id__in={a.unit_id for a, _ in fired}).values_list("id", "name"))

    groups: dict[tuple[int, Step, str, int], list[Assignment]] = defaultdict(list)
    for a, step in fired:
        if step in (Step.REMIND, Step.OVERDUE):
            groups[(a.item_id, step, "unit", a.unit_id)].append(a)
        if step is Step.OVERDUE and a.zone_id in duty_unit and duty_unit[a.zone_id] != a.unit_id:
            groups[(a.item_id, step, "duty", a.zone_id)].append(a)
        if step is Step.LIAISON and a.zone_id is not None:
            groups[(a.item_id, step, "liaison", a.zone_id)].append(a)
        if step is Step.COMMITTEE:
            groups[(a.item_id, step, "committee", 0)].append(a)
    for (item_id, step, audience, key), members in groups.items():
        item = items[item_id]
        if audience == "unit":
            people = admins.get(key, [])
        elif audience == "duty":
            people = admins.get(duty_unit[key], [])
        elif audience == "liaison":
            people = liaisons.get(key, [])
        else:
            people = list(committee)
        units = "、".join(names.get(a.unit_id, str(a.unit_id)) for a in members)
        due_text = clock.local_iso(item.due_at)
        title, body = {
            Step.REMIND: (f"督办提醒：「{item.title}」即将到期", f"请于 {due_text} 前办结并提交。"),
            Step.OVERDUE: (f"督办逾期：「{item.title}」", f"{units} 未在 {due_text} 前提交。"),
            Step.LIAISON: (f"督办升级（挂点联络）：「{item.title}」", f"{units} 逾期未提交。"),
            Step.COMMITTEE: (f"督办升级（机关工委）：「{item.title}」", f"{units} 逾期未提交。"),
        }[step]
        await inbox.send_system(member_ids=people, topic=f"supervision.{step.value}", title=title,
                                body=body, ref_type="supervision_item", ref_id=item_id)


async def _admins_by_unit(unit_ids: Iterable[int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = defaultdict(list)
    for member_id, unit_id in await Member.filter(unit_id__in=list(unit_ids), role=Role.UNIT_ADMIN,
                                                  is_active=True).values_list("id", "unit_id"):
        out[unit_id].append(member_id)
    return out


# -- list, timeline, dashboard ---------------------------------------------------------------------

async def list_items(principal: Principal, *, limit: int, before_id: int | None,
                     zone_id: int | None) -> tuple[list[SupervisionItem], list[Assignment], Q | None]:
    """Newest items first with the caller's visible assignments (only items with one, unless
    committee)."""
    scope = await visible(principal)
    qs = SupervisionItem.all()
    if scope is not None or zone_id is not None:
        ids = _scoped(scope, **({"zone_id": zone_id} if zone_id is not None else {})) \
            .values_list("item_id", flat=True)
        qs = qs.filter(id__in=Subquery(ids))
    if before_id is not None:
        qs = qs.filter(id__lt=before_id)
    items = await qs.order_by("-id").limit(limit)
    rows = await _scoped(scope, item_id__in=[i.id for i in items],
                         **({"zone_id": zone_id} if zone_id is not None else {})) \
        .select_related("unit").order_by("item_id", "unit_id")
    return items, rows, scope


async def stats(scope: Q | None, *, by: str | None, **filters: Any) -> list[dict[str, Any]]:
    """Completion share, on-time share and mean time to acceptance, grouped by item_id, zone_id or
    unit_id (None: overall): one aggregate query."""
    qs = _scoped(scope, **filters)
    if by is not None:
        qs = qs.group_by(by)
    rows = await qs.annotate(
        n_total=Count("id"),
        n_accepted=Count("id", _filter=Q(state=S.ACCEPTED)),
        n_submitted=Count("id", _filter=Q(state=S.SUBMITTED)),
        n_on_time=Count("id", _filter=Q(on_time=True)),
        n_overdue=Count("id", _filter=Q(overdue_at__isnull=False, state__in=LIVE)),
        mean_accept_s=Avg("accept_s"),
    ).values(*([by] if by else []), "n_total", "n_accepted", "n_submitted", "n_on_time", "n_overdue",
             "mean_accept_s")
    if by is not None:
        rows = sorted(rows, key=lambda r: (r[by] is None, r[by] or 0))
    return [_shares(r, by) for r in rows if r["n_total"]]


def _shares(r: dict[str, Any], by: str | None) -> dict[str, Any]:
    """completion = accepted / assigned; on time = submitted by the due time, of the accepted;
    mean hours from assignment to acceptance, of the accepted."""
    total, accepted, mean = r["n_total"], r["n_accepted"], r["mean_accept_s"]
    return {**({by: r[by]} if by else {}), "assignments": total, "accepted": accepted,
            "submitted": r["n_submitted"], "overdue": r["n_overdue"],
            "accepted_on_time": r["n_on_time"],
            "completion_share": round(accepted / total, 4) if total else None,
            "on_time_share": round(r["n_on_time"] / accepted, 4) if accepted else None,
            "mean_hours_to_accept": round(float(mean) / 3600, 2) if mean is not None else None}


async def dashboard(scope: Q | None, **filters: Any) -> dict[str, Any]:
    overall = await stats(scope, by=None, **filters)
    return {"overall": overall[0] if overall else None,
            "by_zone": await stats(scope, by="zone_id", **filters),
            "by_unit": await stats(scope, by="unit_id", **filters)}


async def detail(principal: Principal, item_id: int) -> tuple[
        SupervisionItem, list[Assignment], list[dict[str, Any]], Q | None]:
    """One item, the caller's visible assignments and their timeline (progress, reviews, urges,
    escalations) in time order: five queries whatever the number of units."""
    item = await get_or_raise(item_id)
    scope = await visible(principal)
    rows = await _scoped(scope, item_id=item_id).select_related("unit").order_by("unit_id")
    if not rows and scope is not None:
        raise ItemNotFound(item_id=item_id)
    unit_of = {a.id: a.unit_id for a in rows}
    events: list[dict[str, Any]] = []
    for r in await ProgressReport.filter(assignment_id__in=list(unit_of)):
        events.append({"at": r.at, "kind": "submitted" if r.done else "progress", "by_id": r.by_id,
                       "unit_id": unit_of[r.assignment_id], "note": r.note,
                       "attachments": r.attachments})
    for v in await Review.filter(assignment_id__in=list(unit_of)):
        events.append({"at": v.at, "kind": "accepted" if v.accept else "returned", "by_id": v.by_id,
                       "unit_id": unit_of[v.assignment_id], "note": v.comment})
    for u in await Urge.filter(assignment_id__in=list(unit_of)):
        events.append({"at": u.at, "kind": "urge", "by_id": u.by_id, "by_unit_id": u.by_unit_id,
                       "unit_id": unit_of[u.assignment_id], "note": u.note})
    for e in await EscalationEvent.filter(assignment_id__in=list(unit_of)):
        events.append({"at": e.fired_at, "kind": "escalation", "step": e.step.value,
                       "due_at": e.due_at, "unit_id": unit_of[e.assignment_id]})
    order = {"escalation": 0, "progress": 1, "submitted": 1, "urge": 2, "accepted": 3, "returned": 3}
    events.sort(key=lambda e: (e["at"], order[e["kind"]], e["unit_id"],
                               STEPS.index(Step(e["step"])) if "step" in e else 0))
    return item, rows, events, scope
