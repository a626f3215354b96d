"""Supervision items (督办): the committee assigns a task to units, each unit's assignment moves
open -> in_progress -> submitted -> accepted (or submitted -> returned -> in_progress), the duty
unit and staff urge, and an escalation ladder climbs when it is late (services/escalation.py).

Every move is a conditional UPDATE on the state it expects, so two requests never both move it.
Lists, timelines and dashboards: services/supervision_board.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from models.org import Unit, Zone
from models.supervision import (
    Assignment,
    AssignmentState,
    ProgressReport,
    Review,
    SupervisionItem,
    Urge,
)
from services import audit, clock, files, inbox
from services.access import check_duty_zone, check_governs, duty_rotation
from services.auth import Principal
from services.errors import (
    Forbidden,
    IllegalTransition,
    InvalidInput,
    ItemNotFound,
    NotAssigned,
    NoUnits,
    UnitNotFound,
    UrgeTooSoon,
    ZoneNotFound,
)
from services.escalation import LIVE, ladder_of, last_fired, next_step
from services.views import View

S = AssignmentState
URGE_INTERVAL = timedelta(hours=12)

# action -> {state it may start from: state it leads to}
TRANSITIONS: dict[str, dict[AssignmentState, AssignmentState]] = {
    "report": {S.OPEN: S.IN_PROGRESS, S.IN_PROGRESS: S.IN_PROGRESS, S.RETURNED: S.IN_PROGRESS},
    "submit": {S.OPEN: S.SUBMITTED, S.IN_PROGRESS: S.SUBMITTED, S.RETURNED: S.SUBMITTED},
    "accept": {S.SUBMITTED: S.ACCEPTED},
    "return": {S.SUBMITTED: S.RETURNED},
    "urge": {s: s for s in LIVE},
}


async def assignment_view(a: Assignment) -> View:
    """An assignment as the API shows it: its unit's name, the last step fired, overdue."""
    await a.fetch_related("unit")
    last = last_fired(a.escalation_level)
    return View(a, unit_name=a.unit.name, escalation=last.value if last else None,
                overdue=a.overdue_at is not None and a.state in LIVE)


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


def scoped(scope: Q | None, **filters: Any) -> Any:
    qs = Assignment.filter(**filters)
    return qs if scope is None else qs.filter(scope)


async def can_read_items(principal: Principal, item_ids: list[int]) -> bool:
    """Whether the caller sees an assignment of one of these items (attachments' readers)."""
    try:
        scope = await visible(principal)
    except Forbidden:
        return False
    return await scoped(scope, item_id__in=item_ids).exists()


async def can_read_assignments(principal: Principal, assignment_ids: list[int]) -> bool:
    """Whether the caller sees one of these assignments (its reports' attachments)."""
    try:
        scope = await visible(principal)
    except Forbidden:
        return False
    return await scoped(scope, id__in=assignment_ids).exists()


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

async def create(principal: Principal, *, title: str, detail: str, attachments: list[dict[str, Any]],
                 due_at: datetime, unit_ids: list[int], zone_ids: list[int],
                 ladder: dict[str, int] | None) -> View:
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
        await audit.record(principal, "supervision.assigned", "supervision_item", item.id,
                           title=title, due_at=due_at, unit_ids=sorted(zone_of))
        await Assignment.bulk_create(
            [Assignment(item_id=item.id, unit_id=u, zone_id=z, assigned_at=now, next_step=first,
                        next_step_at=first_at) for u, z in sorted(zone_of.items())],
            batch_size=500)
        await inbox.send_system(
            member_ids=await inbox.unit_admin_ids(zone_of), topic="supervision.assigned",
            title=f"新督办事项：{title}", body=f"请于 {clock.local_iso(due_at)} 前办结并提交。",
            ref_type="supervision_item", ref_id=item.id)
    from services.supervision_board import item_view

    return await item_view(principal, item)


# -- report, review, urge ------------------------------------------------------------------------

async def report(principal: Principal, *, item_id: int, unit_id: int | None, note: str,
                 attachments: list[dict[str, Any]], done: bool) -> View:
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
    return await assignment_view(await Assignment.get(id=assignment.id))


async def review(principal: Principal, *, item_id: int, unit_id: int, accept: bool,
                 comment: str) -> View:
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
        await audit.record(principal, "supervision.accepted" if accept else "supervision.returned",
                           "supervision_item", item_id, zone_id=assignment.zone_id, unit_id=unit_id,
                           comment=comment)
        await inbox.send_system(
            member_ids=await inbox.unit_admin_ids([unit_id]),
            topic="supervision.accepted" if accept else "supervision.returned",
            title=f"督办{'已通过' if accept else '被退回'}：{item.title}", body=comment,
            ref_type="supervision_item", ref_id=item_id)
    return await assignment_view(await Assignment.get(id=assignment.id))


async def urge(principal: Principal, *, item_id: int, unit_id: int, note: str) -> View:
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
            return View(row, item_id=item_id, unit_id=unit_id, next_allowed_at=now + URGE_INTERVAL)
    fresh = await Assignment.get(id=assignment.id)
    _check_move(fresh, "urge")
    last = fresh.last_urged_at or now
    allowed = last + URGE_INTERVAL
    raise UrgeTooSoon(next_allowed_at=allowed,
                      retry_after_s=max(1, int((allowed - now).total_seconds()) + 1))
