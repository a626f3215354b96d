"""Activity records as evidence (minutes and photos, within the organiser's window and the
outgoing unit's grace) and good practice (publish, read once per member, feature to every zone),
with what the ledger, its workbook and the year-end evaluation make of them."""

from __future__ import annotations

import asyncio
import io
from typing import Any

from aiohttp import FormData
from aiohttp.test_utils import TestClient
from openpyxl import load_workbook

from models.audit import AuditEntry
from models.notices import InboxItem, Notice
from models.org import Member, Rotation
from models.practices import Practice, PracticeRead
from services.settings import Settings
from tests.integration.test_governance import _activity, _call, _quarter_city, shanghai, travel_to
from tests.support import City, bearer, run_workers, staff_login, wechat_login

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 40
PDF = b"%PDF-1.4\n" + b"1" * 32


async def upload(client: TestClient[Any, Any], token: str, content: bytes, name: str,
                 content_type: str) -> dict[str, Any]:
    form = FormData()
    form.add_field("file", content, filename=name, content_type=content_type)
    r = await client.post("/api/v1/attachments", data=form, headers=bearer(token))
    assert r.status == 201, await r.text()
    return dict(await r.json())


async def login(client: TestClient[Any, Any], member: Member) -> str:
    return await wechat_login(client, member.openid or "")


async def _tokens(client: TestClient[Any, Any], city: City, s: dict[str, Any]) -> dict[str, str]:
    """Fresh tokens (time travels past their expiry): zone 1's duty, incoming and other unit
    admins and member; zone 2's duty admin and member; the committee."""
    z2 = city.zones[1].id
    duty2 = await Rotation.get(zone_id=z2, year=2026, quarter=4)
    rotation: Rotation = s["rotation"]
    return {
        "duty": await login(client, city.admins[rotation.unit_id]),
        "incoming": await login(client, city.admins[s["next"].unit_id]),
        "other_admin": await login(client, city.admins[s["other_unit"]]),
        "member": await login(client, city.members[s["other_unit"]][0]),
        "zone2_admin": await login(client, city.admins[duty2.unit_id]),
        "zone2_member": await login(client, city.members[duty2.unit_id][0]),
        "staff": await staff_login(client),
    }


# -- activity records ----------------------------------------------------------------------------

async def test_the_duty_unit_records_minutes_and_photos_after_the_start_seen_by_its_zone_only(
        client: TestClient[Any, Any], city: City) -> None:
    s = await _quarter_city(client, city, shanghai(2026, 12, 10, 9))
    t = await _tokens(client, city, s)
    activity = await _activity(s, s["rotation"], day=(2026, 12, 15))
    path = f"/activities/{activity.id}/record"
    photo = await upload(client, t["duty"], PNG, "合影.png", "image/png")
    body = {"minutes": "学习了党章，讨论了三项工作", "photos": [photo]}
    refused = await _call(client, "PUT", path, t["duty"], expect=409, **body)   # not started yet
    assert refused["code"] == "record_window_closed"

    travel_to(shanghai(2026, 12, 15, 10))
    t = await _tokens(client, city, s)
    pdf = await upload(client, t["duty"], PDF, "纪要.pdf", "application/pdf")
    bad = await _call(client, "PUT", path, t["duty"], expect=422, minutes="x", photos=[photo, pdf])
    assert bad["code"] == "not_an_image" and bad["errors"][0]["loc"] == ["body", "photos", 1]
    assert (await _call(client, "PUT", path, t["other_admin"], expect=403, **body))["code"] == "not_your_quarter"
    # another zone's unit (its audience is open: zone 2 sees the activity itself) is refused
    assert (await _call(client, "PUT", path, t["zone2_admin"], expect=403, **body))["code"] == "not_your_quarter"
    assert (await _call(client, "PUT", path, t["member"], expect=403, **body))["code"] == "forbidden"
    # a photo uploaded by someone else's unit cannot be cited
    foreign = await upload(client, t["zone2_admin"], JPEG, "别人的.jpg", "image/jpeg")
    await _call(client, "PUT", path, t["duty"], expect=403, minutes="x", photos=[foreign])

    out = await _call(client, "PUT", path, t["duty"], **body)
    assert out["minutes"] == body["minutes"] and [p["url"] for p in out["photos"]] == [photo["url"]]
    assert out["recorded_unit_id"] == s["rotation"].unit_id

    # the zone (a member of another unit) sees it, with the activity and the photo itself
    detail = await _call(client, "GET", f"/activities/{activity.id}", t["member"])
    assert detail["record"]["minutes"] == body["minutes"]
    assert (await _call(client, "GET", path, t["member"]))["photos"][0]["content_type"] == "image/png"
    r = await client.get(photo["url"], headers=bearer(t["member"]))
    assert r.status == 200 and await r.read() == PNG
    # another zone does not, though the activity's audience lets it see the activity
    assert (await _call(client, "GET", f"/activities/{activity.id}", t["zone2_member"]))["record"] is None
    assert (await _call(client, "GET", path, t["zone2_member"], expect=404))["code"] == "activity_not_found"
    r = await client.get(photo["url"], headers=bearer(t["zone2_member"]))
    assert r.status == 404
    # the staff governing the zone may record too; writing again replaces the record
    out = await _call(client, "PUT", path, t["staff"], minutes="工委补记", photos=[])
    assert out["photos"] == [] and out["recorded_unit_id"] is None


