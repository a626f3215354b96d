"""Running the zones: the work plan and its filing, the regular meeting, the handover, and who may
do what across the quarter boundary (the outgoing unit reads its past quarter, never writes it)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from models.activities import Activity, Checkin
from models.governance import Handover, RotationWarning
from models.notices import InboxItem, Notice
from models.org import Liaison, Member, Position, Role, Rotation
from models.supervision import Assignment
from services import clock, handovers, plans, rotations
from services.auth import hash_password
from tests.support import STAFF_PASSWORD, City, bearer, staff_login, wechat_login


def shanghai(*args: int) -> datetime:
    return datetime(*args, tzinfo=clock.SHANGHAI)  # type: ignore[misc]


def travel_to(when: datetime) -> None:
    clock.reset_travel()
    clock.travel(when - clock.now())


async def _zone(client: TestClient[Any, Any], city: City, n: int = 0) -> dict[str, Any]:
    """Zone n's Q4 2026 rotation and the next one, with tokens: staff, its duty admin, the next
    duty unit's admin, another unit's admin, a member."""
    zone = city.zones[n]
    now = await Rotation.get(zone_id=zone.id, year=2026, quarter=4)
    nxt = await Rotation.get(zone_id=zone.id, year=2027, quarter=1)
    other = next(u for u in city.units[zone.id] if u.id not in (now.unit_id, nxt.unit_id))
    return {
        "zone": zone.id, "rotation": now, "next": nxt, "other_unit": other.id,
        "duty_id": city.admins[now.unit_id].id, "member_id": city.members[other.id][0].id,
        "staff": await staff_login(client),
        "duty": await wechat_login(client, city.admins[now.unit_id].openid or ""),
        "incoming": await wechat_login(client, city.admins[nxt.unit_id].openid or ""),
        "other_admin": await wechat_login(client, city.admins[other.id].openid or ""),
        "member": await wechat_login(client, city.members[other.id][0].openid or ""),
    }


async def _quarter_city(client: TestClient[Any, Any], city: City, at: datetime) -> dict[str, Any]:
    travel_to(at)
    for year in (2026, 2027):
        await rotations.generate_rotations(year=year)
    return await _zone(client, city)


async def _call(client: TestClient[Any, Any], method: str, path: str, token: str,
                expect: int = 200, **body: Any) -> dict[str, Any]:
    r = await client.request(method, "/api/v1" + path, headers=bearer(token),
                             json=body if method != "GET" else None)
    data = await r.json()
    assert r.status == expect, (method, path, data)
    return dict(data)


def _plan(goals: str = "抓好主题教育", n: int = 3) -> dict[str, Any]:
    kinds = ["party_lesson", "party_activity", "handover_meeting", "volunteer", "other"]
    return {"goals": goals, "budget_fen": 500_000,
            "items": [{"kind": kinds[i % 5], "title": f"活动{i + 1}", "date": f"2026-11-{10 + i:02d}"}
                      for i in range(n)]}


async def _liaison(client: TestClient[Any, Any], username: str, zone_ids: list[int]) -> str:
    m = await Member.create(name=username, phone="13811110000", role=Role.LIAISON, username=username,
                            password_hash=hash_password(STAFF_PASSWORD))
    for z in zone_ids:
        await Liaison.create(member_id=m.id, zone_id=z)
    return await staff_login(client, username)


# -- the work plan -------------------------------------------------------------------------------

async def test_a_plan_is_drafted_discussed_submitted_returned_and_filed_with_every_version_kept(
        client: TestClient[Any, Any], city: City) -> None:
    s = await _quarter_city(client, city, shanghai(2026, 10, 5, 9))
    path = f"/rotations/{s['rotation'].id}/plan"
    await _call(client, "GET", path, s["member"], expect=403)
    await _call(client, "PUT", path, s["other_admin"], expect=403, **_plan())
    first = await _call(client, "PUT", path, s["duty"], **_plan(n=5))
    assert (first["state"], first["version"], first["warnings"]) == ("draft", 1, ["over_guideline"])
    same = await _call(client, "PUT", path, s["duty"], **_plan(n=5))
    assert same["version"] == 1                                   # nothing changed: no new version
    second = await _call(client, "PUT", path, s["duty"], **_plan(n=3))
    assert (second["version"], second["warnings"]) == (2, [])
    outside = _plan() | {"items": [{"kind": "other", "title": "x", "date": "2027-02-01"}]}
    await _call(client, "PUT", path, s["duty"], expect=422, **outside)
    await _call(client, "POST", path + "/comments", s["other_admin"], body="建议增加志愿服务")
    duty_admin = (await Rotation.get(id=s["rotation"].id)).unit_id
    told = await InboxItem.filter(member_id__in=await Member.filter(unit_id=duty_admin, role=Role.UNIT_ADMIN)
                                  .values_list("id", flat=True)).select_related("notice")
    assert any(i.notice.topic == "plan.commented" for i in told)
    await _call(client, "POST", path + "/file", s["staff"], expect=409, decision="file")  # not submitted
    await _call(client, "POST", path + "/submit", s["other_admin"], expect=403)
    submitted = await _call(client, "POST", path + "/submit", s["duty"])
    assert submitted["state"] == "submitted"
    assert (await _call(client, "POST", path + "/submit", s["duty"]))["state"] == "submitted"
    await _call(client, "PUT", path, s["duty"], expect=409, **_plan(n=2))
    await _call(client, "POST", path + "/file", s["staff"], expect=422, decision="return")
    far = await _liaison(client, "far", [city.zones[1].id])
    await _call(client, "POST", path + "/file", far, expect=403, decision="file")
    returned = await _call(client, "POST", path + "/file", s["staff"], decision="return",
                           comment="预算需细化")
    assert (returned["state"], returned["decision_comment"]) == ("returned", "预算需细化")
    third = await _call(client, "PUT", path, s["duty"], **_plan(goals="抓好主题教育，细化预算"))
    assert (third["state"], third["version"]) == ("draft", 3)
    await _call(client, "POST", path + "/submit", s["duty"])
    near = await _liaison(client, "near", [s["zone"]])
    filed = await _call(client, "POST", path + "/file", near, decision="file")
    assert (filed["state"], filed["filed_version"]) == ("filed", 3)
    await _call(client, "POST", path + "/file", s["staff"], expect=409, decision="return", comment="再改")
    seen = await _call(client, "GET", path, s["other_admin"])
    assert [v["version"] for v in seen["versions"]] == [1, 2, 3]
    assert [e["kind"] for e in seen["events"]] == ["commented", "submitted", "returned", "submitted", "filed"]
    assert seen["current"]["goals"] == "抓好主题教育，细化预算" and seen["submitted_at"] <= seen["due_at"]
    other_zone = await Rotation.get(zone_id=city.zones[1].id, year=2026, quarter=4)
    stranger = await wechat_login(client, city.admins[other_zone.unit_id].openid or "")
    await _call(client, "GET", path, stranger, expect=403)


async def test_fewer_than_two_activities_held_three_weeks_before_the_end_warns_once(
        client: TestClient[Any, Any], city: City) -> None:
    s = await _quarter_city(client, city, shanghai(2026, 10, 5, 9))
    rotation: Rotation = s["rotation"]
    held = await Activity.create(zone_id=s["zone"], organiser_unit_id=rotation.unit_id,
                                 rotation_id=rotation.id, created_by_id=city.admins[rotation.unit_id].id,
                                 kind="party_lesson", title="党课", starts_at=shanghai(2026, 10, 10, 9),
                                 ends_at=shanghai(2026, 10, 10, 11), signup_opens_at=shanghai(2026, 10, 1),
                                 signup_closes_at=shanghai(2026, 10, 10, 9), checkin_opens_at=shanghai(2026, 10, 10, 8),
                                 checkin_closes_at=shanghai(2026, 10, 10, 12), checked_in=12, checkin_secret="x")
    assert held.id
    travel_to(shanghai(2026, 12, 1, 9))                         # 30 days to go: not yet
    assert await plans.warn_few_held() == 0
    travel_to(shanghai(2026, 12, 12, 9))                        # 19 days to go, one held here
    assert await plans.warn_few_held() == len(city.zones)       # (and none in the other zone)
    assert await plans.warn_few_held() == 0                     # once
    [warning] = await RotationWarning.filter(rotation_id=rotation.id)
    assert warning.detail == {"held": 1, "min": 2}
    assert await Notice.exists(topic="plan.few_held", ref_id=rotation.id)


# -- the regular meeting -------------------------------------------------------------------------

async def test_the_meeting_hears_reports_comments_and_deploys_next_quarters_tasks(
        client: TestClient[Any, Any], city: City) -> None:
    s = await _quarter_city(client, city, shanghai(2026, 12, 10, 9))
    body = {"year": 2026, "quarter": 4, "title": "第四季度例会", "starts_at": "2026-12-20T09:00:00+08:00",
            "place": "机关工委会议室"}
    await _call(client, "POST", "/meetings", s["duty"], expect=403, **body)
    meeting = await _call(client, "POST", "/meetings", s["staff"], expect=201, **body)
    await _call(client, "POST", "/meetings", s["staff"], expect=409, **body)
    [z1] = [z for z in meeting["zones"] if z["zone_id"] == s["zone"]]
    assert (z1["unit_id"], z1["next_unit_id"]) == (s["rotation"].unit_id, s["next"].unit_id)
    invited = await Notice.get(topic="meeting.scheduled", ref_id=meeting["id"])
    invitees = set(await InboxItem.filter(notice_id=invited.id).values_list("member_id", flat=True))
    assert {city.admins[s["rotation"].unit_id].id, city.admins[s["next"].unit_id].id} <= invitees
    base = f"/meetings/{meeting['id']}"
    await _call(client, "GET", base, s["other_admin"], expect=404)   # not at the meeting
    assert (await _call(client, "GET", base, s["incoming"]))["id"] == meeting["id"]
    zone = f"{base}/zones/{s['zone']}"
    await _call(client, "PUT", zone + "/report", s["incoming"], expect=403, text="不是我们的季度")
    reported = await _call(client, "PUT", zone + "/report", s["duty"], text="本季度开展党课 2 次")
    assert [z["report"] for z in reported["zones"] if z["zone_id"] == s["zone"]] == ["本季度开展党课 2 次"]
    await _call(client, "PUT", zone + "/comments", s["duty"], expect=403, text="自评")
    await _call(client, "PUT", zone + "/comments", s["staff"], text="党课质量高，志愿服务偏少")
    deployed = await _call(client, "POST", base + "/deployments", s["staff"], expect=201,
                           title="开展春节走访慰问", detail="每个网络区至少一次",
                           due_at="2027-02-10T18:00:00+08:00")
    [d] = deployed["deployments"]
    next_units = {z["next_unit_id"] for z in deployed["zones"]}
    assigned = set(await Assignment.filter(item_id=d["item_id"]).values_list("unit_id", flat=True))
    assert assigned == next_units and d["zone_ids"] == sorted(z["zone_id"] for z in deployed["zones"])
    closed = await _call(client, "POST", base + "/close", s["staff"], minutes="会议纪要")
    assert closed["state"] == "held"
    await _call(client, "PUT", zone + "/report", s["duty"], expect=409, text="补充")
    listed = await _call(client, "GET", "/meetings?year=2026", s["duty"])
    assert [m["id"] for m in listed["items"]] == [meeting["id"]]
    assert (await _call(client, "GET", "/meetings", s["other_admin"]))["items"] == []


# -- the handover --------------------------------------------------------------------------------

async def test_the_handover_is_prefilled_confirmed_by_both_sides_and_closes_the_rotation(
        client: TestClient[Any, Any], city: City) -> None:
    s = await _quarter_city(client, city, shanghai(2026, 11, 20, 9))
    rotation: Rotation = s["rotation"]
    path = f"/rotations/{rotation.id}/handover"
    await _call(client, "POST", path, s["duty"], expect=409, note="早了")  # opens 30 days before the end
    lesson = await _activity(s, rotation, kind="party_lesson", day=(2026, 11, 25))
    await Checkin.create(activity_id=lesson.id, member_id=s["member_id"], method="venue_code",
                         checked_in_at=shanghai(2026, 11, 25, 10))
    travel_to(shanghai(2026, 12, 10, 9))
    draft = await _call(client, "GET", path, s["duty"])
    assert draft["report"]["attendance"] == {"held": 1, "attendee_times": 1, "signed_up": 0}
    assert draft["report"]["three_ones"] == {"party_lesson": True, "party_activity": False,
                                             "handover_meeting": False}
    assert not draft["report_frozen"] and draft["next_unit_id"] == s["next"].unit_id
    await _call(client, "GET", path, s["other_admin"], expect=403)
    await _call(client, "POST", path, s["other_admin"], expect=403, note="冒充")
    await _call(client, "POST", path, s["duty"], expect=403, plan="交出方不写计划")
    await _call(client, "POST", path, s["incoming"], plan="一季度计划：春节走访")
    out = await _call(client, "POST", path, s["duty"], note="本季度工作总结", confirm=True)
    assert out["report_frozen"] and out["outgoing_confirmed_at"] and out["closed_at"] is None
    await _call(client, "POST", path, s["duty"], expect=409, note="改一下")
    assert (await _call(client, "POST", path, s["duty"], confirm=True))["outgoing_note"] == "本季度工作总结"
    # The incoming unit's 书记 (not its admin) may confirm for it; a plain member may not.
    incoming_members = city.members[s["next"].unit_id]
    plain = await wechat_login(client, incoming_members[1].openid or "")
    await _call(client, "POST", path, plain, expect=403, confirm=True)
    await Member.filter(id=incoming_members[0].id).update(position=Position.SECRETARY)
    secretary = await wechat_login(client, incoming_members[0].openid or "")
    done = await _call(client, "POST", path, secretary, confirm=True)
    assert done["closed_at"] and done["incoming_plan"] == "一季度计划：春节走访"
    assert (await Handover.get(rotation_id=rotation.id)).incoming_confirmed_by_id == incoming_members[0].id


async def test_an_open_handover_is_flagged_to_the_liaison_once_after_the_boundary(
        client: TestClient[Any, Any], city: City) -> None:
    s = await _quarter_city(client, city, shanghai(2026, 12, 20, 9))
    liaison = await Member.create(name="联络员", phone="13811112222", role=Role.LIAISON, username="l1",
                                  password_hash=hash_password(STAFF_PASSWORD))
    await Liaison.create(member_id=liaison.id, zone_id=s["zone"])
    travel_to(shanghai(2027, 1, 2, 9))                       # a day after: not yet
    assert await handovers.flag_open() == 0
    travel_to(shanghai(2027, 1, 6, 9))
    flagged = await handovers.flag_open()
    assert flagged == len(city.zones) and await handovers.flag_open() == 0
    told = await InboxItem.filter(member_id=liaison.id).select_related("notice")
    assert [i.notice.ref_id for i in told if i.notice.topic == "handover.open"] == [s["rotation"].id]


# -- across the quarter boundary -----------------------------------------------------------------

async def _activity(s: dict[str, Any], rotation: Rotation, *, kind: str = "party_activity",
                    day: tuple[int, int, int] = (2026, 12, 15)) -> Activity:
    start = shanghai(*day, 9)
    return await Activity.create(
        zone_id=rotation.zone_id, organiser_unit_id=rotation.unit_id, rotation_id=rotation.id,
        created_by_id=s["duty_id"], kind=kind, title="主题党日", starts_at=start,
        ends_at=start + timedelta(hours=2), signup_opens_at=start - timedelta(days=5),
        signup_closes_at=start, checkin_opens_at=start - timedelta(hours=1),
        checkin_closes_at=start + timedelta(hours=3), checked_in=1 if kind == "party_lesson" else 0,
        checkin_secret="s")


async def test_the_outgoing_unit_reads_its_past_quarter_and_the_incoming_unit_does_not_inherit_it(
        client: TestClient[Any, Any], city: City) -> None:
    s = await _quarter_city(client, city, shanghai(2026, 12, 10, 9))
    rotation: Rotation = s["rotation"]
    made = await _call(client, "POST", "/activities", s["duty"], expect=201, zone_id=s["zone"],
                       kind="party_activity", title="主题党日", starts_at="2026-12-15T09:00:00+08:00",
                       ends_at="2026-12-15T11:00:00+08:00")
    entry = await _call(client, "POST", f"/zones/{s['zone']}/fund-entries", s["duty"], expect=201,
                        direction="income", category="duty_unit", unit_id=rotation.unit_id,
                        amount_fen=100_000, description="轮值单位经费", occurred_on="2026-12-10")
    travel_to(shanghai(2027, 1, 3, 9))                      # the next quarter: powers have passed
    outgoing = await wechat_login(client, city.admins[rotation.unit_id].openid or "")
    incoming = await wechat_login(client, city.admins[s["next"].unit_id].openid or "")
    activity = f"/activities/{made['id']}"
    # The outgoing unit reads its own quarter's records ...
    await _call(client, "GET", activity + "/signups", outgoing)
    await _call(client, "GET", activity + "/attendance", outgoing)
    ledger = await _call(client, "GET", f"/zones/{s['zone']}/fund-ledger?year=2026", outgoing)
    assert [e["id"] for e in ledger["entries"]] == [entry["id"]]
    # ... and no longer writes them.
    r = await client.patch("/api/v1" + activity, headers=bearer(outgoing), json={"title": "改名"})
    assert r.status == 403 and (await r.json())["code"] == "not_on_duty"
    # The new duty unit does not inherit them: neither editing, nor reversing the old lines.
    for method, path, body in (("PATCH", activity, {"title": "改名"}),
                               ("POST", activity + "/cancel", {"reason": "不办了"}),
                               ("GET", activity + "/signups", None)):
        r = await client.request(method, "/api/v1" + path, headers=bearer(incoming), json=body)
        assert r.status == 403 and (await r.json())["code"] == "not_your_quarter", (method, path)
    r = await client.post(f"/api/v1/zones/{s['zone']}/fund-entries/{entry['id']}/reverse",
                          headers=bearer(incoming), json={"reason": "记错了"})
    assert r.status == 403 and (await r.json())["code"] == "not_your_quarter"
    # The committee still can.
    r = await client.patch("/api/v1" + activity, headers=bearer(s["staff"]), json={"title": "改名"})
    assert r.status == 200
