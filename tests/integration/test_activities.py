"""Activities over HTTP: who creates what where, sign-up rules, waitlist, cancellations, editing."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from models.activities import Signup, SignupStatus
from models.notices import InboxItem, Notice
from models.org import Rotation
from services import clock
from tests.support import City, bearer, staff_login, wechat_login


def iso(at: datetime) -> str:
    return at.isoformat()


async def generate(client: TestClient[Any, Any], staff: str) -> None:
    year, _ = clock.quarter_of(clock.now())
    for y in (year, year + 1):
        r = await client.post("/api/v1/rotations/generate", json={"year": y}, headers=bearer(staff))
        assert r.status == 200


async def create(client: TestClient[Any, Any], token: str, *, zone_id: int | None,
                 kind: str = "party_lesson", starts_in: timedelta = timedelta(days=2),
                 hours: float = 2, expect: int = 201, **extra: Any) -> dict[str, Any]:
    start = clock.now() + starts_in
    body = {"zone_id": zone_id, "kind": kind, "title": "学习二十大精神", "place": "会议室",
            "starts_at": iso(start), "ends_at": iso(start + timedelta(hours=hours)), **extra}
    r = await client.post("/api/v1/activities", json=body, headers=bearer(token))
    data = await r.json()
    assert r.status == expect, data
    return data


async def duty_setup(client: TestClient[Any, Any], city: City) -> dict[str, Any]:
    staff = await staff_login(client)
    await generate(client, staff)
    year, quarter = clock.quarter_of(clock.now())
    zone = city.zones[0]
    rotation = await Rotation.get(zone_id=zone.id, year=year, quarter=quarter)
    other = next(u for u in city.units[zone.id] if u.id != rotation.unit_id)
    return {
        "staff": staff, "zone": zone, "rotation": rotation,
        "duty": await wechat_login(client, city.admins[rotation.unit_id].openid or ""),
        "other_admin": await wechat_login(client, city.admins[other.id].openid or ""),
        "member": await wechat_login(client, city.members[other.id][0].openid or ""),
        "member_id": city.members[other.id][0].id,
    }


async def test_duty_unit_creates_in_its_zone_and_quarter_only(client: TestClient[Any, Any],
                                                              city: City) -> None:
    s = await duty_setup(client, city)
    rotation: Rotation = s["rotation"]
    inside = min(timedelta(hours=1), (rotation.ends_at - clock.now()) / 2)
    made = await create(client, s["duty"], zone_id=s["zone"].id, starts_in=inside)
    assert made["organiser_unit_id"] == rotation.unit_id and made["rotation_id"] == rotation.id
    assert made["audience"] == {"zone_ids": [s["zone"].id]} and made["warnings"] == []
    after = rotation.ends_at - clock.now() + timedelta(days=1)
    r = await create(client, s["duty"], zone_id=s["zone"].id, starts_in=after, expect=403)
    assert r["code"] == "outside_rotation"
    r = await create(client, s["duty"], zone_id=city.zones[1].id, starts_in=inside, expect=403)
    assert r["code"] == "not_on_duty"
    r = await create(client, s["other_admin"], zone_id=s["zone"].id, starts_in=inside, expect=403)
    assert r["code"] == "not_on_duty"
    r = await create(client, s["member"], zone_id=s["zone"].id, starts_in=inside, expect=403)
    assert r["code"] == "forbidden"
    # The committee: any zone, any time, and city-wide.
    assert (await create(client, s["staff"], zone_id=None, kind="contest"))["audience"] == {"all": True}


async def test_more_than_four_in_a_rotation_warns_but_is_allowed(client: TestClient[Any, Any],
                                                                 city: City) -> None:
    s = await duty_setup(client, city)
    inside = min(timedelta(hours=1), (s["rotation"].ends_at - clock.now()) / 2)
    warnings = [(await create(client, s["staff"], zone_id=s["zone"].id, starts_in=inside))["warnings"]
                for _ in range(5)]
    assert warnings == [[], [], [], [], ["rotation_over_guideline"]]


async def test_times_and_fields_are_validated(client: TestClient[Any, Any], city: City) -> None:
    staff = await staff_login(client)
    r = await create(client, staff, zone_id=city.zones[0].id, hours=-1, expect=422)
    assert r["errors"][0]["loc"] == ["body", "starts_at"]
    r = await create(client, staff, zone_id=city.zones[0].id, radius_m=100, expect=422)
    assert r["errors"][0]["loc"] == ["body", "radius_m"]
    r = await create(client, staff, zone_id=city.zones[0].id, kind="party", expect=422)
    assert r["errors"][0]["loc"] == ["body", "kind"]
    r = await client.post("/api/v1/activities", headers=bearer(staff), json={
        "zone_id": city.zones[0].id, "kind": "other", "title": "x",
        "starts_at": "2026-12-01T10:00:00", "ends_at": "2026-12-01T11:00:00"})
    assert r.status == 422  # times without an offset are refused
    r = await create(client, staff, zone_id=999999, expect=404)


async def test_signup_waitlist_repeat_and_promotion(client: TestClient[Any, Any], city: City) -> None:
    staff = await staff_login(client)
    zone = city.zones[0]
    activity = await create(client, staff, zone_id=zone.id, capacity=2)
    aid = activity["id"]
    people = [m for u in city.units[zone.id] for m in city.members[u.id]][:4]
    tokens = [await wechat_login(client, m.openid or "") for m in people]
    answers = []
    for t in tokens:
        r = await client.post(f"/api/v1/activities/{aid}/signup", headers=bearer(t))
        assert r.status == 201
        answers.append(await r.json())
    assert [(a["status"], a["position"]) for a in answers] == [
        ("confirmed", None), ("confirmed", None), ("waitlisted", 1), ("waitlisted", 2)]
    again = await client.post(f"/api/v1/activities/{aid}/signup", headers=bearer(tokens[3]))
    assert again.status == 200 and (await again.json())["signup_id"] == answers[3]["signup_id"]
    detail = await (await client.get(f"/api/v1/activities/{aid}", headers=bearer(tokens[2]))).json()
    assert (detail["confirmed"], detail["waitlisted"], detail["my_status"], detail["my_position"]) == (
        2, 2, "waitlisted", 1)
    # A confirmed member cancels: the first waitlisted moves up at once and is told.
    r = await client.delete(f"/api/v1/activities/{aid}/signup", headers=bearer(tokens[0]))
    assert r.status == 200 and (await r.json())["status"] == "cancelled"
    assert (await Signup.get(id=answers[2]["signup_id"])).status is SignupStatus.CONFIRMED
    told = await InboxItem.filter(member_id=people[2].id).values_list("notice__topic", flat=True)
    assert told == ["activity.promoted"]
    # The last one leaves the waitlist: nobody else is promoted.
    r = await client.delete(f"/api/v1/activities/{aid}/signup", headers=bearer(tokens[3]))
    assert (await r.json())["status"] == "cancelled"
    detail = await (await client.get(f"/api/v1/activities/{aid}", headers=bearer(staff))).json()
    assert (detail["confirmed"], detail["waitlisted"]) == (2, 0)
    r = await client.delete(f"/api/v1/activities/{aid}/signup", headers=bearer(tokens[3]))
    assert r.status == 404 and (await r.json())["code"] == "not_signed_up"
    # Signing up again after cancelling queues at the back.
    r = await client.post(f"/api/v1/activities/{aid}/signup", headers=bearer(tokens[0]))
    assert r.status == 201 and (await r.json())["status"] == "waitlisted"


async def test_signup_refusals_have_distinct_codes(client: TestClient[Any, Any], city: City) -> None:
    staff = await staff_login(client)
    zone, other_zone = city.zones
    member = city.members[city.units[zone.id][0].id][0]
    token = await wechat_login(client, member.openid or "")
    full = await create(client, staff, zone_id=zone.id, capacity=1, waitlist=False)
    outsider = await create(client, staff, zone_id=other_zone.id)
    narrow = await create(client, staff, zone_id=zone.id,
                          audience={"unit_ids": [city.units[zone.id][1].id]})
    later = await create(client, staff, zone_id=zone.id,
                         signup_opens_at=iso(clock.now() + timedelta(days=1)))
    soon = await create(client, staff, zone_id=zone.id, starts_in=timedelta(hours=1))
    other = await wechat_login(client, city.members[city.units[zone.id][1].id][0].openid or "")
    assert (await client.post(f"/api/v1/activities/{full['id']}/signup", headers=bearer(other))).status == 201

    async def code(activity_id: int) -> tuple[int, str]:
        r = await client.post(f"/api/v1/activities/{activity_id}/signup", headers=bearer(token))
        return r.status, (await r.json())["code"]

    assert await code(full["id"]) == (409, "activity_full")
    assert await code(outsider["id"]) == (404, "activity_not_found")  # another zone's: hidden
    assert await code(narrow["id"]) == (403, "not_in_audience")       # seen, not for this unit
    assert await code(later["id"]) == (409, "signup_not_open")
    clock.travel(timedelta(hours=2))
    assert await code(soon["id"]) == (409, "signup_closed")
    assert await code(999999) == (404, "activity_not_found")


async def test_capacity_edit_keeps_promises_and_raising_it_promotes(client: TestClient[Any, Any],
                                                                    city: City) -> None:
    staff = await staff_login(client)
    zone = city.zones[0]
    aid = (await create(client, staff, zone_id=zone.id, capacity=2))["id"]
    people = [m for u in city.units[zone.id] for m in city.members[u.id]][:4]
    for m in people:
        await client.post(f"/api/v1/activities/{aid}/signup", headers=bearer(await wechat_login(client, m.openid or "")))
    r = await client.patch(f"/api/v1/activities/{aid}", json={"capacity": 1}, headers=bearer(staff))
    assert r.status == 409 and (await r.json())["code"] == "capacity_below_confirmed"
    r = await client.patch(f"/api/v1/activities/{aid}", json={"capacity": 3, "title": "新标题"},
                           headers=bearer(staff))
    body = await r.json()
    assert r.status == 200 and (body["capacity"], body["confirmed"], body["waitlisted"], body["title"]) == (
        3, 3, 1, "新标题")


async def test_cancelled_activity_tells_everyone_and_refuses_signups(client: TestClient[Any, Any],
                                                                     city: City) -> None:
    staff = await staff_login(client)
    zone = city.zones[0]
    aid = (await create(client, staff, zone_id=zone.id, capacity=1))["id"]
    people = [m for u in city.units[zone.id] for m in city.members[u.id]][:3]
    tokens = [await wechat_login(client, m.openid or "") for m in people]
    for t in tokens[:2]:
        await client.post(f"/api/v1/activities/{aid}/signup", headers=bearer(t))
    r = await client.post(f"/api/v1/activities/{aid}/cancel", json={"reason": "场地维修"}, headers=bearer(staff))
    assert r.status == 200 and (await r.json())["status"] == "cancelled"
    notice = await Notice.get(topic="activity.cancelled")
    assert notice.body == "场地维修"
    assert sorted(await InboxItem.filter(notice_id=notice.id).values_list("member_id", flat=True)) == \
        sorted(m.id for m in people[:2])
    r = await client.post(f"/api/v1/activities/{aid}/signup", headers=bearer(tokens[2]))
    assert (await r.json())["code"] == "activity_cancelled"
    # Cancelling twice tells nobody twice.
    await client.post(f"/api/v1/activities/{aid}/cancel", json={"reason": "again"}, headers=bearer(staff))
    assert await Notice.filter(topic="activity.cancelled").count() == 1


async def test_unit_admin_batch_signup_is_all_or_nothing(client: TestClient[Any, Any], city: City) -> None:
    staff = await staff_login(client)
    zone = city.zones[0]
    unit, other_unit = city.units[zone.id][:2]
    aid = (await create(client, staff, zone_id=zone.id, capacity=2))["id"]
    admin = await wechat_login(client, city.admins[unit.id].openid or "")
    mine = [m.id for m in city.members[unit.id]]
    r = await client.post(f"/api/v1/activities/{aid}/signups/batch", headers=bearer(admin),
                          json={"member_ids": [*mine, city.members[other_unit.id][0].id]})
    assert r.status == 403
    assert await Signup.filter(activity_id=aid).count() == 0
    r = await client.post(f"/api/v1/activities/{aid}/signups/batch", headers=bearer(admin),
                          json={"member_ids": mine})
    assert r.status == 201
    assert [i["status"] for i in (await r.json())["items"]] == ["confirmed", "confirmed", "waitlisted"]
    member = await wechat_login(client, city.members[unit.id][0].openid or "")
    r = await client.post(f"/api/v1/activities/{aid}/signups/batch", headers=bearer(member),
                          json={"member_ids": mine})
    assert r.status == 403


async def test_organiser_reads_signups_and_powers_end_with_the_rotation(client: TestClient[Any, Any],
                                                                        city: City) -> None:
    s = await duty_setup(client, city)
    inside = min(timedelta(minutes=30), (s["rotation"].ends_at - clock.now()) / 3)
    aid = (await create(client, s["duty"], zone_id=s["zone"].id, starts_in=inside, capacity=1))["id"]
    await client.post(f"/api/v1/activities/{aid}/signup", headers=bearer(s["member"]))
    r = await client.get(f"/api/v1/activities/{aid}/signups", headers=bearer(s["duty"]))
    body = await r.json()
    assert r.status == 200 and [x["member_id"] for x in body["confirmed"]] == [s["member_id"]]
    assert (await client.get(f"/api/v1/activities/{aid}/signups", headers=bearer(s["other_admin"]))).status == 403
    assert (await client.get(f"/api/v1/activities/{aid}/signups", headers=bearer(s["member"]))).status == 403
    clock.travel(s["rotation"].ends_at - clock.now() + timedelta(seconds=1))
    # After its quarter the unit still reads its activity's records (its handover needs them),
    # but no longer manages it.
    r = await client.get(f"/api/v1/activities/{aid}/signups", headers=bearer(s["duty"]))
    assert r.status == 200
    r = await client.patch(f"/api/v1/activities/{aid}", headers=bearer(s["duty"]), json={"title": "改"})
    assert r.status == 403 and (await r.json())["code"] == "not_on_duty"


async def test_listing_shows_what_i_may_see(client: TestClient[Any, Any], city: City) -> None:
    staff = await staff_login(client)
    z1, z2 = city.zones
    a1 = await create(client, staff, zone_id=z1.id)
    a2 = await create(client, staff, zone_id=z2.id, kind="volunteer")
    everyone = await create(client, staff, zone_id=None, kind="contest")
    member = await wechat_login(client, city.members[city.units[z1.id][0].id][0].openid or "")
    ids = [a["id"] for a in (await (await client.get("/api/v1/activities", headers=bearer(member))).json())["items"]]
    assert a1["id"] in ids and everyone["id"] in ids and a2["id"] not in ids
    r = await client.get(f"/api/v1/activities/{a2['id']}", headers=bearer(member))
    assert r.status == 404
    r = await client.get(f"/api/v1/activities?kind=volunteer&zone_id={z2.id}", headers=bearer(staff))
    assert [a["id"] for a in (await r.json())["items"]] == [a2["id"]]
    r = await client.get("/api/v1/activities?from=yesterday", headers=bearer(staff))
    assert r.status == 422