async def test_the_outgoing_unit_records_during_its_grace_and_not_after(
        client: TestClient[Any, Any], city: City) -> None:
    s = await _quarter_city(client, city, shanghai(2026, 12, 10, 9))
    activity = await _activity(s, s["rotation"], day=(2026, 12, 20))
    path = f"/activities/{activity.id}/record"
    travel_to(shanghai(2027, 1, 20, 9))          # the quarter is over, its handover open
    t = await _tokens(client, city, s)
    assert (await _call(client, "PUT", path, t["duty"], minutes="季度结束后补记"))["minutes"] == "季度结束后补记"
    # the incoming duty unit does not inherit its predecessor's activities
    assert (await _call(client, "PUT", path, t["incoming"], expect=403, minutes="接手"))["code"] == "not_your_quarter"
    travel_to(shanghai(2027, 2, 1, 9))           # more than 30 days after the quarter
    t = await _tokens(client, city, s)
    closed = await _call(client, "PUT", path, t["duty"], expect=409, minutes="太晚了")
    assert closed["code"] == "record_window_closed"
    # the record stays readable
    assert (await _call(client, "GET", path, t["duty"]))["minutes"] == "季度结束后补记"


async def test_a_closed_handover_ends_the_grace(client: TestClient[Any, Any], city: City) -> None:
    s = await _quarter_city(client, city, shanghai(2026, 12, 10, 9))
    activity = await _activity(s, s["rotation"], day=(2026, 12, 20))
    travel_to(shanghai(2027, 1, 5, 9))
    t = await _tokens(client, city, s)
    handover = f"/rotations/{s['rotation'].id}/handover"
    await _call(client, "POST", handover, t["duty"], confirm=True)
    await _call(client, "PUT", f"/activities/{activity.id}/record", t["duty"], minutes="交接前")
    assert (await _call(client, "POST", handover, t["incoming"], confirm=True))["closed_at"]
    closed = await _call(client, "PUT", f"/activities/{activity.id}/record", t["duty"], expect=409,
                         minutes="交接后")
    assert closed["code"] == "record_window_closed"


# -- good practice -------------------------------------------------------------------------------

async def test_units_publish_practices_for_their_own_unit_and_anyone_lists_them(
        client: TestClient[Any, Any], city: City) -> None:
    s = await _quarter_city(client, city, shanghai(2026, 12, 10, 9))
    t = await _tokens(client, city, s)
    image = await upload(client, t["other_admin"], JPEG, "现场.jpg", "image/jpeg")
    made = await _call(client, "POST", "/practices", t["other_admin"], expect=201,
                       title="“支部+网格”联建", body="做法与成效", images=[image])
    assert made["unit_id"] == s["other_unit"] and made["zone_id"] == s["zone"] and made["year"] == 2026
    assert made["reads"] == 0 and made["featured_at"] is None
    own = await _call(client, "POST", "/practices", t["duty"], expect=201, title="轮值经验", body="做法",
                      unit_id=s["rotation"].unit_id)
    # for another unit (another zone's unit too): refused; members and staff do not publish
    for token, unit in ((t["zone2_admin"], s["other_unit"]), (t["other_admin"], s["rotation"].unit_id)):
        assert (await _call(client, "POST", "/practices", token, expect=403, title="冒名", body="x",
                            unit_id=unit))["code"] == "forbidden"
    await _call(client, "POST", "/practices", t["member"], expect=403, title="个人", body="x")
    await _call(client, "POST", "/practices", t["staff"], expect=403, title="工委", body="x")
    pdf = await upload(client, t["other_admin"], PDF, "a.pdf", "application/pdf")
    bad = await _call(client, "POST", "/practices", t["other_admin"], expect=422, title="t", body="b",
                      images=[pdf])
    assert bad["code"] == "not_an_image"
    link = {"name": "外链.png", "url": "https://example.com/a.png", "content_type": "image/png"}
    bad = await _call(client, "POST", "/practices", t["other_admin"], expect=422, title="t", body="b",
                      images=[link])   # the schema says a photo is a stored file; a link is refused by it
    assert bad["code"] == "invalid_request" and bad["errors"][0]["loc"][:3] == ["body", "images", 0]
    theirs = await _call(client, "POST", "/practices", t["zone2_admin"], expect=201, title="二区经验", body="b")

    everything = await _call(client, "GET", "/practices", t["zone2_member"])
    assert [p["id"] for p in everything["items"]] == [theirs["id"], own["id"], made["id"]]
    zone1 = await _call(client, "GET", f"/practices?zone_id={s['zone']}", t["member"])
    assert [p["id"] for p in zone1["items"]] == [own["id"], made["id"]]
    unit = await _call(client, "GET", f"/practices?unit_id={s['other_unit']}&year=2026", t["member"])
    assert [p["id"] for p in unit["items"]] == [made["id"]] and unit["items"][0]["images"] == 1
    assert (await _call(client, "GET", "/practices?year=2025", t["member"]))["items"] == []
    first = await _call(client, "GET", "/practices?limit=2", t["member"])
    rest = await _call(client, "GET", f"/practices?limit=2&cursor={first['next_cursor']}", t["member"])
    assert [p["id"] for p in first["items"] + rest["items"]] == [theirs["id"], own["id"], made["id"]]
    # its image is served to anyone who may read practices (another zone's member)
    r = await client.get(image["url"], headers=bearer(t["zone2_member"]))
    assert r.status == 200
    assert (await _call(client, "GET", "/practices/999999", t["member"], expect=404))["code"] == "practice_not_found"


