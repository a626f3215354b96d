"""Sign-up: a seat if one is free (within the unit's quota), else the waitlist; cancelling moves
the first waitlisted member who fits up at once.

Every change to an activity's seats happens with its row locked (services/locks.py), the sign-up
read again under the lock: sign-ups, cancels, promotions and capacity edits of one activity run
one at a time, and each sees what the one before left. The seat counters still move by
conditional UPDATEs (`confirmed < capacity`), and a member has one sign-up row per activity
(unique): never more confirmed than capacity, on PostgreSQL and SQLite alike.
"""

from __future__ import annotations

from datetime import datetime

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from models.activities import Activity, ActivityStatus, Checkin, Signup, SignupStatus, UnitSeats
from models.org import Member
from services import clock, inbox
from services.activities import check_can_see, get_or_raise, get_organised, in_audience
from services.auth import Principal
from services.errors import (
    ActivityCancelled,
    ActivityFull,
    ActivityNotFound,
    AlreadyCheckedIn,
    Forbidden,
    NotInAudience,
    NotSignedUp,
    SignupClosed,
    SignupNotOpen,
)
from services.locks import lock_row
from services.views import View


async def _locked(activity_id: int) -> Activity:
    """Lock the activity's row and read it as it is now (inside a transaction)."""
    if not await lock_row("activity", activity_id):
        raise ActivityNotFound(activity_id=activity_id)
    return await Activity.get(id=activity_id)


def _check_window(activity: Activity, now: datetime) -> None:
    if activity.status is ActivityStatus.CANCELLED:
        raise ActivityCancelled()
    if now < activity.signup_opens_at:
        raise SignupNotOpen(opens_at=activity.signup_opens_at)
    if now >= activity.signup_closes_at:
        raise SignupClosed(closed_at=activity.signup_closes_at)


async def _claim_seat(activity: Activity, unit_id: int | None) -> bool:
    """Take one confirmed seat (and one of the unit's quota) or nothing; the row is locked."""
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


async def _promote(activity: Activity) -> int:
    """Confirm waitlisted members in queue order while seats (and their units' quotas) allow;
    each is told. The activity's row is locked. Returns how many moved up."""
    moved = 0
    waiting = await Signup.filter(activity_id=activity.id, status=SignupStatus.WAITLISTED) \
        .order_by("queued_at", "id")
    for candidate in waiting:
        fresh = await Activity.get(id=activity.id)
        if fresh.capacity is not None and fresh.confirmed >= fresh.capacity:
            break
        if not await _claim_seat(fresh, candidate.unit_id):
            continue  # this member's unit is at its quota: the next one may fit
        await Signup.filter(id=candidate.id).update(status=SignupStatus.CONFIRMED,
                                                    confirmed_at=clock.now())
        await Activity.filter(id=activity.id).update(waitlisted=F("waitlisted") - 1)
        await inbox.send_system(member_ids=[candidate.member_id], topic="activity.promoted",
                                title=f"候补转正：{activity.title}",
                                body="您已从候补转为正式报名，请按时参加。",
                                ref_type="activity", ref_id=activity.id)
        moved += 1
    return moved


async def fill_from_waitlist(activity_id: int) -> int:
    """After more room (capacity raised or lifted, a quota raised): the waitlist moves up.
    Inside the editing transaction."""
    return await _promote(await _locked(activity_id))


async def _sign_up_locked(activity: Activity, member_id: int, unit_id: int | None,
                          by_member_id: int | None) -> View:
    """One member's sign-up, the activity's row locked: the standing row again, or a new one."""
    existing = await Signup.get_or_none(activity_id=activity.id, member_id=member_id)
    if existing is not None and existing.status is not SignupStatus.CANCELLED:
        return View(existing, position=await waitlist_position(existing), replayed=True)
    now = clock.now()
    if await _claim_seat(activity, unit_id):
        status, confirmed_at = SignupStatus.CONFIRMED, now
    elif activity.waitlist:
        status, confirmed_at = SignupStatus.WAITLISTED, None
        await Activity.filter(id=activity.id).update(waitlisted=F("waitlisted") + 1)
    else:
        raise ActivityFull(capacity=activity.capacity)
    if existing is None:
        row = await Signup.create(activity_id=activity.id, member_id=member_id, unit_id=unit_id,
                                  status=status, queued_at=now, confirmed_at=confirmed_at,
                                  signed_up_by_id=by_member_id)
    else:
        await Signup.filter(id=existing.id).update(
            status=status, queued_at=now, confirmed_at=confirmed_at, cancelled_at=None,
            unit_id=unit_id, signed_up_by_id=by_member_id)
        row = await Signup.get(id=existing.id)
    return View(row, position=await waitlist_position(row), replayed=False)


