"""Sign-up: a seat if one is free (within the unit's quota), else the waitlist; cancelling moves
the first waitlisted member who fits up at once. The waitlist is numbered: the activity counts
the numbers it gave (`queue_seq`) and each waitlisted sign-up keeps its own, so a new sign-up's
place is the waitlist's length, read where it is written, and the queue moves up in that order.

Every change to an activity's seats happens with its row locked (services/locks.py), the sign-up
read again under the lock: sign-ups, cancels, promotions and capacity edits of one activity run
one at a time, and each sees what the one before left. The seat counters still move by
conditional UPDATEs (`confirmed < capacity`), and a member has one sign-up row per activity
(unique): never more confirmed than capacity, on PostgreSQL and SQLite alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from tortoise import connections
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
from services.db import fetch_rows
from services.locks import LOCK_TIMEOUT_MS, lock_row
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
        .order_by("queue_seq", "id")
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
    queue_seq = position = None
    if await _claim_seat(activity, unit_id):
        status, confirmed_at = SignupStatus.CONFIRMED, now
    elif activity.waitlist:
        status, confirmed_at = SignupStatus.WAITLISTED, None
        # The row is locked and was read under the lock: the newcomer is last in the queue.
        queue_seq, position = activity.queue_seq + 1, activity.waitlisted + 1
        await Activity.filter(id=activity.id).update(waitlisted=F("waitlisted") + 1,
                                                     queue_seq=F("queue_seq") + 1)
    else:
        raise ActivityFull(capacity=activity.capacity)
    if existing is None:
        row = await Signup.create(activity_id=activity.id, member_id=member_id, unit_id=unit_id,
                                  status=status, queued_at=now, confirmed_at=confirmed_at,
                                  queue_seq=queue_seq, signed_up_by_id=by_member_id)
    else:
        await Signup.filter(id=existing.id).update(
            status=status, queued_at=now, confirmed_at=confirmed_at, cancelled_at=None,
            queue_seq=queue_seq, unit_id=unit_id, signed_up_by_id=by_member_id)
        row = await Signup.get(id=existing.id)
    return View(row, position=position, replayed=False)


# PostgreSQL: the whole sign-up in one statement, committed as it ends. `a` locks the activity's
# row (and reads its newest version); `ins` writes the sign-up — a new row, or a cancelled one
# taken up again — confirmed while a seat is free, else numbered on the waitlist; `upd` moves the
# activity's counters by what `ins` wrote. A standing sign-up makes `ins` write nothing, and so
# `upd` too. The lock is held for this one statement's execution only: no round trip to the
# client while it is held. Activities with a unit quota (a second row to claim) take the
# transaction path. The lock timeout is set for this statement before the row is locked.
_SIGNUP_PG = """
WITH a AS (
    SELECT id AS a_id, status AS a_status, capacity AS a_capacity, unit_quota AS a_quota,
           waitlist AS a_waitlist, confirmed AS a_confirmed, queue_seq AS a_seq,
           signup_opens_at AS a_opens, signup_closes_at AS a_closes
    FROM activity
    WHERE id = $1 AND set_config('lock_timeout', $5, true) IS NOT NULL
    FOR UPDATE
), pick AS (
    SELECT CASE WHEN a_capacity IS NULL OR a_confirmed < a_capacity
                THEN 'confirmed' ELSE 'waitlisted' END AS st, a_seq
    FROM a
    WHERE a_status = 'active' AND $4::timestamptz >= a_opens AND $4::timestamptz < a_closes
      AND a_quota IS NULL AND (a_waitlist OR a_capacity IS NULL OR a_confirmed < a_capacity)
), ins AS (
    INSERT INTO signup AS s (activity_id, member_id, unit_id, status, queued_at, confirmed_at,
                             queue_seq, created_at)
    SELECT $1, $2, $3::int, st, $4::timestamptz,
           CASE WHEN st = 'confirmed' THEN $4::timestamptz END,
           CASE WHEN st = 'waitlisted' THEN a_seq + 1 END, $4::timestamptz
    FROM pick
    ON CONFLICT (activity_id, member_id) DO UPDATE
        SET status = EXCLUDED.status, queued_at = EXCLUDED.queued_at,
            confirmed_at = EXCLUDED.confirmed_at, cancelled_at = NULL, unit_id = EXCLUDED.unit_id,
            signed_up_by_id = NULL, queue_seq = EXCLUDED.queue_seq
        WHERE s.status = 'cancelled'
    RETURNING s.id AS s_id, s.status AS s_status
), upd AS (
    UPDATE activity
    SET confirmed = confirmed + (ins.s_status = 'confirmed')::int,
        waitlisted = waitlisted + (ins.s_status = 'waitlisted')::int,
        queue_seq = queue_seq + (ins.s_status = 'waitlisted')::int
    FROM ins
    WHERE activity.id = $1
    RETURNING activity.waitlisted AS u_waitlisted
)
SELECT a_status, a_quota, a_opens, a_closes, a_capacity, s_id, s_status, u_waitlisted
FROM a LEFT JOIN ins ON TRUE LEFT JOIN upd ON TRUE
"""


@dataclass(frozen=True, slots=True)
class Written:
    """A sign-up as the statement that wrote it returned it (what the route answers)."""

    id: int
    activity_id: int
    member_id: int
    status: SignupStatus


async def _sign_up_one_statement(activity_id: int, member_id: int, unit_id: int | None) -> View | None:
    """PostgreSQL: sign up in one statement. None: the activity has a unit quota or the member
    a standing sign-up, for the transaction path to answer."""
    now = clock.now()
    rows = await fetch_rows(_SIGNUP_PG, activity_id, member_id, unit_id, now,
                            f"{LOCK_TIMEOUT_MS}ms")
    if not rows:
        raise ActivityNotFound(activity_id=activity_id)
    a_status, quota, opens, closes, capacity, s_id, s_status, waitlisted = rows[0]
    if s_id is not None:
        status = SignupStatus(s_status)
        row = Written(s_id, activity_id, member_id, status)
        return View(row, position=waitlisted if status is SignupStatus.WAITLISTED else None,
                    replayed=False)
    if a_status == ActivityStatus.CANCELLED.value:
        raise ActivityCancelled()
    if now < opens:
        raise SignupNotOpen(opens_at=opens)
    if now >= closes:
        raise SignupClosed(closed_at=closes)
    if quota is not None:
        return None
    existing = await Signup.get_or_none(activity_id=activity_id, member_id=member_id)
    if existing is not None and existing.status is not SignupStatus.CANCELLED:
        return View(existing, position=await waitlist_position(existing), replayed=True)
    raise ActivityFull(capacity=capacity)


@dataclass(frozen=True, slots=True)
class _Audience:
    """What deciding who may sign up reads of an activity (the statement reads the rest)."""

    id: int
    zone_id: int | None
    audience: dict[str, Any]


_AUDIENCE_SQL = "SELECT id, zone_id, audience FROM activity WHERE id = $1"


async def _audience(activity_id: int) -> _Audience:
    rows = await fetch_rows(_AUDIENCE_SQL, activity_id)
    if not rows:
        raise ActivityNotFound(activity_id=activity_id)
    row_id, zone_id, audience = rows[0]
    return _Audience(row_id, zone_id, orjson.loads(audience) if isinstance(audience, str | bytes)
                     else audience or {})


async def signup(principal: Principal, *, activity_id: int) -> View:
    """Sign the caller up: confirmed if a seat is free, else waitlisted. A repeat answers the
    standing sign-up (replayed)."""
    activity = await _audience(activity_id)
    await check_can_see(principal, activity)  # type: ignore[arg-type]
    if not in_audience(activity, unit_id=principal.unit_id, zone_id=principal.zone_id,  # type: ignore[arg-type]
                       role=principal.role.value):
        raise NotInAudience()
    if connections.get("default").capabilities.dialect == "postgres":
        done = await _sign_up_one_statement(activity_id, principal.member_id, principal.unit_id)
        if done is not None:
            return done
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
                                queue_seq__lt=signup_row.queue_seq).count()
    return ahead + 1


async def list_signups(principal: Principal, activity_id: int) -> dict[str, list[View]]:
    """Sign-ups by status, in queue order, with names (the organiser; staff of the zone)."""
    await get_organised(principal, activity_id, write=False)
    rows = await Signup.filter(activity_id=activity_id).select_related("member") \
        .order_by("queued_at", "id")
    out: dict[str, list[View]] = {s.value: [] for s in SignupStatus}
    for r in rows:
        out[r.status.value].append(View(r, name=r.member.name))
    out[SignupStatus.WAITLISTED.value].sort(key=lambda v: (v.queue_seq or 0, v.id))  # the queue
    return out