async def test_a_read_counts_once_per_member_under_concurrent_reads(
        client: TestClient[Any, Any], city: City) -> None:
    s = await _quarter_city(client, city, shanghai(2026, 12, 10, 9))
    t = await _tokens(client, city, s)
    made = await _call(client, "POST", "/practices", t["other_admin"], expect=201, title="经验", body="做法")
    path = f"/api/v1/practices/{made['id']}"
    readers = [await login(client, m) for m in city.members[s["other_unit"]]]  # 3 members
    answers = await asyncio.gather(*(client.get(path, headers=bearer(token))
                                     for token in readers for _ in range(6)))
    assert [a.status for a in answers] == [200] * 18
    assert await PracticeRead.filter(practice_id=made["id"]).count() == 3
    assert (await _call(client, "GET", path[7:], readers[0]))["reads"] == 3
    listed = await _call(client, "GET", "/practices", t["staff"])
    assert listed["items"][0]["reads"] == 3      # the list reads without counting


async def test_featuring_sends_one_notice_to_every_zone_once_and_is_audited(
        client: TestClient[Any, Any], city: City, settings: Settings) -> None:
    s = await _quarter_city(client, city, shanghai(2026, 12, 10, 9))
    t = await _tokens(client, city, s)
    image = await upload(client, t["other_admin"], PNG, "p.png", "image/png")
    made = await _call(client, "POST", "/practices", t["other_admin"], expect=201, title="好经验",
                       body="做法", images=[image])
    path = f"/practices/{made['id']}/feature"
    liaison_refused = await _call(client, "POST", path, t["other_admin"], expect=403)
    assert liaison_refused["code"] == "forbidden"
    first, second = await asyncio.gather(
        client.post("/api/v1" + path, headers=bearer(t["staff"])),
        client.post("/api/v1" + path, headers=bearer(t["staff"])))
    assert sorted([first.status, second.status]) == [200, 409]
    refused = await (second if second.status == 409 else first).json()
    featured = await (first if first.status == 200 else second).json()
    assert refused["code"] == "practice_already_featured" and refused["notice_id"] == featured["notice_id"]
    again = await _call(client, "POST", path, t["staff"], expect=409)
    assert again["code"] == "practice_already_featured"
    notices = await Notice.filter(ref_type="practice", ref_id=made["id"])
    assert [n.id for n in notices] == [featured["notice_id"]]

    await run_workers(settings)
    reached = set(await InboxItem.filter(notice_id=featured["notice_id"])
                  .values_list("unit__zone_id", flat=True))
    assert reached == {z.id for z in city.zones}
    everyone = await Member.filter(unit_id__isnull=False, is_active=True).count()
    assert await InboxItem.filter(notice_id=featured["notice_id"]).count() == everyone
    inbox = await _call(client, "GET", "/me/notices", t["zone2_member"])
    entry = next(i for i in inbox["items"] if i["notice_id"] == featured["notice_id"])
    assert (entry["ref_type"], entry["ref_id"]) == ("practice", made["id"])
    assert entry["attachments"][0]["url"] == image["url"]
    audit = await AuditEntry.filter(action="practice.featured", target_id=made["id"])
    assert len(audit) == 1 and audit[0].detail["notice_id"] == featured["notice_id"]


# -- the ledger and the evaluation ---------------------------------------------------------------

