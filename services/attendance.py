"""Attendance figures: one activity's (signed up, checked in, absent, per unit), a zone's year
(attendee-times and rates per unit) and a member's own history."""

from __future__ import annotations

from typing import Any

from tortoise.functions import Count

from models.activities import Activity, ActivityStatus, Checkin, Signup, SignupStatus
from models.org import Member, Unit, Zone
from services import clock
from services.activities import get_organised
from services.auth import Principal
from services.errors import Forbidden, ZoneNotFound


async def attendance(principal: Principal, activity_id: int) -> dict[str, Any]:
    """Signed up, checked in, walk-ins and absent, per unit, with the absent members' names
    (the organiser; staff of the zone)."""
    await get_organised(principal, activity_id, write=False)
    confirmed = await Signup.filter(activity_id=activity_id, status=SignupStatus.CONFIRMED) \
        .values_list("member_id", "unit_id")
    checked = await Checkin.filter(activity_id=activity_id).values_list("member_id", "unit_id", "walk_in")
    checked_ids = {m for m, _, _ in checked}
    units: dict[int | None, dict[str, int]] = {}
    for member_id, unit_id in confirmed:
        u = units.setdefault(unit_id, {"signed_up": 0, "checked_in": 0, "walk_ins": 0})
        u["signed_up"] += 1
        if member_id in checked_ids:
            u["checked_in"] += 1
    for _, unit_id, walk_in in checked:
        if walk_in:
            units.setdefault(unit_id, {"signed_up": 0, "checked_in": 0, "walk_ins": 0})["walk_ins"] += 1
    names = dict(await Unit.filter(id__in=[u for u in units if u]).values_list("id", "name"))
    absent = [m for m, _ in confirmed if m not in checked_ids]
    absent_names = dict(await Member.filter(id__in=absent).values_list("id", "name"))
    signed_up = len(confirmed)
    attended = signed_up - len(absent)
    return {
        "activity_id": activity_id, "signed_up": signed_up, "checked_in": len(checked),
        "walk_ins": sum(1 for c in checked if c[2]), "absent": len(absent),
        "attendance_rate": round(attended / signed_up, 4) if signed_up else None,
        "by_unit": [{"unit_id": u, "unit_name": names.get(u, "") if u else "",
                     "signed_up": v["signed_up"], "checked_in": v["checked_in"],
                     "walk_ins": v["walk_ins"], "absent": v["signed_up"] - v["checked_in"],
                     "attendance_rate": round(v["checked_in"] / v["signed_up"], 4) if v["signed_up"] else None}
                    for u, v in sorted(units.items(), key=lambda kv: kv[0] or 0)],
        "absent_members": [{"member_id": m, "name": absent_names.get(m, "")} for m in absent],
    }


async def zone_attendance(principal: Principal, zone_id: int, *, year: int) -> dict[str, Any]:
    """Attendee-times and attendance rates of a zone's activities in a year, per unit (its unit
    admins; staff governing it)."""
    if not principal.governs(zone_id) and principal.zone_id != zone_id:
        raise Forbidden()
    if not await Zone.exists(id=zone_id):
        raise ZoneNotFound(zone_id=zone_id)
    start, _ = clock.quarter_bounds(year, 1)
    _, end = clock.quarter_bounds(year, 4)
    activity_ids = await Activity.filter(zone_id=zone_id, status=ActivityStatus.ACTIVE,
                                         starts_at__gte=start, starts_at__lt=end).values_list("id", flat=True)
    signed = await Signup.filter(activity_id__in=activity_ids, status=SignupStatus.CONFIRMED) \
        .group_by("unit_id").annotate(n=Count("id")).values_list("unit_id", "n")
    checked = await Checkin.filter(activity_id__in=activity_ids).group_by("unit_id") \
        .annotate(n=Count("id")).values_list("unit_id", "n")
    signed_by, checked_by = dict(signed), dict(checked)
    units = await Unit.filter(zone_id=zone_id).order_by("id")
    return {
        "zone_id": zone_id, "year": year, "activities": len(activity_ids),
        "attendee_times": sum(checked_by.values()),
        "by_unit": [{"unit_id": u.id, "unit_name": u.name, "signed_up": signed_by.get(u.id, 0),
                     "checked_in": checked_by.get(u.id, 0),
                     "attendance_rate": round(min(checked_by.get(u.id, 0), signed_by[u.id]) / signed_by[u.id], 4)
                     if signed_by.get(u.id) else None} for u in units],
    }


async def my_history(member_id: int, *, limit: int = 100) -> list[dict[str, Any]]:
    """A member's sign-ups and walk-ins, newest first, with when they checked in."""
    rows = await Signup.filter(member_id=member_id).select_related("activity") \
        .order_by("-id").limit(limit)
    checkins = dict(await Checkin.filter(member_id=member_id,
                                         activity_id__in=[r.activity_id for r in rows])
                    .values_list("activity_id", "checked_in_at"))
    walk_ins = await Checkin.filter(member_id=member_id, walk_in=True).exclude(
        activity_id__in=[r.activity_id for r in rows]).select_related("activity")
    out = [{"activity_id": r.activity_id, "title": r.activity.title, "kind": r.activity.kind.value,
            "starts_at": r.activity.starts_at, "status": r.status.value,
            "checked_in_at": checkins.get(r.activity_id)} for r in rows]
    out += [{"activity_id": c.activity_id, "title": c.activity.title, "kind": c.activity.kind.value,
             "starts_at": c.activity.starts_at, "status": "walk_in", "checked_in_at": c.checked_in_at}
            for c in walk_ins]
    return sorted(out, key=lambda r: r["starts_at"], reverse=True)