async def signup(principal: Principal, *, activity_id: int) -> View:
    """Sign the caller up: confirmed if a seat is free, else waitlisted. A repeat answers the
    standing sign-up (replayed)."""
    activity = await get_or_raise(activity_id)
    await check_can_see(principal, activity)
    if not in_audience(activity, unit_id=principal.unit_id, zone_id=principal.zone_id,
                       role=principal.role.value):
        raise NotInAudience()
    try:
        async with in_transaction():
            locked = await _locked(activity_id)
            _check_window(locked, clock.now())
            return await _sign_up_locked(locked, principal.member_id, principal.unit_id, None)
    except IntegrityError:
        # The same member signing up twice at once (SQLite): the other request's row stands.
        existing = await Signup.get_or_none(activity_id=activity_id, member_id=principal.member_id)
        if existing is None:
            raise
        return View(existing, position=await waitlist_position(existing), replayed=True)


async def signup_batch(principal: Principal, *, activity_id: int, member_ids: list[int]) -> list[View]:
    """A unit admin signs up several of their members: all or nothing."""
    if not principal.is_unit_admin or principal.unit_id is None:
        raise Forbidden()
    activity = await get_or_raise(activity_id)
    ids = list(dict.fromkeys(member_ids))
    mine = set(await Member.filter(id__in=ids, unit_id=principal.unit_id, is_active=True)
               .values_list("id", flat=True))
    if strangers := [m for m in ids if m not in mine]:
        raise Forbidden("只能为本单位党员报名", member_ids=strangers)
    if not in_audience(activity, unit_id=principal.unit_id, zone_id=principal.zone_id, role="member"):
        raise NotInAudience()
    async with in_transaction():
        locked = await _locked(activity_id)
        _check_window(locked, clock.now())
        out = []
        for m in ids:
            out.append(await _sign_up_locked(locked, m, principal.unit_id, principal.member_id))
            locked = await Activity.get(id=activity_id)
        return out


async def cancel_signup(principal: Principal, *, activity_id: int) -> View:
    """Cancel a seat (the first waitlisted member who fits moves up at once) or leave the
    waitlist. Who has checked in keeps the sign-up: the attendance figures stay true."""
    member_id = principal.member_id
    if await Checkin.exists(activity_id=activity_id, member_id=member_id):
        raise AlreadyCheckedIn()
    now = clock.now()
    async with in_transaction():
        activity = await _locked(activity_id)
        if now >= activity.signup_closes_at:
            raise SignupClosed(closed_at=activity.signup_closes_at)
        row = await Signup.get_or_none(activity_id=activity_id, member_id=member_id)
        if row is None or row.status is SignupStatus.CANCELLED:
            raise NotSignedUp()
        await Signup.filter(id=row.id).update(status=SignupStatus.CANCELLED, cancelled_at=now)
        if row.status is SignupStatus.CONFIRMED:
            await _release_seat(activity, row.unit_id)
            await _promote(activity)
        else:
            await Activity.filter(id=activity_id).update(waitlisted=F("waitlisted") - 1)
    return View(await Signup.get(id=row.id), position=None)


async def waitlist_position(signup_row: Signup) -> int | None:
    """1 = next to move up; None when not waitlisted."""
    if signup_row.status is not SignupStatus.WAITLISTED:
        return None
    ahead = await Signup.filter(activity_id=signup_row.activity_id, status=SignupStatus.WAITLISTED,
                                queued_at__lt=signup_row.queued_at).count()
    same_time = await Signup.filter(activity_id=signup_row.activity_id,
                                    status=SignupStatus.WAITLISTED,
                                    queued_at=signup_row.queued_at, id__lt=signup_row.id).count()
    return ahead + same_time + 1


async def list_signups(principal: Principal, activity_id: int) -> dict[str, list[View]]:
    """Sign-ups by status, in queue order, with names (the organiser; staff of the zone)."""
    await get_organised(principal, activity_id, write=False)
    rows = await Signup.filter(activity_id=activity_id).select_related("member") \
        .order_by("queued_at", "id")
    out: dict[str, list[View]] = {s.value: [] for s in SignupStatus}
    for r in rows:
        out[r.status.value].append(View(r, name=r.member.name))
    return out