async def test_the_ledger_links_records_and_lists_practice_the_evaluation_scores_it(
        client: TestClient[Any, Any], city: City) -> None:
    s = await _quarter_city(client, city, shanghai(2026, 12, 10, 9))
    recorded = await _activity(s, s["rotation"], kind="party_lesson", day=(2026, 12, 12))
    bare = await _activity(s, s["rotation"], day=(2026, 12, 13))
    travel_to(shanghai(2026, 12, 14, 9))
    t = await _tokens(client, city, s)
    photos = [await upload(client, t["duty"], c, n, ct) for c, n, ct in
              ((PNG, "1.png", "image/png"), (JPEG, "2.jpg", "image/jpeg"))]
    await _call(client, "PUT", f"/activities/{recorded.id}/record", t["duty"], minutes="纪要", photos=photos)
    featured = await _call(client, "POST", "/practices", t["other_admin"], expect=201, title="甲", body="b")
    await _call(client, "POST", "/practices", t["other_admin"], expect=201, title="乙", body="b")
    duty_unit = s["rotation"].unit_id
    await _call(client, "POST", "/practices", t["duty"], expect=201, title="丙", body="b")
    await _call(client, "POST", f"/practices/{featured['id']}/feature", t["staff"])
    for token in (t["member"], t["zone2_member"], t["member"]):
        await _call(client, "GET", f"/practices/{featured['id']}", token)
    only = await _call(client, "GET", "/practices?featured=true", t["member"])
    assert [p["id"] for p in only["items"]] == [featured["id"]]
    assert len((await _call(client, "GET", "/practices?featured=false", t["member"]))["items"]) == 2

    book = await _call(client, "GET", f"/ledger?year=2026&zone_id={s['zone']}", t["staff"])
    sections = {x["key"]: x for x in book["sections"]}
    rows = {r["activity_id"]: r for r in sections["activities"]["rows"]}
    assert (rows[recorded.id]["minutes"], rows[recorded.id]["photos"]) == (True, 2)
    assert rows[recorded.id]["record"] == f"/api/v1/activities/{recorded.id}/record"
    assert (rows[bare.id]["minutes"], rows[bare.id]["photos"], rows[bare.id]["record"]) == (False, 0, None)
    assert sections["activities"]["totals"]["photos"] == 2
    practice = sections["practices"]
    assert practice["title"] == "经验交流"
    by_unit = {r["unit_id"]: r for r in practice["rows"]}
    assert len(by_unit) == len(city.units[s["zone"]])          # every unit of the zone, a row each
    assert {k: by_unit[s["other_unit"]][k] for k in ("published", "featured", "reads")} == \
        {"published": 2, "featured": 1, "reads": 2}
    assert by_unit[s["other_unit"]]["titles"] == "★甲；乙"
    assert by_unit[duty_unit]["published"] == 1 and by_unit[duty_unit]["featured"] == 0
    assert {k: practice["totals"][k] for k in ("published", "featured", "reads")} == \
        {"published": 3, "featured": 1, "reads": 2}
    own = await _call(client, "GET", f"/ledger?year=2026&unit_id={s['other_unit']}", t["other_admin"])
    assert [r["unit_id"] for r in {x["key"]: x for x in own["sections"]}["practices"]["rows"]] == [s["other_unit"]]

    r = await client.get(f"/api/v1/ledger?year=2026&zone_id={s['zone']}&format=xlsx", headers=bearer(t["staff"]))
    assert r.status == 200
    wb = load_workbook(io.BytesIO(await r.read()))
    sheet = wb["经验交流"]
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[0] == ["网络区", "单位", "发布", "工委推介", "阅读（人）", "题目"]
    assert values[-1][:5] == ["合计", None, 3, 1, 2]
    header = [c.value for c in wb["活动与参与"][1]]
    record_row = next(row for row in wb["活动与参与"].iter_rows(values_only=True)
                      if row[3] == recorded.title and row[header.index("活动照片")] == 2)
    assert record_row[header.index("活动纪要")] == "是"

    # the evaluation: featured counts whole, published half, nothing 0 (per unit)
    result = await _call(client, "GET", "/evaluation/2026", t["staff"])
    units = {u["id"]: u["metrics"]["practice"] for u in result["units"]}
    assert units[s["other_unit"]]["value"] == 1.0 and units[duty_unit]["value"] == 0.5
    silent = next(u.id for u in city.units[s["zone"]] if u.id not in (s["other_unit"], duty_unit))
    assert units[silent]["value"] == 0.0
    assert units[s["other_unit"]]["evidence"][0]["featured"] == 1
    zone = next(z for z in result["zones"] if z["id"] == s["zone"])["metrics"]["practice"]
    assert zone["value"] == round((1.0 + 0.5) / len(city.units[s["zone"]]), 4)
    assert await Practice.filter(year=2026).count() == 3
