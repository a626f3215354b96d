"""A year without surprises: rotations never run out, system messages reach the phone, and the
figures agree with each other."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from fakewechat import FakeWeChat
from models.activities import Checkin, Signup
from models.notices import InboxItem, Notice, SubscriptionGrant
from models.org import Member, Rotation, RotationPlan
from services import clock, rotations
from services.settings import Settings
from tests.integration.test_activities import create, duty_setup, generate
from tests.support import City, bearer, run_workers, staff_login, wechat_login


def shanghai(*args: int) -> datetime:
    return datetime(*args, tzinfo=clock.SHANGHAI)  # type: ignore[misc]


def travel_to(when: datetime) -> None:
    clock.reset_travel()
    clock.travel(when - datetime.now(UTC))


async def _grant(member_ids: list[int], template: str, n: int = 1) -> None:
    await SubscriptionGrant.bulk_create([SubscriptionGrant(member_id=m, template_id=template,
                                                           available=n, accepted_total=n)
                                         for m in member_ids])


async def _sweep(settings: Settings, client: TestClient[Any, Any]) -> None:
    import time

    from server.keys import ARQ
    await client.app[ARQ].enqueue_job("sweep_notices", _job_id=f"sweep-{time.monotonic_ns()}")
    await run_workers(settings)


# -- rotations never run out ---------------------------------------------------------------------

async def test_next_years_rotations_are_planned_ahead_and_the_committee_told_once(
        client: TestClient[Any, Any], city: City) -> None:
    travel_to(shanghai(2026, 11, 20, 9))
    assert await rotations.plan_ahead(ahead=timedelta(days=30)) == {"created": 8, "told": 0}
    assert not await Rotation.exists(year=2027)  # not yet: more than 30 days to go
    travel_to(shanghai(2026, 12, 10, 9))
    first = await rotations.plan_ahead(ahead=timedelta(days=30))
    again = await rotations.plan_ahead(ahead=timedelta(days=30))
    assert first == {"created": 8, "told": 1} and again == {"created": 0, "told": 0}
    # The order continues across the year: zone 1's Q1 2027 follows its Q4 2026.
    z1 = city.zones[0].id
    q4 = await Rotation.get(zone_id=z1, year=2026, quarter=4)
    q1 = await Rotation.get(zone_id=z1, year=2027, quarter=1)
    order = [u.id for u in sorted(city.units[z1], key=lambda u: -u.strength)]
    assert order.index(q1.unit_id) == (order.index(q4.unit_id) + 1) % len(order)
    told = await Notice.filter(topic="rotation.plan").values_list("id", flat=True)
    assert len(told) == 1
    assert city.committee is not None
    assert await InboxItem.exists(notice_id=told[0], member_id=city.committee.id)
    staff = await staff_login(client)
    r = await client.post("/api/v1/rotation-plans/2027/confirm", headers=bearer(staff))
    assert r.status == 200 and (await r.json())["confirmed_at"] is not None
    assert (await RotationPlan.get(year=2027)).confirmed_by_id == city.committee.id


async def test_on_1_january_duty_powers_continue(client: TestClient[Any, Any], city: City) -> None:
    travel_to(shanghai(2026, 12, 10, 9))
    await rotations.plan_ahead(ahead=timedelta(days=30))
    travel_to(shanghai(2027, 1, 1, 8))
    z1 = city.zones[0].id
    duty = await Rotation.get(zone_id=z1, year=2027, quarter=1)
    token = await wechat_login(client, city.admins[duty.unit_id].openid or "")
    me = await (await client.get("/api/v1/me", headers=bearer(token))).json()
    assert me["duty"]["on_duty"] is True and me["duty"]["year"] == 2027


async def test_a_zone_without_a_rotation_says_so(client: TestClient[Any, Any], city: City) -> None:
    admin = city.admins[city.units[city.zones[0].id][0].id]
    token = await wechat_login(client, admin.openid or "")
    me = await (await client.get("/api/v1/me", headers=bearer(token))).json()
    assert (me["duty"]["on_duty"], me["duty"]["zone_has_rotation"]) == (False, False)
    start = clock.now() + timedelta(days=1)
    r = await client.post("/api/v1/activities", headers=bearer(token), json={
        "zone_id": city.zones[0].id, "kind": "other", "title": "x", "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=1)).isoformat()})
    assert r.status == 403 and (await r.json())["code"] == "no_rotation"


async def test_the_committee_reorders_a_zone_from_the_next_rotation_on(
        client: TestClient[Any, Any], city: City) -> None:
    staff = await staff_login(client)
    await generate(client, staff)
    z1 = city.zones[0].id
    now = clock.now()
    before = {r.id: r.unit_id for r in await Rotation.filter(zone_id=z1)}
    started = {r.id for r in await Rotation.filter(zone_id=z1, starts_at__lte=now)}
    new_order = [u.id for u in reversed(city.units[z1])]
    r = await client.put(f"/api/v1/zones/{z1}/duty-order", headers=bearer(staff),
                         json={"unit_ids": new_order})
    assert r.status == 200, await r.text()
    after = {r.id: r.unit_id for r in await Rotation.filter(zone_id=z1)}
    assert all(after[i] == before[i] for i in started)          # history stays
    current = await Rotation.filter(zone_id=z1, starts_at__lte=now).order_by("-starts_at").first()
    future = await Rotation.filter(zone_id=z1, starts_at__gt=now).order_by("starts_at")
    assert current is not None and future
    assert future[0].unit_id == new_order[(new_order.index(current.unit_id) + 1) % 4]
    r = await client.put(f"/api/v1/zones/{z1}/duty-order", headers=bearer(staff),
                         json={"unit_ids": new_order[:2]})
    assert r.status == 422


async def test_the_next_duty_unit_is_told_once_on_its_phone(
        client: TestClient[Any, Any], city: City, settings: Settings, fake_wechat: FakeWeChat) -> None:
    travel_to(shanghai(2026, 12, 20, 9))
    await rotations.plan_ahead(ahead=timedelta(days=30))
    z1 = city.zones[0].id
    nxt = await Rotation.get(zone_id=z1, year=2027, quarter=1)
    admin = city.admins[nxt.unit_id]
    await _grant([admin.id], settings.wechat_duty_template_id)
    assert await rotations.tell_next_duty_units(before=timedelta(days=14)) == 2  # one per zone
    assert await rotations.tell_next_duty_units(before=timedelta(days=14)) == 0
    await _sweep(settings, client)
    pushed = [m for m in fake_wechat.messages if m["touser"] == admin.openid]
    assert len(pushed) == 1 and pushed[0]["template_id"] == settings.wechat_duty_template_id


# -- system messages reach the phone -------------------------------------------------------------

async def test_an_urge_reaches_the_phone_of_those_who_granted_it(
        client: TestClient[Any, Any], city: City, settings: Settings, fake_wechat: FakeWeChat) -> None:
    staff = await staff_login(client)
    unit = city.units[city.zones[0].id][1]
    admin = city.admins[unit.id]
    r = await client.post("/api/v1/supervision-items", headers=bearer(staff), json={
        "title": "整改", "due_at": (clock.now() + timedelta(days=3)).isoformat(), "unit_ids": [unit.id]})
    item = await r.json()
    await _grant([admin.id], settings.wechat_supervision_template_id, n=1)
    await _sweep(settings, client)  # the assignment message: one grant, one push
    r = await client.post(f"/api/v1/supervision-items/{item['id']}/urge", headers=bearer(staff),
                          json={"unit_id": unit.id, "note": "请尽快办理"})
    assert r.status == 201
    await _sweep(settings, client)  # the urge: no grant left, inbox only
    pushed = [m for m in fake_wechat.messages if m["touser"] == admin.openid]
    assert len(pushed) == 1 and pushed[0]["template_id"] == settings.wechat_supervision_template_id
    assert await InboxItem.filter(member_id=admin.id).count() == 2
    await SubscriptionGrant.filter(member_id=admin.id).update(available=1)  # a new grant
    from models.supervision import Assignment

    await Assignment.filter(item_id=item["id"]).update(last_urged_at=None)
    await client.post(f"/api/v1/supervision-items/{item['id']}/urge", headers=bearer(staff),
                      json={"unit_id": unit.id})
    await _sweep(settings, client)
    assert len([m for m in fake_wechat.messages if m["touser"] == admin.openid]) == 2


async def test_members_are_reminded_the_day_before_on_their_phone(
        client: TestClient[Any, Any], city: City, settings: Settings, fake_wechat: FakeWeChat) -> None:
    s = await duty_setup(client, city)
    activity = await create(client, s["staff"], zone_id=s["zone"].id, starts_in=timedelta(hours=30))
    member = await Member.get(id=s["member_id"])
    r = await client.post(f"/api/v1/activities/{activity['id']}/signup", headers=bearer(s["member"]))
    assert r.status == 201
    await _grant([member.id], settings.wechat_activity_template_id)
    from services import activities

    assert await activities.send_reminders(before=timedelta(hours=24)) == 0   # 30 h away
    clock.travel(timedelta(hours=7))
    assert await activities.send_reminders(before=timedelta(hours=24)) == 1
    assert await activities.send_reminders(before=timedelta(hours=24)) == 0   # once
    await _sweep(settings, client)
    pushed = [m for m in fake_wechat.messages if m["touser"] == member.openid]
    assert len(pushed) == 1 and pushed[0]["template_id"] == settings.wechat_activity_template_id


async def test_roles_narrow_an_audience_and_committee_reaches_staff(
        client: TestClient[Any, Any], city: City, settings: Settings) -> None:
    s = await duty_setup(client, city)
    z1 = s["zone"].id
    r = await client.post("/api/v1/notices", headers=bearer(s["duty"]), json={
        "title": "轮值单位通知各单位管理员", "audience": {"zone_ids": [z1], "roles": ["unit_admin"]}})
    assert r.status == 202, await r.text()
    await run_workers(settings)
    got = set(await InboxItem.filter(notice_id=(await r.json())["id"]).values_list("member_id", flat=True))
    assert got == {city.admins[u.id].id for u in city.units[z1]}
    r = await client.post("/api/v1/notices", headers=bearer(s["staff"]), json={
        "title": "工委内部", "audience": {"roles": ["committee"]}})
    await run_workers(settings)
    got = set(await InboxItem.filter(notice_id=(await r.json())["id"]).values_list("member_id", flat=True))
    assert city.committee is not None and got == {city.committee.id}
    r = await client.post("/api/v1/notices", headers=bearer(s["duty"]), json={
        "title": "越界", "audience": {"roles": ["unit_admin"]}})
    assert r.status == 403 and (await r.json())["code"] == "audience_out_of_scope"


# -- consistent facts ----------------------------------------------------------------------------

async def test_a_checked_in_member_keeps_the_sign_up_and_a_waitlisted_one_is_told(
        client: TestClient[Any, Any], city: City) -> None:
    s = await duty_setup(client, city)
    rotation = s["rotation"]
    inside = min(timedelta(minutes=20), (rotation.ends_at - clock.now()) / 2)
    activity = await create(client, s["duty"], zone_id=s["zone"].id, starts_in=inside, capacity=1,
                            checkin_opens_at=clock.now().isoformat())
    first = city.members[s["rotation"].unit_id][0]
    second = await Member.get(id=s["member_id"])
    t1, t2 = await wechat_login(client, first.openid or ""), s["member"]
    for t in (t1, t2):
        assert (await client.post(f"/api/v1/activities/{activity['id']}/signup", headers=bearer(t))).status == 201
    code = (await (await client.get(f"/api/v1/activities/{activity['id']}/checkin-code",
                                    headers=bearer(s["duty"]))).json())["token"]
    r = await client.post(f"/api/v1/activities/{activity['id']}/checkin", headers=bearer(t1),
                          json={"token": code})
    assert r.status == 200
    r = await client.delete(f"/api/v1/activities/{activity['id']}/signup", headers=bearer(t1))
    assert r.status == 409 and (await r.json())["code"] == "already_checked_in"
    assert await Signup.filter(activity_id=activity["id"], member_id=first.id).values_list("status", flat=True) == ["confirmed"]
    r = await client.post(f"/api/v1/activities/{activity['id']}/checkin", headers=bearer(t2),
                          json={"token": code})
    assert r.status == 409 and (await r.json())["code"] == "waitlisted"
    assert not await Checkin.exists(activity_id=activity["id"], member_id=second.id)


async def test_a_unit_admins_stats_count_their_unit_and_report_unknown_pushes(
        client: TestClient[Any, Any], city: City, settings: Settings) -> None:
    staff = await staff_login(client)
    r = await client.post("/api/v1/notices", headers=bearer(staff), json={
        "title": "全体", "audience": {"all": True}})
    notice_id = (await r.json())["id"]
    await run_workers(settings)
    unit = city.units[city.zones[0].id][0]
    admin = await wechat_login(client, city.admins[unit.id].openid or "")
    await InboxItem.filter(notice_id=notice_id, member_id=city.members[unit.id][0].id).update(
        push_status="unknown")
    stats = await (await client.get(f"/api/v1/notices/{notice_id}/stats", headers=bearer(admin))).json()
    assert stats["scope"] == "unit" and stats["recipients"] == stats["delivered"] == 4
    assert stats["pushes"]["unknown"] == 1
    full = await (await client.get(f"/api/v1/notices/{notice_id}/stats", headers=bearer(staff))).json()
    assert full["recipients"] == full["delivered"] == 32 and full["pushes"]["unknown"] == 1


async def test_notices_to_nothing_or_with_a_past_deadline_are_refused(
        client: TestClient[Any, Any], city: City) -> None:
    staff = await staff_login(client)
    r = await client.post("/api/v1/notices", headers=bearer(staff), json={
        "title": "x", "audience": {"zone_ids": [999]}})
    assert r.status == 404 and (await r.json())["code"] == "zone_not_found"
    r = await client.post("/api/v1/notices", headers=bearer(staff), json={
        "title": "x", "audience": {"unit_ids": [999]}})
    assert r.status == 404 and (await r.json())["code"] == "unit_not_found"
    r = await client.post("/api/v1/notices", headers=bearer(staff), json={
        "title": "x", "audience": {"all": True}, "require_ack": True,
        "ack_due_at": (clock.now() - timedelta(hours=1)).isoformat()})
    assert r.status == 422 and (await r.json())["errors"][0]["loc"] == ["body"]


async def test_every_timestamp_carries_the_shanghai_offset(client: TestClient[Any, Any],
                                                           city: City) -> None:
    staff = await staff_login(client)
    unit = city.units[city.zones[0].id][0]
    r = await client.post("/api/v1/supervision-items", headers=bearer(staff), json={
        "title": "x", "due_at": (clock.now() + timedelta(days=3)).isoformat(), "unit_ids": [unit.id]})
    item = await r.json()
    for _ in range(2):
        r = await client.post(f"/api/v1/supervision-items/{item['id']}/urge", headers=bearer(staff),
                              json={"unit_id": unit.id})
    body = await r.json()
    assert r.status == 429 and body["next_allowed_at"].endswith("+08:00")
    assert item["due_at"].endswith("+08:00")
