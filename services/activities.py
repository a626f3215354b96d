"""Activities: creation by the duty unit or the committee, sign-up with capacity, unit quota and
waitlist, cancellation with promotion, check-in by venue code or personal pass, attendance.

Seats are claimed with conditional UPDATEs (`confirmed < capacity`) inside one transaction,
and a member has at most one sign-up row per activity (unique constraint), so there are never
more confirmed seats than capacity, whatever the concurrency, on PostgreSQL and SQLite alike.
"""

from __future__ import annotations

import contextlib
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.functions import Count
from tortoise.transactions import in_transaction

from models.activities import (
    Activity,
    ActivityKind,
    ActivityStatus,
    Checkin,
    CheckinMethod,
    ScanNonce,
    Signup,
    SignupStatus,
    UnitSeats,
)
from models.org import Member, Rotation, Unit, Zone
from services import audience as audience_rules
from services import clock, inbox, passes
from services.access import NotOnDuty, check_duty_zone, duty_rotation
from services.auth import Principal
from services.errors import Forbidden, InvalidInput, NotFound, ServiceError, ZoneNotFound

GUIDELINE_MAX_PER_ROTATION = 4
EDITABLE = {"title", "description", "place", "lat", "lng", "radius_m", "starts_at", "ends_at",
            "capacity", "unit_quota", "signup_opens_at", "signup_closes_at", "checkin_opens_at",
            "checkin_closes_at", "walk_ins", "waitlist", "audience"}


class ActivityNotFound(NotFound):
    code, default_message = "activity_not_found", "找不到该活动"


class ActivityCancelled(ServiceError):
    code, http_status, default_message = "activity_cancelled", 409, "该活动已取消"


class SignupNotOpen(ServiceError):
    code, http_status, default_message = "signup_not_open", 409, "报名尚未开始"


class SignupClosed(ServiceError):
    code, http_status, default_message = "signup_closed", 409, "报名已截止"


class ActivityFull(ServiceError):
    code, http_status, default_message = "activity_full", 409, "名额已满"


class NotInAudience(ServiceError):
    code, http_status, default_message = "not_in_audience", 403, "该活动不面向您所在的单位"


class NotSignedUp(ServiceError):
    code, http_status, default_message = "not_signed_up", 404, "您没有报名该活动"


class AlreadyCheckedIn(ServiceError):
    code, http_status, default_message = "already_checked_in", 409, "您已签到，不能取消报名"


class CapacityBelowConfirmed(ServiceError):
    code, http_status, default_message = "capacity_below_confirmed", 409, "名额不能少于已确认的人数"


class OutsideRotation(ServiceError):
    code, http_status, default_message = "outside_rotation", 403, "活动时间不在本单位的轮值季度内"


class CheckinError(ServiceError):
    """A check-in refusal; `code` is one of the distinct check-in error codes."""

    http_status = 409
    MESSAGES = {
        "checkin_not_open": "签到尚未开始",
        "checkin_closed": "签到已结束",
        "checkin_code_invalid": "签到码无效",
        "checkin_code_forged": "签到码无法验证",
        "checkin_code_expired": "签到码已过期，请重新扫码",
        "location_required": "请允许获取位置后再签到",
        "too_far": "您不在活动地点附近",
        "pass_invalid": "个人签到码无效",
        "pass_forged": "个人签到码无法验证",
        "pass_expired": "个人签到码已过期",
        "scan_replayed": "该扫码记录已用于其他党员",
        "not_signed_up": "该党员没有报名此活动",
        "waitlisted": "您在候补名单中，尚未获得名额，暂不能签到",
        "member_not_found": "找不到该党员",
    }

    def __init__(self, code: str, **data: object) -> None:
        super().__init__(self.MESSAGES.get(code, "签到失败"), **data)
        self.code = code


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


async def check_organiser(principal: Principal, activity: Activity) -> None:
    """Staff governing the activity's zone (the committee: city-wide ones too), or the admins of
    the unit on duty now in its zone."""
    if principal.governs(activity.zone_id):
        return
    if activity.zone_id is None:
        raise Forbidden()
    await check_duty_zone(principal, activity.zone_id)


