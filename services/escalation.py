"""The escalation ladder of supervision items, and the cron that climbs it.

Steps, in order: a reminder before the due time (the unit's admins), overdue at the due time (the
unit and its zone's duty unit), the zone's liaisons later, the committee later still; each step's
hours may be overridden per item. An assignment's ladder is a pointer (`next_step`,
`next_step_at`, indexed) that the cron reads with one range query. A step fires when its
`EscalationEvent` row is inserted: unique per (assignment, step), so whichever worker inserts it
fires the step and every other one finds it taken. The row, the pointer's advance and the inbox
messages commit in one transaction, so a worker that dies midway leaves the step due for the next
scan. A batch of due steps fires with one INSERT of events and one UPDATE of pointers
(PostgreSQL). Submitting or accepting clears the pointer, which stops the ladder; returning re-arms it at
the first step not yet fired.
"""

from __future__ import annotations

import secrets
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.transactions import in_transaction

from models.org import Liaison, Member, Role, Rotation, Unit
from models.supervision import Assignment, AssignmentState, EscalationEvent, Step, SupervisionItem
from services import clock, inbox
from services.db import fetch_rows

S = AssignmentState
DEFAULT_LADDER: dict[str, int] = {"remind_before_h": 48, "liaison_after_h": 24, "committee_after_h": 72}
STEPS = (Step.REMIND, Step.OVERDUE, Step.LIAISON, Step.COMMITTEE)
LIVE = (S.OPEN, S.IN_PROGRESS, S.RETURNED)  # the states whose ladder runs
SCAN_BATCH = 500
SCAN_BUDGET_S = 240.0  # one cron run stops here; the next minute carries on


# -- the ladder (pure) -----------------------------------------------------------------------------

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


# -- the cron ------------------------------------------------------------------------------------

@dataclass
class ScanResult:
    fired: int = 0
    batches: int = 0


#: The steps due at $1, oldest first: one range scan of the index on next_step_at that stops
#: after $2 entries (stopped ladders have no next_step_at). Ordered by the indexed column alone:
#: a tie-breaker would make PostgreSQL sort every due row before the limit. Hand-written (the
#: cron runs it every minute and after every batch): no query built per scan.
DUE_SQL = ("SELECT id, next_step, next_step_at FROM supervision_assignment "
           "WHERE next_step_at <= $1 ORDER BY next_step_at LIMIT $2")


def due_query(*, at: datetime, limit: int = SCAN_BATCH) -> Any:
    """DUE_SQL through the ORM's query builder (what the scan was; kept for comparison)."""
    return Assignment.filter(next_step_at__lte=at).order_by("next_step_at").limit(limit) \
        .values_list("id", "next_step", "next_step_at")


async def due(*, at: datetime, limit: int = SCAN_BATCH) -> list[tuple[int, Step, datetime]]:
    """(assignment id, step, scheduled at) of the steps due at `at`."""
    return [(a, Step(s), d) for a, s, d in await fetch_rows(DUE_SQL, at, limit)]


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
    """Fire the given due steps, those nobody fired yet; returns how many fired here. On
    PostgreSQL a batch is one INSERT of its events (those another worker holds are skipped) and
    one UPDATE of its pointers (those stopped since the scan are left, and their events taken
    back), whatever its size."""
    claim = secrets.token_hex(8)
    # Inserted in key order, so two workers wait on each other's rows in one order: no deadlock.
    rows = sorted(rows, key=lambda r: (r[0], step_level(Step(r[1]))))
    async with in_transaction() as conn:
        postgres = conn.capabilities.dialect == "postgres"
        claimed = await (_claim_pg if postgres else _claim)(rows, at=at, claim=claim)
        if not claimed:
            return 0
        assignments = {a.id: a for a in await Assignment.filter(id__in=[c[1] for c in claimed])}
        items = {i.id: i for i in await SupervisionItem.filter(
            id__in={a.item_id for a in assignments.values()})}
        moves: list[tuple[int, int, Step, Step | None, datetime | None]] = []
        for event_id, assignment_id, step_value in claimed:
            step, a = Step(step_value), assignments[assignment_id]
            item = items[a.item_id]
            following, when = next_step(step, due_at=item.due_at, ladder=ladder_of(item.ladder), at=at)
            moves.append((event_id, a.id, step, following, when))
        moved = await (_advance_pg if postgres else _advance)(moves, at=at)
        # Submitted or accepted since the scan read it: the ladder has stopped, nothing fires.
        if dropped := [m[0] for m in moves if m[1] not in moved]:
            await EscalationEvent.filter(id__in=dropped).delete()
        fired = [(assignments[m[1]], m[2]) for m in moves if m[1] in moved]
        await _send_escalations(fired, items, at=at)
    return len(fired)


