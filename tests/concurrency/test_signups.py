"""Sign-up, cancellation and check-in under real parallelism: many `asyncio.gather`ed calls, each in
its own transaction and so (on PostgreSQL) on its own pool connection.

The control test comes first (the pretix lesson): with a naive read-check-write seat claim swapped
in, the same kind of load oversells. That proves these tests can see an oversell; the tests after
it prove the real conditional UPDATE does not let one through. Everything asserts rows, counters
and codes, never timing.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from models.activities import Activity, Checkin, Signup, SignupStatus, UnitSeats
from models.notices import InboxItem, Notice
from models.org import Member, Role
from services import activities, clock, signups
from services.auth import Principal
from tests.support import City, bearer, requires_postgres, staff_login, wechat_login

CONFIRMED, WAITLISTED, CANCELLED = (SignupStatus.CONFIRMED, SignupStatus.WAITLISTED,
                                    SignupStatus.CANCELLED)


# -- helpers -------------------------------------------------------------------------------------

async def _city() -> tuple[City, Principal]:
    city = await City.build(zones=1, units_per_zone=2, members_per_unit=0)
    assert city.committee is not None
    principal = Principal(member_id=city.committee.id, role=Role.COMMITTEE, unit_id=None,
                          zone_id=None, jti="concurrency-test", exp=0)
    return city, principal


async def _activity(principal: Principal, *, capacity: int | None, unit_quota: int | None = None,
                    starts_in: timedelta = timedelta(days=2)) -> Activity:
    starts_at = clock.now() + starts_in
    created = await activities.create(principal, {
        "zone_id": None, "kind": "party_lesson", "title": "并发报名测试",
        "starts_at": starts_at, "ends_at": starts_at + timedelta(hours=2),
        "capacity": capacity, "unit_quota": unit_quota, "audience": {"all": True}})
    return created.row


async def _principal(member_id: int) -> Principal:
    member = await Member.get(id=member_id).select_related("unit")
    return Principal(member_id=member.id, role=member.role, unit_id=member.unit_id,
                     zone_id=member.unit.zone_id if member.unit else None, jti="t", exp=0)


async def _signup(activity_id: int, member_id: int) -> Any:
    return await signups.signup(await _principal(member_id), activity_id=activity_id)


async def _cancel(activity_id: int, member_id: int) -> Any:
    return await signups.cancel_signup(await _principal(member_id), activity_id=activity_id)


async def _members(unit_id: int, n: int, *, tag: str) -> list[int]:
    """n members of one unit, in creation (id) order."""
    await Member.bulk_create([
        Member(unit_id=unit_id, name=f"{tag}-{i}", phone=f"{tag}{i:06d}"[-11:],
               openid=f"{tag}-{i}") for i in range(n)])
    ids = await Member.filter(openid__startswith=f"{tag}-").order_by("id") \
        .values_list("id", flat=True)
    assert len(ids) == n
    return list(ids)


async def _statuses(activity_id: int) -> dict[int, SignupStatus]:
    rows = await Signup.filter(activity_id=activity_id).values_list("member_id", "status")
    return {m: SignupStatus(s) for m, s in rows}


async def _waitlist_in_order(activity_id: int) -> list[Signup]:
    """The queue as stored: by the number each waitlisted sign-up was given."""
    return await Signup.filter(activity_id=activity_id, status=WAITLISTED) \
        .order_by("queue_seq", "id")


async def _assert_counters_match_rows(activity_id: int) -> Activity:
    activity = await Activity.get(id=activity_id)
    counts = Counter((await _statuses(activity_id)).values())
    assert (activity.confirmed, activity.waitlisted) == (counts[CONFIRMED], counts[WAITLISTED])
    return activity


# -- the control: a naive seat claim oversells under this load ------------------------------------

@requires_postgres
async def test_control_a_naive_read_check_write_claim_oversells(
        db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the activity's row lock and with a read-check-write claim, 200 parallel sign-ups
    confirm more than 20 seats: the load below really runs in parallel transactions and the
    assertions can see an oversell."""
    city, principal = await _city()
    activity = await _activity(principal, capacity=20)
    members = await _members(city.units[city.zones[0].id][0].id, 200, tag="ctl")

    async def naive_claim_seat(activity: Activity, unit_id: int | None) -> bool:
        read = (await Activity.filter(id=activity.id).values_list("confirmed", flat=True))[0]
        await asyncio.sleep(0)  # another transaction reads the same count meanwhile
        assert activity.capacity is not None
        if read >= activity.capacity:
            return False
        await Activity.filter(id=activity.id).update(confirmed=read + 1)
        return True

    async def no_lock(table: str, row_id: int, **_: Any) -> bool:
        return True

    async def transaction_path(*_: Any) -> None:
        return None  # PostgreSQL: not the one-statement sign-up, the path the naive claim is in

    monkeypatch.setattr(signups, "_claim_seat", naive_claim_seat)
    monkeypatch.setattr(signups, "lock_row", no_lock)
    monkeypatch.setattr(signups, "_sign_up_one_statement", transaction_path)
    await asyncio.gather(*(_signup(activity.id, m)
                           for m in members))

    confirmed_rows = await Signup.filter(activity_id=activity.id, status=CONFIRMED).count()
    assert confirmed_rows > 20, "the control saw no oversell: the test load is not parallel"