async def check_can_see(principal: Principal, activity: Activity) -> None:
    if principal.governs(activity.zone_id):
        return
    if in_audience(activity, unit_id=principal.unit_id, zone_id=principal.zone_id,
                   role=principal.role.value):
        return
    if activity.zone_id is not None and activity.zone_id == principal.zone_id:
        return
    raise ActivityNotFound(activity_id=activity.id)


async def can_read_any(principal: Principal, activity_ids: list[int]) -> bool:
    """Whether the caller may see one of these activities (their records' attachments)."""
    for activity in await Activity.filter(id__in=activity_ids):
        try:
            await check_can_see(principal, activity)
            return True
        except ActivityNotFound:
            continue
    return False


# -- create, edit, cancel ------------------------------------------------------------------------

@dataclass
class Created:
    activity: Activity
    warnings: list[str]


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


async def create(principal: Principal, data: dict[str, Any]) -> Created:
    """`data` is validated shape; this checks who may create it where and when."""
    now = clock.now()
    data = _with_defaults(data, now)
    check_times(data)
    zone_id = data.get("zone_id")
    organiser_unit_id: int | None = None
    rotation: Rotation | None = None
    if zone_id is not None and not await Zone.exists(id=zone_id):
        raise ZoneNotFound(zone_id=zone_id)
    audience = data.get("audience") or ({"zone_ids": [zone_id]} if zone_id else {"all": True})
    await audience_rules.check_exists(audience)
    if principal.governs(zone_id):  # the committee anywhere (city-wide too), a liaison in its zones
        if not principal.is_committee:
            await audience_rules.check_within(audience, zone_ids=set(principal.liaison_zone_ids))
    else:
        if zone_id is None:
            raise Forbidden()
        duty = await check_duty_zone(principal, zone_id)
        assert duty is not None
        _check_in_rotation(duty, data["starts_at"])
        await audience_rules.check_within(audience, zone_ids={zone_id})
        organiser_unit_id, rotation = principal.unit_id, duty
    if zone_id is not None and rotation is None:
        rotation = await Rotation.filter(zone_id=zone_id, starts_at__lte=data["starts_at"],
                                         ends_at__gt=data["starts_at"]).first()
    async with in_transaction():
        activity = await Activity.create(
            **{k: v for k, v in data.items() if k in EDITABLE - {"audience"}}, audience=audience, zone_id=zone_id,
            kind=ActivityKind(data["kind"]), organiser_unit_id=organiser_unit_id,
            rotation_id=rotation.id if rotation else None, created_by_id=principal.member_id,
            checkin_secret=secrets.token_urlsafe(32))
    warnings = []
    if rotation is not None:
        planned = await Activity.filter(rotation_id=rotation.id,
                                        status=ActivityStatus.ACTIVE).count()
        if planned > GUIDELINE_MAX_PER_ROTATION:
            warnings.append("rotation_over_guideline")
    return Created(activity, warnings)


def _check_in_rotation(duty: Rotation, starts_at: datetime) -> None:
    """A duty unit's activities start within its own rotation."""
    if not duty.starts_at <= starts_at < duty.ends_at:
        raise OutsideRotation(rotation_starts_at=duty.starts_at, rotation_ends_at=duty.ends_at)


async def update(principal: Principal, activity_id: int, changes: dict[str, Any]) -> Activity:
    """Edit; members keep what they were promised: capacity never drops below confirmed seats.
    A duty unit cannot move its activity out of its quarter nor address it beyond its zone."""
    activity = await get_or_raise(activity_id)
    await check_organiser(principal, activity)
    if activity.status is ActivityStatus.CANCELLED:
        raise ActivityCancelled()
    changes = {k: v for k, v in changes.items() if k in EDITABLE}
    merged = {f: getattr(activity, f) for f in EDITABLE} | changes
    check_times(merged)
    if "audience" in changes:
        await audience_rules.check_exists(changes["audience"])
    if not principal.governs(activity.zone_id):
        duty = await check_duty_zone(principal, activity.zone_id)  # type: ignore[arg-type]
        assert duty is not None
        _check_in_rotation(duty, merged["starts_at"])
        if "audience" in changes:
            await audience_rules.check_within(changes["audience"], zone_ids={activity.zone_id})  # type: ignore[arg-type]
    elif principal.is_liaison and "audience" in changes:
        await audience_rules.check_within(changes["audience"], zone_ids=set(principal.liaison_zone_ids))
    async with in_transaction():
        if "capacity" in changes and changes["capacity"] is not None:
            ok = await Activity.filter(id=activity_id, confirmed__lte=changes["capacity"]).update(**changes)
            if not ok:
                raise CapacityBelowConfirmed(confirmed=activity.confirmed)
        elif changes:
            await Activity.filter(id=activity_id).update(**changes)
        fresh = await Activity.get(id=activity_id)
        # More room (capacity raised or lifted, or a quota raised): the waitlist moves up.
        while await _promote_one(fresh) is not None:
            pass
    return await Activity.get(id=activity_id)