_CLAIM_PG = (
    "INSERT INTO supervision_escalation (assignment_id, step, due_at, fired_at, claim) "
    "SELECT t.a, t.s, t.d, $4, $5 FROM unnest($1::int[], $2::text[], $3::timestamptz[]) AS t(a, s, d) "
    "ON CONFLICT (assignment_id, step) DO NOTHING RETURNING id, assignment_id, step")

_ADVANCE_PG = (
    "UPDATE supervision_assignment AS a SET next_step = v.ns, next_step_at = v.nsa, "
    "escalation_level = v.lvl, overdue_at = CASE WHEN v.overdue THEN $6 ELSE a.overdue_at END "
    "FROM unnest($1::int[], $2::text[], $3::timestamptz[], $4::int[], $5::bool[]) "
    "AS v(id, ns, nsa, lvl, overdue) "
    "WHERE a.id = v.id AND a.state = ANY($7::text[]) RETURNING a.id")


async def _claim_pg(rows: list[tuple[int, Step, datetime]], *, at: datetime,
                    claim: str) -> list[tuple[int, int, str]]:
    return [tuple(r) for r in await fetch_rows(  # type: ignore[misc]
        _CLAIM_PG, [r[0] for r in rows], [Step(r[1]).value for r in rows], [r[2] for r in rows],
        at, claim)]


async def _advance_pg(moves: list[tuple[int, int, Step, Step | None, datetime | None]], *,
                      at: datetime) -> set[int]:
    return {r[0] for r in await fetch_rows(
        _ADVANCE_PG, [m[1] for m in moves], [m[3].value if m[3] else None for m in moves],
        [m[4] for m in moves], [step_level(m[2]) for m in moves],
        [m[2] is Step.OVERDUE for m in moves], at, [s.value for s in LIVE])}


async def _claim(rows: list[tuple[int, Step, datetime]], *, at: datetime,
                 claim: str) -> list[tuple[int, int, str]]:
    """SQLite (one writer at a time): the events inserted, then those this claim holds."""
    await EscalationEvent.bulk_create(
        [EscalationEvent(assignment_id=a, step=s, due_at=d, fired_at=at, claim=claim)
         for a, s, d in rows], batch_size=500, ignore_conflicts=True)
    return list(await EscalationEvent.filter(assignment_id__in=[r[0] for r in rows], claim=claim)
                .values_list("id", "assignment_id", "step"))


async def _advance(moves: list[tuple[int, int, Step, Step | None, datetime | None]], *,
                   at: datetime) -> set[int]:
    """SQLite: each pointer moved by its own conditional UPDATE."""
    moved = set()
    for _, assignment_id, step, following, when in moves:
        changes: dict[str, Any] = {"next_step": following, "next_step_at": when,
                                   "escalation_level": step_level(step)}
        if step is Step.OVERDUE:
            changes["overdue_at"] = at
        if await Assignment.filter(id=assignment_id, state__in=LIVE).update(**changes):
            moved.add(assignment_id)
    return moved


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