# -- sign-up -------------------------------------------------------------------------------------

async def test_500_parallel_signups_for_50_seats_confirm_exactly_50(db: None) -> None:
    city, principal = await _city()
    activity = await _activity(principal, capacity=50)
    members = await _members(city.units[city.zones[0].id][0].id, 500, tag="par")

    rows = await asyncio.gather(*(_signup(activity.id, m)
                                  for m in members))

    assert Counter(r.status for r in rows) == {CONFIRMED: 50, WAITLISTED: 450}
    statuses = await _statuses(activity.id)
    assert sorted(statuses) == sorted(members)              # one row per member, nobody lost
    assert Counter(statuses.values()) == {CONFIRMED: 50, WAITLISTED: 450}
    fresh = await _assert_counters_match_rows(activity.id)
    assert (fresh.confirmed, fresh.waitlisted) == (50, 450)
    waitlist = await _waitlist_in_order(activity.id)
    positions = [await signups.waitlist_position(r) for r in waitlist]
    assert positions == list(range(1, 451))                 # 1..450, no gap, no repeat
    assert [r.queue_seq for r in waitlist] == list(range(1, 451))
    assert fresh.queue_seq == 450
    # each answer's place is the number stored with its row (read where it was written)
    answered = {r.member_id: r.position for r in rows if r.status is WAITLISTED}
    assert answered == {r.member_id: r.queue_seq for r in waitlist}


async def test_the_same_member_signing_up_20_times_at_once_gets_one_row(db: None) -> None:
    city, principal = await _city()
    activity = await _activity(principal, capacity=5)
    [member] = await _members(city.units[city.zones[0].id][0].id, 1, tag="dup")

    rows = await asyncio.gather(*(_signup(activity.id, member)
                                  for _ in range(20)))

    assert {r.id for r in rows} == {rows[0].id} and {r.status for r in rows} == {CONFIRMED}
    assert sum(not r.replayed for r in rows) == 1            # one created it, 19 were replays
    assert await Signup.filter(activity_id=activity.id).count() == 1
    fresh = await _assert_counters_match_rows(activity.id)
    assert (fresh.confirmed, fresh.waitlisted) == (1, 0)


async def test_unit_quota_holds_under_parallel_signups(db: None) -> None:
    city, principal = await _city()
    activity = await _activity(principal, capacity=100, unit_quota=5)
    unit = city.units[city.zones[0].id][0]
    members = await _members(unit.id, 40, tag="quo")

    await asyncio.gather(*(_signup(activity.id, m)
                           for m in members))

    assert Counter((await _statuses(activity.id)).values()) == {CONFIRMED: 5, WAITLISTED: 35}
    seats = await UnitSeats.get(activity_id=activity.id, unit_id=unit.id)
    assert seats.confirmed == 5
    fresh = await _assert_counters_match_rows(activity.id)
    assert (fresh.confirmed, fresh.waitlisted) == (5, 35)


# -- cancellation and promotion ------------------------------------------------------------------