async def cancel(principal: Principal, activity_id: int, *, reason: str) -> Activity:
    activity = await get_or_raise(activity_id)
    await check_organiser(principal, activity)
    async with in_transaction():
        changed = await Activity.filter(id=activity_id, status=ActivityStatus.ACTIVE).update(
            status=ActivityStatus.CANCELLED, cancelled_at=clock.now())
        if changed:
            people = await Signup.filter(
                activity_id=activity_id,
                status__in=[SignupStatus.CONFIRMED, SignupStatus.WAITLISTED],
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


# -- sign-up -------------------------------------------------------------------------------------

async def _claim_seat(activity: Activity, unit_id: int | None) -> bool:
    """Take one confirmed seat (and one of the unit's quota) or nothing. Inside a transaction.
    Locks are always taken in one order — the activity row, then the unit's seats — here, in
    `_release_seat` and in `_promote_one`, so sign-ups and cancels never deadlock."""
    if activity.capacity is None:
        await Activity.filter(id=activity.id).update(confirmed=F("confirmed") + 1)
    elif not await Activity.filter(id=activity.id, confirmed__lt=F("capacity")).update(
            confirmed=F("confirmed") + 1):
        return False
    if activity.unit_quota is not None and unit_id is not None:
        await UnitSeats.bulk_create([UnitSeats(activity_id=activity.id, unit_id=unit_id)],
                                    ignore_conflicts=True)
        got = await UnitSeats.filter(activity_id=activity.id, unit_id=unit_id,
                                     confirmed__lt=activity.unit_quota).update(confirmed=F("confirmed") + 1)
        if not got:  # the unit is at its quota: give the activity seat back
            await Activity.filter(id=activity.id).update(confirmed=F("confirmed") - 1)
            return False
    return True


async def _release_seat(activity: Activity, unit_id: int | None) -> None:
    await Activity.filter(id=activity.id).update(confirmed=F("confirmed") - 1)
    if activity.unit_quota is not None and unit_id is not None:
        await UnitSeats.filter(activity_id=activity.id, unit_id=unit_id).update(
            confirmed=F("confirmed") - 1)


async def _promote_one(activity: Activity) -> Signup | None:
    """Confirm the first waitlisted member who fits (unit quota); None if nobody can move up."""
    skip: list[int] = []
    while True:
        qs = Signup.filter(activity_id=activity.id, status=SignupStatus.WAITLISTED) \
            .exclude(id__in=skip).order_by("queued_at", "id").limit(1)
        candidate = await qs.select_for_update(skip_locked=True).first()
        if candidate is None:
            return None
        if not await _claim_seat(activity, candidate.unit_id):
            if activity.capacity is not None and not await Activity.filter(
                    id=activity.id, confirmed__lt=F("capacity")).exists():
                return None  # the activity is full
            skip.append(candidate.id)  # this member's unit is at its quota; try the next
            continue
        moved = await Signup.filter(id=candidate.id, status=SignupStatus.WAITLISTED).update(
            status=SignupStatus.CONFIRMED, confirmed_at=clock.now())
        if not moved:  # someone else promoted or cancelled them meanwhile
            await _release_seat(activity, candidate.unit_id)
            skip.append(candidate.id)
            continue
        await Activity.filter(id=activity.id).update(waitlisted=F("waitlisted") - 1)
        await inbox.send_system(member_ids=[candidate.member_id], topic="activity.promoted",
                                title=f"候补转正：{activity.title}",
                                body="您已从候补转为正式报名，请按时参加。",
                                ref_type="activity", ref_id=activity.id)
        candidate.status = SignupStatus.CONFIRMED
        return candidate


def _check_signup_window(activity: Activity, now: datetime) -> None:
    if activity.status is ActivityStatus.CANCELLED:
        raise ActivityCancelled()
    if now < activity.signup_opens_at:
        raise SignupNotOpen(opens_at=activity.signup_opens_at)
    if now >= activity.signup_closes_at:
        raise SignupClosed(closed_at=activity.signup_closes_at)


async def signup(*, activity_id: int, member_id: int, by_member_id: int | None = None,
                 principal_role: str = "member") -> Signup:
    """Sign a member up: confirmed if a seat is free, else waitlisted. Idempotent: a repeat
    returns the standing row (its `_repeated` attribute is then True)."""
    activity = await get_or_raise(activity_id)
    _check_signup_window(activity, clock.now())
    unit_id, zone_id = await member_context(member_id)
    if not in_audience(activity, unit_id=unit_id, zone_id=zone_id, role=principal_role):
        raise NotInAudience()
    try:
        async with in_transaction():
            return await _signup_locked(activity, member_id, unit_id, by_member_id)
    except IntegrityError:
        # The same member signing up twice at once: the other request's row stands.
        existing = await Signup.get_or_none(activity_id=activity_id, member_id=member_id)
        if existing is None:
            raise
        existing._repeated = True  # type: ignore[attr-defined]
        return existing


async def _signup_locked(activity: Activity, member_id: int, unit_id: int | None,
                         by_member_id: int | None) -> Signup:
    existing = await Signup.filter(activity_id=activity.id, member_id=member_id) \
        .select_for_update().first()
    if existing is not None and existing.status is not SignupStatus.CANCELLED:
        existing._repeated = True  # type: ignore[attr-defined]
        return existing
    now = clock.now()
    if await _claim_seat(activity, unit_id):
        status, confirmed_at = SignupStatus.CONFIRMED, now
    elif activity.waitlist:
        status, confirmed_at = SignupStatus.WAITLISTED, None
        await Activity.filter(id=activity.id).update(waitlisted=F("waitlisted") + 1)
    else:
        raise ActivityFull(capacity=activity.capacity)
    if existing is None:
        return await Signup.create(activity_id=activity.id, member_id=member_id, unit_id=unit_id,
                                   status=status, queued_at=now, confirmed_at=confirmed_at,
                                   signed_up_by_id=by_member_id)
    await Signup.filter(id=existing.id, status=SignupStatus.CANCELLED).update(
        status=status, queued_at=now, confirmed_at=confirmed_at, cancelled_at=None,
        unit_id=unit_id, signed_up_by_id=by_member_id)
    return await Signup.get(id=existing.id)


async def signup_batch(principal: Principal, *, activity_id: int, member_ids: list[int]) -> list[Signup]:
    """A unit admin signs up several of their members: all or nothing."""
    if not principal.is_unit_admin or principal.unit_id is None:
        raise Forbidden()
    activity = await get_or_raise(activity_id)
    _check_signup_window(activity, clock.now())
    ids = list(dict.fromkeys(member_ids))
    mine = set(await Member.filter(id__in=ids, unit_id=principal.unit_id, is_active=True)
               .values_list("id", flat=True))
    strangers = [m for m in ids if m not in mine]
    if strangers:
        raise Forbidden("只能为本单位党员报名", member_ids=strangers)
    if not in_audience(activity, unit_id=principal.unit_id, zone_id=principal.zone_id, role="member"):
        raise NotInAudience()
    async with in_transaction():
        return [await _signup_locked(activity, m, principal.unit_id, principal.member_id) for m in ids]


async def cancel_signup(*, activity_id: int, member_id: int) -> Signup:
    """Cancel a seat (the first waitlisted member who fits moves up at once) or leave the waitlist."""
    activity = await get_or_raise(activity_id)
    now = clock.now()
    if now >= activity.signup_closes_at:
        raise SignupClosed(closed_at=activity.signup_closes_at)
    if await Checkin.exists(activity_id=activity_id, member_id=member_id):
        raise AlreadyCheckedIn()  # attended: the sign-up stays, so the figures agree
    async with in_transaction():
        row = await Signup.filter(activity_id=activity_id, member_id=member_id).select_for_update().first()
        if row is None or row.status is SignupStatus.CANCELLED:
            raise NotSignedUp()
        was = row.status
        done = await Signup.filter(id=row.id, status=was).update(status=SignupStatus.CANCELLED,
                                                                 cancelled_at=now)
        if not done:
            raise NotSignedUp()
        if was is SignupStatus.CONFIRMED:
            await _release_seat(activity, row.unit_id)
            await _promote_one(await Activity.get(id=activity_id))
        else:
            await Activity.filter(id=activity_id).update(waitlisted=F("waitlisted") - 1)
    return await Signup.get(id=row.id)


async def waitlist_position(signup_row: Signup) -> int | None:
    if signup_row.status is not SignupStatus.WAITLISTED:
        return None
    ahead = await Signup.filter(activity_id=signup_row.activity_id, status=SignupStatus.WAITLISTED,
                                queued_at__lt=signup_row.queued_at).count()
    same_time = await Signup.filter(activity_id=signup_row.activity_id,
                                    status=SignupStatus.WAITLISTED,
                                    queued_at=signup_row.queued_at, id__lt=signup_row.id).count()
    return ahead + same_time + 1


async def list_signups(principal: Principal, activity_id: int) -> tuple[Activity, list[Signup]]:
    activity = await get_or_raise(activity_id)
    await check_organiser(principal, activity)
    rows = await Signup.filter(activity_id=activity_id).select_related("member") \
        .order_by("status", "queued_at", "id")
    return activity, rows


# -- check-in ------------------------------------------------------------------------------------

def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance (haversine), metres."""
    r = 6_371_000.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


def _check_window(activity: Activity, at: datetime) -> None:
    if activity.status is ActivityStatus.CANCELLED:
        raise ActivityCancelled()
    if at < activity.checkin_opens_at:
        raise CheckinError("checkin_not_open", opens_at=activity.checkin_opens_at)
    if at >= activity.checkin_closes_at:
        raise CheckinError("checkin_closed", closed_at=activity.checkin_closes_at)


async def venue_code(principal: Principal, activity_id: int) -> dict[str, Any]:
    activity = await get_or_raise(activity_id)
    await check_organiser(principal, activity)
    now = clock.now()
    step = passes.step_of(now.timestamp())
    token = passes.venue_token(activity_id=activity.id, secret=activity.checkin_secret, step=step)
    expires = datetime.fromtimestamp((step + 1) * passes.STEP_S, tz=now.tzinfo)
    return {"token": token, "expires_at": expires, "svg": passes.qr_svg(token)}


@dataclass
class CheckinResult:
    checkin: Checkin
    created: bool


async def _record_checkin(activity: Activity, *, member_id: int, method: CheckinMethod,
                          at: datetime, scanned_by: int | None = None, nonce: str | None = None,
                          lat: float | None = None, lng: float | None = None) -> CheckinResult:
    """Count a member once: a confirmed sign-up, or a walk-in where the activity allows them."""
    existing = await Checkin.get_or_none(activity_id=activity.id, member_id=member_id)
    if existing is not None:
        return CheckinResult(existing, False)
    status = await Signup.filter(activity_id=activity.id, member_id=member_id).values_list(
        "status", flat=True)
    confirmed = SignupStatus.CONFIRMED in status
    if not confirmed and not activity.walk_ins:
        raise CheckinError("waitlisted" if SignupStatus.WAITLISTED in status else "not_signed_up")
    unit_id, _ = await member_context(member_id)
    try:
        async with in_transaction():
            row = await Checkin.create(activity_id=activity.id, member_id=member_id, unit_id=unit_id,
                                       method=method, walk_in=not confirmed, checked_in_at=at,
                                       scanned_by_id=scanned_by, nonce=nonce, lat=lat, lng=lng)
            await Activity.filter(id=activity.id).update(checked_in=F("checked_in") + 1)
        return CheckinResult(row, True)
    except IntegrityError:
        return CheckinResult(await Checkin.get(activity_id=activity.id, member_id=member_id), False)


async def checkin_with_code(principal: Principal, *, activity_id: int, token: str,
                            lat: float | None, lng: float | None) -> CheckinResult:
    """A member checks in with the venue code; an activity they may not see is not found."""
    activity = await get_or_raise(activity_id)
    await check_can_see(principal, activity)
    member_id = principal.member_id
    now = clock.now()
    _check_window(activity, now)
    try:
        passes.check_venue_token(token, activity_id=activity.id, secret=activity.checkin_secret,
                                 now_ts=now.timestamp())
    except passes.CodeError as exc:
        raise CheckinError(exc.code) from None
    if activity.radius_m is not None and activity.lat is not None and activity.lng is not None:
        if lat is None or lng is None:
            raise CheckinError("location_required")
        far = distance_m(lat, lng, activity.lat, activity.lng)
        if far > activity.radius_m:
            raise CheckinError("too_far", distance_m=round(far), radius_m=activity.radius_m)
    return await _record_checkin(activity, member_id=member_id, method=CheckinMethod.VENUE_CODE,
                                 at=now, lat=lat, lng=lng)


async def scan_passes(principal: Principal, *, activity_id: int, signer: passes.PassSigner,
                      scans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The organiser's scans of personal passes (live or uploaded after an offline session).
    Each scan stands alone; a nonce seen before answers its first outcome again."""
    activity = await get_or_raise(activity_id)
    await check_organiser(principal, activity)
    now = clock.now()
    results = []
    for scan in scans:
        results.append(await _one_scan(activity, principal, signer, scan, now))
    return results


async def _one_scan(activity: Activity, principal: Principal, signer: passes.PassSigner,
                    scan: dict[str, Any], now: datetime) -> dict[str, Any]:
    nonce, at = scan["nonce"], min(scan.get("scanned_at") or now, now)
    try:
        member_pass = signer.verify(scan["pass_token"], now_ts=at.timestamp())
    except passes.CodeError as exc:
        return {"nonce": nonce, "status": "error", "code": exc.code}
    seen = await ScanNonce.get_or_none(activity_id=activity.id, nonce=nonce)
    if seen is not None:
        if seen.member_id != member_pass.member_id:
            return {"nonce": nonce, "status": "error", "code": "scan_replayed"}
        return {"nonce": nonce, "status": "duplicate", "member_id": seen.member_id,
                "first_outcome": seen.outcome}
    try:
        _check_window(activity, at)
        if not await Member.exists(id=member_pass.member_id, is_active=True):
            raise CheckinError("member_not_found")
        result = await _record_checkin(activity, member_id=member_pass.member_id,
                                       method=CheckinMethod.PASS_SCAN, at=at,
                                       scanned_by=principal.member_id, nonce=nonce)
        outcome = "checked_in" if result.created else "already_checked_in"
    except (CheckinError, ActivityCancelled) as exc:
        outcome = exc.code
    # The same upload retried concurrently: the first one's record stands.
    with contextlib.suppress(IntegrityError):
        await ScanNonce.create(activity_id=activity.id, nonce=nonce, outcome=outcome,
                               member_id=member_pass.member_id)
    if outcome in ("checked_in", "already_checked_in"):
        return {"nonce": nonce, "status": outcome, "member_id": member_pass.member_id}
    return {"nonce": nonce, "status": "error", "code": outcome, "member_id": member_pass.member_id}


# -- attendance ----------------------------------------------------------------------------------

async def attendance(principal: Principal, activity_id: int) -> dict[str, Any]:
    activity = await get_or_raise(activity_id)
    await check_organiser(principal, activity)
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


async def list_activities(principal: Principal, *, zone_id: int | None, kind: str | None,
                          start: datetime | None, end: datetime | None,
                          limit: int = 100) -> list[Activity]:
    qs = Activity.all()
    if zone_id is not None:
        qs = qs.filter(zone_id=zone_id)
    if kind is not None:
        qs = qs.filter(kind=kind)
    if start is not None:
        qs = qs.filter(ends_at__gte=start)
    if end is not None:
        qs = qs.filter(starts_at__lt=end)
    rows = await qs.order_by("starts_at", "id").limit(limit * 3 if not principal.is_committee else limit)
    if principal.is_committee:
        return rows
    visible = [a for a in rows if a.zone_id == principal.zone_id or principal.governs(a.zone_id)
               or in_audience(a, unit_id=principal.unit_id, zone_id=principal.zone_id,
                              role=principal.role.value)]
    return visible[:limit]
