"""Activities: who sees and who organises them, creation by the duty unit or staff, editing,
cancelling, the list, one activity with the caller's own standing, and the day-before reminder.

Sign-up lives in services/signups.py, check-in in services/checkins.py, attendance figures in
services/attendance.py, contests in services/contests.py.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from models.activities import Activity, ActivityKind, ActivityStatus, Checkin, Signup, SignupStatus
from models.org import Member, Rotation, Zone
from services import audience as audience_rules
from services import clock, inbox
from services.access import check_duty_zone
from services.auth import Principal
from services.errors import (
    ActivityCancelled,
    ActivityNotFound,
    CapacityBelowConfirmed,
    Forbidden,
    InvalidInput,
    NotYourQuarter,
    OutsideRotation,
    ZoneNotFound,
)
from services.views import View

GUIDELINE_MAX_PER_ROTATION = 4
EDITABLE = {"title", "description", "place", "lat", "lng", "radius_m", "starts_at", "ends_at",
            "capacity", "unit_quota", "signup_opens_at", "signup_closes_at", "checkin_opens_at",
            "checkin_closes_at", "walk_ins", "waitlist", "audience"}
LIST_CHUNK = 200


# -- reading and scope ---------------------------------------------------------------------------

async def get_or_raise(activity_id: int) -> Activity:
    activity = await Activity.get_or_none(id=activity_id)
    if activity is None:
        raise ActivityNotFound(activity_id=activity_id)
    return activity


async def member_context(member_id: int) -> tuple[int | None, int | None]:
    """(unit_id, zone_id) of a member."""
    row = await Member.filter(id=member_id).values_list("unit_id", "unit__zone_id")
    return (row[0][0], row[0][1]) if row else (None, None)


def in_audience(activity: Activity, *, unit_id: int | None, zone_id: int | None,
                role: str) -> bool:
    return audience_rules.matches(activity.audience or {}, unit_id=unit_id, zone_id=zone_id, role=role)


def can_see(principal: Principal, activity: Activity) -> bool:
    """Staff governing its zone (and every member of staff a city-wide one); its zone's members;
    whoever its audience names."""
    return (principal.governs(activity.zone_id)
            or (principal.is_staff and activity.zone_id is None)
            or (activity.zone_id is not None and activity.zone_id == principal.zone_id)
            or in_audience(activity, unit_id=principal.unit_id, zone_id=principal.zone_id,
                           role=principal.role.value))


async def check_can_see(principal: Principal, activity: Activity) -> None:
    """An activity the caller may not see is, to them, not found."""
    if not can_see(principal, activity):
        raise ActivityNotFound(activity_id=activity.id)


def of_rotation(activity: Activity, rotation: Rotation) -> bool:
    """The activity is the rotation's: made by its duty unit in it, or placed in the zone by the
    committee during it."""
    if activity.rotation_id is not None:
        return activity.rotation_id == rotation.id
    return activity.organiser_unit_id is None and \
        rotation.starts_at <= activity.starts_at < rotation.ends_at


async def check_organiser(principal: Principal, activity: Activity) -> None:
    """Managing an activity: staff governing its zone (the committee: city-wide ones too), or the
    admins of the unit on duty now in its zone, for the activities of their own rotation only (a
    new duty unit does not inherit its predecessor's)."""
    if principal.governs(activity.zone_id):
        return
    if activity.zone_id is None:
        raise Forbidden()
    duty = await check_duty_zone(principal, activity.zone_id)
    if duty is None or not of_rotation(activity, duty):
        raise NotYourQuarter(activity_id=activity.id)


async def check_organiser_reads(principal: Principal, activity: Activity) -> None:
    """Reading its sign-ups and attendance: whoever manages it, and the admins of the unit that
    organised it, after its quarter too (for its handover and its ledger)."""
    if principal.is_unit_admin and principal.unit_id is not None:
        if activity.organiser_unit_id == principal.unit_id:
            return
        if activity.rotation_id is not None and \
                await Rotation.exists(id=activity.rotation_id, unit_id=principal.unit_id):
            return
    await check_organiser(principal, activity)


async def get_organised(principal: Principal, activity_id: int, *, write: bool = True) -> Activity:
    """The activity, if the caller organises it (`write=False`: if they may read its records)."""
    activity = await get_or_raise(activity_id)
    if write:
        await check_organiser(principal, activity)
    else:
        await check_organiser_reads(principal, activity)
    return activity


async def can_read_any(principal: Principal, activity_ids: list[int]) -> bool:
    """Whether the caller may see one of these activities (their records' attachments)."""
    return any(can_see(principal, a) for a in await Activity.filter(id__in=activity_ids))


async def list_activities(principal: Principal, *, zone_id: int | None, kind: str | None,
                          start: datetime | None, end: datetime | None, limit: int = 100,
                          cursor: int | None = None) -> dict[str, Any]:
    """The activities the caller may see, soonest first, with their own standing in each; a page
    ends at `limit`, and `next_cursor` (the last activity's id) continues after it."""
    qs = Activity.all()
    if cursor is not None:
        after = await Activity.get_or_none(id=cursor).values_list("starts_at", flat=True)
        if after is None:
            raise ActivityNotFound(activity_id=cursor)
        qs = qs.filter(Q(starts_at__gt=after) | Q(starts_at=after, id__gt=cursor))
    if zone_id is not None:
        qs = qs.filter(zone_id=zone_id)
    if kind is not None:
        qs = qs.filter(kind=kind)
    if start is not None:
        qs = qs.filter(ends_at__gte=start)
    if end is not None:
        qs = qs.filter(starts_at__lt=end)
    qs = qs.order_by("starts_at", "id")
    found: list[Activity] = []
    offset = 0
    # Audiences are JSON, so visibility is decided here; read in chunks until the page is full.
    while len(found) <= limit:
        rows = await qs.offset(offset).limit(LIST_CHUNK)
        found += [a for a in rows if can_see(principal, a)]
        if len(rows) < LIST_CHUNK:
            break
        offset += LIST_CHUNK
    more, found = len(found) > limit, found[:limit]
    mine = {s.activity_id: s for s in await Signup.filter(
        member_id=principal.member_id, activity_id__in=[a.id for a in found])}
    return {"items": [View(a, my_status=mine[a.id].status.value if a.id in mine else None,
                           my_position=None, my_checked_in=None) for a in found],
            "next_cursor": found[-1].id if more else None}


async def get_for(principal: Principal, activity_id: int) -> View:
    """One activity with the caller's own sign-up, waitlist place and check-in, and its record
    (minutes and photos) for those who may read it."""
    from services import records
    from services.signups import waitlist_position

    activity = await get_or_raise(activity_id)
    await check_can_see(principal, activity)
    mine = await Signup.get_or_none(activity_id=activity.id, member_id=principal.member_id)
    checked = await Checkin.exists(activity_id=activity.id, member_id=principal.member_id)
    return View(activity, my_status=mine.status.value if mine else None,
                my_position=await waitlist_position(mine) if mine else None, my_checked_in=checked,
                record=await records.for_activity(principal, activity))


# -- create, edit, cancel ------------------------------------------------------------------------

def _with_defaults(data: dict[str, Any], now: datetime) -> dict[str, Any]:
    out = dict(data)
    out["signup_opens_at"] = out.get("signup_opens_at") or now
    out["signup_closes_at"] = out.get("signup_closes_at") or out["starts_at"]
    out["checkin_opens_at"] = out.get("checkin_opens_at") or out["starts_at"] - timedelta(minutes=30)
    out["checkin_closes_at"] = out.get("checkin_closes_at") or out["ends_at"]
    return out


def check_times(data: dict[str, Any]) -> None:
    errors = []

    def before(a: str, b: str) -> None:
        if data.get(a) and data.get(b) and data[a] > data[b]:
            errors.append({"loc": ["body", a], "msg": f"{a} 不能晚于 {b}", "type": "value_error"})

    before("starts_at", "ends_at")
    before("signup_opens_at", "signup_closes_at")
    before("checkin_opens_at", "checkin_closes_at")
    before("signup_closes_at", "ends_at")
    if data.get("radius_m") is not None and (data.get("lat") is None or data.get("lng") is None):
        errors.append({"loc": ["body", "radius_m"], "msg": "设置 radius_m 须同时提供 lat 和 lng",
                       "type": "value_error"})
    if errors:
        raise InvalidInput(errors=errors)


def _check_in_rotation(duty: Rotation, starts_at: datetime) -> None:
    """A duty unit's activities start within its own rotation."""
    if not duty.starts_at <= starts_at < duty.ends_at:
        raise OutsideRotation(rotation_starts_at=duty.starts_at, rotation_ends_at=duty.ends_at)


async def _check_audience(principal: Principal, zone_id: int | None, audience: dict[str, Any]) -> None:
    """Staff address their zones (the committee anyone); a duty unit its own zone."""
    await audience_rules.check_exists(audience)
    if principal.is_committee:
        return
    zones = set(principal.liaison_zone_ids) if principal.is_liaison else {zone_id}
    await audience_rules.check_within(audience, zone_ids={z for z in zones if z is not None})


async def create(principal: Principal, data: dict[str, Any]) -> View:
    """`data` is validated shape; this checks who may create it where and when. More than four
    activities planned in one rotation is a warning (the 2-4 guideline), not a refusal."""
    data = _with_defaults(data, clock.now())
    check_times(data)
    zone_id = data.get("zone_id")
    if zone_id is not None and not await Zone.exists(id=zone_id):
        raise ZoneNotFound(zone_id=zone_id)
    rotation: Rotation | None = None
    organiser_unit_id: int | None = None
    if not principal.governs(zone_id):  # the committee anywhere (city-wide too), a liaison in its zones
        if zone_id is None:
            raise Forbidden()
        rotation = await check_duty_zone(principal, zone_id)
        assert rotation is not None
        _check_in_rotation(rotation, data["starts_at"])
        organiser_unit_id = principal.unit_id
    audience = data.get("audience") or ({"zone_ids": [zone_id]} if zone_id else {"all": True})
    await _check_audience(principal, zone_id, audience)
    if zone_id is not None and rotation is None:
        rotation = await Rotation.filter(zone_id=zone_id, starts_at__lte=data["starts_at"],
                                         ends_at__gt=data["starts_at"]).first()
    activity = await Activity.create(
        **{k: v for k, v in data.items() if k in EDITABLE - {"audience"}}, audience=audience,
        zone_id=zone_id, kind=ActivityKind(data["kind"]), organiser_unit_id=organiser_unit_id,
        rotation_id=rotation.id if rotation else None, created_by_id=principal.member_id,
        checkin_secret=secrets.token_urlsafe(32))
    warnings = []
    if rotation is not None and await Activity.filter(
            rotation_id=rotation.id, status=ActivityStatus.ACTIVE).count() > GUIDELINE_MAX_PER_ROTATION:
        warnings.append("rotation_over_guideline")
    return View(activity, warnings=warnings)


async def update(principal: Principal, activity_id: int, changes: dict[str, Any]) -> Activity:
    """Edit; members keep what they were promised: capacity never drops below confirmed seats,
    and more room moves the waitlist up. A duty unit cannot move its activity out of its quarter
    nor address it beyond its zone."""
    from services.signups import fill_from_waitlist

    activity = await get_organised(principal, activity_id)
    if activity.status is ActivityStatus.CANCELLED:
        raise ActivityCancelled()
    changes = {k: v for k, v in changes.items() if k in EDITABLE}
    check_times({f: getattr(activity, f) for f in EDITABLE} | changes)
    if not principal.governs(activity.zone_id):
        duty = await check_duty_zone(principal, activity.zone_id)  # type: ignore[arg-type]
        assert duty is not None
        _check_in_rotation(duty, changes.get("starts_at", activity.starts_at))
    if "audience" in changes:
        await _check_audience(principal, activity.zone_id, changes["audience"])
    async with in_transaction():
        if changes.get("capacity") is not None:
            ok = await Activity.filter(id=activity_id, confirmed__lte=changes["capacity"]).update(**changes)
            if not ok:
                raise CapacityBelowConfirmed(confirmed=activity.confirmed)
        elif changes:
            await Activity.filter(id=activity_id).update(**changes)
        await fill_from_waitlist(activity_id)
    return await Activity.get(id=activity_id)


async def cancel(principal: Principal, activity_id: int, *, reason: str) -> Activity:
    """Cancel; everyone signed up or waiting is told (inbox and phone)."""
    activity = await get_organised(principal, activity_id)
    async with in_transaction():
        changed = await Activity.filter(id=activity_id, status=ActivityStatus.ACTIVE).update(
            status=ActivityStatus.CANCELLED, cancelled_at=clock.now())
        if changed:
            people = await Signup.filter(
                activity_id=activity_id, status__in=[SignupStatus.CONFIRMED, SignupStatus.WAITLISTED],
            ).values_list("member_id", flat=True)
            await inbox.send_system(member_ids=people, topic="activity.cancelled",
                                    title=f"活动取消：{activity.title}", body=reason,
                                    ref_type="activity", ref_id=activity_id)
    return await Activity.get(id=activity_id)


async def send_reminders(*, before: timedelta, at: datetime | None = None) -> int:
    """Cron: the members confirmed for an activity starting within `before` are reminded once
    (inbox and phone). The conditional update of `reminded_at` decides which run sends."""
    at = at or clock.now()
    sent = 0
    for activity in await Activity.filter(status=ActivityStatus.ACTIVE, reminded_at__isnull=True,
                                          starts_at__gt=at, starts_at__lte=at + before):
        async with in_transaction():
            if not await Activity.filter(id=activity.id, reminded_at__isnull=True).update(reminded_at=at):
                continue
            people = await Signup.filter(activity_id=activity.id, status=SignupStatus.CONFIRMED) \
                .values_list("member_id", flat=True)
            when = clock.local_iso(activity.starts_at)[5:16].replace("T", " ")
            await inbox.send_system(member_ids=people, topic="activity.reminder",
                                    title=f"活动提醒：{activity.title}",
                                    body=f"{when} {activity.place}".strip(),
                                    ref_type="activity", ref_id=activity.id)
            sent += 1
    return sent