async def test_30_parallel_cancels_promote_the_first_30_waitlisted_once_each(db: None) -> None:
    city, principal = await _city()
    activity = await _activity(principal, capacity=50)
    members = await _members(city.units[city.zones[0].id][0].id, 150, tag="cxl")
    for m in members:  # one by one: the waitlist order is the members' order
        await _signup(activity.id, m)
    confirmed, waitlist = members[:50], members[50:]
    assert [r.member_id for r in await _waitlist_in_order(activity.id)] == waitlist
    leaving = confirmed[::2][:20] + confirmed[1::2][:10]    # 30, spread over the confirmed
    notices_before = await Notice.all().order_by("-id").first()
    last_notice = notices_before.id if notices_before else 0

    cancelled = await asyncio.gather(*(
        _cancel(activity.id, m) for m in leaving))

    assert {r.status for r in cancelled} == {CANCELLED}
    statuses = await _statuses(activity.id)
    promoted = waitlist[:30]                                 # FIFO: the head of the waitlist
    assert {m for m in waitlist if statuses[m] is CONFIRMED} == set(promoted)
    assert {m for m, s in statuses.items() if s is CANCELLED} == set(leaving)
    assert Counter(statuses.values()) == {CONFIRMED: 50, WAITLISTED: 70, CANCELLED: 30}
    assert [r.member_id for r in await _waitlist_in_order(activity.id)] == waitlist[30:]
    fresh = await _assert_counters_match_rows(activity.id)
    assert (fresh.confirmed, fresh.waitlisted) == (50, 70)
    told = await InboxItem.filter(notice_id__gt=last_notice, notice__topic="activity.promoted",
                                  notice__ref_id=activity.id).values_list("member_id", flat=True)
    assert Counter(told) == Counter(promoted)                # one message per promoted member


# -- check-in over HTTP ----------------------------------------------------------------------------

async def test_100_members_checking_in_3_times_at_once_count_once_each(
        client: TestClient[Any, Any]) -> None:
    city = await City.build(zones=1, units_per_zone=1, members_per_unit=0)
    unit = city.units[city.zones[0].id][0]
    await _members(unit.id, 100, tag="chk")
    tokens = await asyncio.gather(*(wechat_login(client, f"chk-{i}") for i in range(100)))
    staff = await staff_login(client)
    starts_at = clock.now() + timedelta(minutes=10)          # check-in opened 30 min before
    r = await client.post("/api/v1/activities", headers=bearer(staff), json={
        "zone_id": city.zones[0].id, "kind": "party_lesson", "title": "并发签到测试",
        "starts_at": starts_at.isoformat(), "ends_at": (starts_at + timedelta(hours=2)).isoformat(),
        "capacity": None})
    assert r.status == 201, await r.text()
    activity_id = (await r.json())["id"]
    signed = await asyncio.gather(*(client.post(f"/api/v1/activities/{activity_id}/signup",
                                                headers=bearer(t)) for t in tokens))
    assert [s.status for s in signed] == [201] * 100
    r = await client.get(f"/api/v1/activities/{activity_id}/checkin-code", headers=bearer(staff))
    assert r.status == 200, await r.text()
    code = (await r.json())["token"]

    async def check_in(token: str) -> tuple[int, dict[str, Any]]:
        resp = await client.post(f"/api/v1/activities/{activity_id}/checkin",
                                 json={"token": code}, headers=bearer(token))
        return resp.status, await resp.json()

    answers = await asyncio.gather(*(check_in(t) for t in tokens for _ in range(3)))

    assert Counter(status for status, _ in answers) == {200: 300}, answers[:3]
    assert sum(body["first_time"] for _, body in answers) == 100
    assert await Checkin.filter(activity_id=activity_id).count() == 100
    assert len(set(await Checkin.filter(activity_id=activity_id)
                   .values_list("member_id", flat=True))) == 100
    assert (await Activity.get(id=activity_id)).checked_in == 100


async def test_signups_and_cancels_with_a_unit_quota_do_not_deadlock(db: None) -> None:
    """Sign-ups and cancels lock the activity row, then the unit's seats, in the same order:
    mixed at once they finish without a deadlock, and the quota and capacity hold."""
    city, principal = await _city()
    unit_id = next(iter(city.units.values()))[0].id
    failures: Counter[str] = Counter()
    for round_no in range(5):
        activity = await _activity(principal, capacity=100, unit_quota=5)
        people = await _members(unit_id, 20, tag=f"dl{round_no}")
        for m in people[:4]:
            await _signup(activity.id, m)
        results = await asyncio.gather(
            *(_cancel(activity.id, m) for m in people[:4]),
            *(_signup(activity.id, m) for m in people[4:]),
            return_exceptions=True)
        failures.update(type(r).__name__ for r in results if isinstance(r, BaseException))
        confirmed = await Signup.filter(activity_id=activity.id, status=CONFIRMED).count()
        seats = await UnitSeats.get(activity_id=activity.id, unit_id=unit_id)
        fresh = await Activity.get(id=activity.id)
        assert confirmed == seats.confirmed == fresh.confirmed == 5
    assert not failures
