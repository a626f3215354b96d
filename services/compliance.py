"""The "three ones" (三个一): every rotation holds a party lesson, a party-building activity and a
handover meeting — held meaning ended, not cancelled, with at least one check-in."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from models.activities import Activity, ActivityKind, ActivityStatus, ComplianceWarning
from models.org import Rotation, Zone
from services import clock, inbox
from services.activities import GUIDELINE_MAX_PER_ROTATION
from services.errors import ZoneNotFound

THREE_ONES = (ActivityKind.PARTY_LESSON, ActivityKind.PARTY_ACTIVITY, ActivityKind.HANDOVER_MEETING)
WARN_BEFORE = timedelta(days=14)
LABELS = {ActivityKind.PARTY_LESSON: "党课", ActivityKind.PARTY_ACTIVITY: "党建活动",
          ActivityKind.HANDOVER_MEETING: "交接会"}


async def rotation_status(rotation: Rotation, *, at: datetime | None = None) -> dict[str, Any]:
    at = at or clock.now()
    planned = await Activity.filter(rotation_id=rotation.id, status=ActivityStatus.ACTIVE) \
        .values_list("kind", "ends_at", "checked_in")
    held = {kind for kind, ends_at, checked_in in planned if ends_at <= at and checked_in > 0}
    result: dict[str, Any] = {k.value: (k in held) for k in THREE_ONES}
    result.update(
        rotation_id=rotation.id, unit_id=rotation.unit_id, starts_at=rotation.starts_at,
        ends_at=rotation.ends_at, activities_planned=len(planned),
        missing=[k.value for k in THREE_ONES if k not in held],
        complete=all(k in held for k in THREE_ONES),
        warnings=["over_guideline"] if len(planned) > GUIDELINE_MAX_PER_ROTATION else [],
    )
    return result


async def zone_compliance(zone_id: int, *, quarter: str) -> dict[str, Any]:
    """The "three ones" of each rotation of a zone in a quarter like `2026Q4`."""
    year, q = clock.parse_quarter(quarter)
    if not await Zone.exists(id=zone_id):
        raise ZoneNotFound(zone_id=zone_id)
    rotations = await Rotation.filter(zone_id=zone_id, year=year, quarter=q) \
        .select_related("unit").order_by("starts_at")
    items = []
    for r in rotations:
        status = await rotation_status(r)
        status["unit_name"] = r.unit.name
        items.append(status)
    return {"zone_id": zone_id, "quarter": f"{year}Q{q}", "rotations": items}


async def warn_incomplete_rotations(*, at: datetime | None = None) -> int:
    """Cron: 14 days before a rotation ends, tell its duty unit and the zone's liaisons what is
    missing — once per rotation, whichever worker runs it (the unique warning row decides)."""
    at = at or clock.now()
    due = await Rotation.filter(starts_at__lte=at, ends_at__gt=at, ends_at__lte=at + WARN_BEFORE)
    warned = set(await ComplianceWarning.filter(rotation_id__in=[r.id for r in due])
                 .values_list("rotation_id", flat=True))
    sent = 0
    for rotation in (r for r in due if r.id not in warned):
        status = await rotation_status(rotation, at=at)
        if status["complete"]:
            continue
        missing = "、".join(LABELS[ActivityKind(k)] for k in status["missing"])
        try:
            async with in_transaction():
                await ComplianceWarning.create(rotation_id=rotation.id, missing=status["missing"])
                people = [*await inbox.unit_admin_ids([rotation.unit_id]),
                          *await inbox.liaison_ids(rotation.zone_id)]
                await inbox.send_system(
                    member_ids=people, topic="compliance.warning",
                    title="“三个一”提醒：本季度尚未完成" + missing,
                    body=f"轮值将于 {clock.local_iso(rotation.ends_at)} 结束，请尽快安排{missing}。",
                    ref_type="rotation", ref_id=rotation.id)
            sent += 1
        except IntegrityError:
            continue  # another worker recorded (and sent) this warning first
    return sent
