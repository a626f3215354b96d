"""The work ledger against a year whose answer is known, its XLSX opened with openpyxl, and the
year-end evaluation against a hand computation."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from openpyxl import load_workbook

from models.activities import Activity, ActivityStatus, Checkin
from models.funds import Campaign, CampaignKind, Channel, Contribution, ContributionStatus
from models.governance import Evaluation, PlanState, WorkPlan
from models.ledger import Direction, EntryCategory, FundEntry
from models.notices import InboxItem, Notice, NoticeKind
from models.org import Member, Position, Rotation, Unit
from models.supervision import Assignment, SupervisionItem
from services import clock, rotations
from tests.support import City, bearer, staff_login, wechat_login


def shanghai(*args: int) -> datetime:
    return datetime(*args, tzinfo=clock.SHANGHAI)  # type: ignore[misc]


async def _activity(zone_id: int, rotation: Rotation | None, kind: str, day: datetime, *,
                    checked_in: int, cancelled: bool = False) -> Activity:
    return await Activity.create(
        zone_id=zone_id, organiser_unit_id=rotation.unit_id if rotation else None,
        rotation_id=rotation.id if rotation else None, created_by_id=1, kind=kind, title=kind,
        starts_at=day, ends_at=day + timedelta(hours=2), signup_opens_at=day - timedelta(days=3),
        signup_closes_at=day, checkin_opens_at=day - timedelta(hours=1),
        checkin_closes_at=day + timedelta(hours=3), checked_in=checked_in, confirmed=checked_in,
        status=ActivityStatus.CANCELLED if cancelled else ActivityStatus.ACTIVE, checkin_secret="s")


async def _checkins(activity: Activity, members: list[Member]) -> None:
    for m in members:
        await Checkin.create(activity_id=activity.id, member_id=m.id, unit_id=m.unit_id,
                             method="venue_code", checked_in_at=activity.starts_at)


async def known_year(city: City) -> dict[str, Any]:
    """Zone 1's Q4 duty unit A and another unit B, zone 2's unit C, and a year of rows:
    - zone 1, Q4: a party lesson held (A's secretary and one more of A, one of B), a party
      activity held (two of B), one cancelled, a handover meeting still to come; the plan
      submitted on day 5 and filed;
    - zone 2, Q3: a party lesson held (one of C);
    - an item due in the year for A (submitted in time) and B (not submitted);
    - a notice needing acknowledgement to A's four people: 3 read, 2 acknowledged;
    - A's two members paid 100 and 200 fen; zone 1's fund got 10,000 fen from its duty unit."""
    clock.reset_travel()
    clock.travel(shanghai(2026, 11, 20, 9) - clock.now())
    await rotations.generate_rotations(year=2026)
    z1, z2 = city.zones[0].id, city.zones[1].id
    q4 = await Rotation.get(zone_id=z1, year=2026, quarter=4)
    q3z2 = await Rotation.get(zone_id=z2, year=2026, quarter=3)
    a = await Unit.get(id=q4.unit_id)
    b = next(u for u in city.units[z1] if u.id != a.id)
    c = city.units[z2][0]
    ma, mb, mc = city.members[a.id], city.members[b.id], city.members[c.id]
    await Member.filter(id=ma[0].id).update(position=Position.SECRETARY)
    lesson = await _activity(z1, q4, "party_lesson", shanghai(2026, 10, 10, 9), checked_in=3)
    await _checkins(lesson, [ma[0], ma[1], mb[0]])
    party = await _activity(z1, q4, "party_activity", shanghai(2026, 11, 1, 9), checked_in=2)
    await _checkins(party, [mb[0], mb[1]])
    await _activity(z1, q4, "volunteer", shanghai(2026, 11, 5, 9), checked_in=0, cancelled=True)
    await _activity(z1, q4, "handover_meeting", shanghai(2026, 12, 20, 9), checked_in=0)
    other = await _activity(z2, q3z2, "party_lesson", shanghai(2026, 8, 10, 9), checked_in=1)
    await _checkins(other, [mc[0]])
    await WorkPlan.create(rotation_id=q4.id, zone_id=z1, unit_id=a.id, state=PlanState.FILED, version=1,
                          submitted_version=1, submitted_at=q4.starts_at + timedelta(days=5),
                          decided_at=q4.starts_at + timedelta(days=6), filed_version=1)
    item = await SupervisionItem.create(title="整改", due_at=shanghai(2026, 11, 15, 18), ladder={},
                                        created_by_id=city.committee.id, created_at=shanghai(2026, 11, 1))  # type: ignore[union-attr]
    await Assignment.create(item_id=item.id, unit_id=a.id, zone_id=z1, assigned_at=item.created_at,
                            state="submitted", submitted_at=shanghai(2026, 11, 14, 10))
    await Assignment.create(item_id=item.id, unit_id=b.id, zone_id=z1, assigned_at=item.created_at)
    notice = await Notice.create(kind=NoticeKind.NOTICE, title="通知", require_ack=True,
                                 created_at=shanghai(2026, 11, 2, 9))
    people = [city.admins[a.id], *ma]
    for i, m in enumerate(people):
        await InboxItem.create(notice_id=notice.id, member_id=m.id, unit_id=a.id,
                               delivered_at=notice.created_at,
                               read_at=notice.created_at if i < 3 else None,
                               acked_at=notice.created_at if i < 2 else None)
    drive = await Campaign.create(kind=CampaignKind.DONATION, title="捐款", ends_at=shanghai(2026, 12, 1),
                                  created_by_id=city.committee.id)  # type: ignore[union-attr]
    for m, fen in ((ma[0], 100), (ma[1], 200)):
        await Contribution.create(campaign_id=drive.id, member_id=m.id, unit_id=a.id, zone_id=z1,
                                  channel=Channel.WECHAT, status=ContributionStatus.PAID, amount_fen=fen,
                                  paid_at=shanghai(2026, 11, 3, 9))
    await FundEntry.create(zone_id=z1, direction=Direction.INCOME, category=EntryCategory.DUTY_UNIT,
                           unit_id=a.id, amount_fen=10_000, description="轮值单位", occurred_on=shanghai(2026, 10, 2).date(),
                           recorded_by_id=city.committee.id, booked_at=shanghai(2026, 10, 2, 9))  # type: ignore[union-attr]
    return {"z1": z1, "z2": z2, "a": a.id, "b": b.id, "c": c.id, "q4": q4.id}


def _section(book: dict[str, Any], key: str) -> dict[str, Any]:
    return next(s for s in book["sections"] if s["key"] == key)


def _row(section: dict[str, Any], **match: Any) -> dict[str, Any]:
    [row] = [r for r in section["rows"] if all(r.get(k) == v for k, v in match.items())]
    return dict(row)


async def _get(client: TestClient[Any, Any], token: str, path: str, expect: int = 200) -> Any:
    r = await client.get("/api/v1" + path, headers=bearer(token))
    assert r.status == expect, await r.text()
    return await r.json() if r.content_type == "application/json" else await r.read()


async def test_the_ledger_of_a_known_year(client: TestClient[Any, Any], city: City) -> None:
    k = await known_year(city)
    staff = await staff_login(client)
    book = await _get(client, staff, "/ledger?year=2026")
    assert book["city"] | {"zones_outside_size": None} == {
        "party_lessons_held": 2, "party_lesson_attendee_times": 4, "activities_held": 3,
        "attendee_times": 6, "leaders": 1, "leaders_attending": 1, "leader_participation": 1.0,
        "zones_outside_size": None}
    assert [z["units"] for z in book["city"]["zones_outside_size"]] == [4, 4]  # zones of 4: flagged
    units = _section(book, "units")
    assert _row(units, unit_id=k["a"]) | {"zone": "", "unit": ""} == {
        "zone": "", "unit": "", "zone_id": k["z1"], "unit_id": k["a"], "members": 4, "attending": 2,
        "participation": 0.5, "attendee_times": 2, "leaders": 1, "leaders_attending": 1,
        "leader_participation": 1.0, "assigned": 1, "on_time": 1, "on_time_share": 1.0,
        "delivered": 4, "read": 3, "read_share": 0.75, "ack_required": 4, "acked": 2, "ack_share": 0.5,
        "paid_fen": 300, "payers": 2}
    assert units["totals"]["attendee_times"] == 6 and units["totals"]["assigned"] == 2
    assert units["totals"]["on_time_share"] == 0.5 and units["totals"]["zone"] == "合计"
    q4 = _row(_section(book, "rotations"), rotation_id=k["q4"])
    assert (q4["party_lesson"], q4["party_activity"], q4["handover_meeting"]) == (True, True, False)
    assert (q4["plan"], q4["plan_on_time"], q4["activities_held"], q4["attendee_times"]) == ("已备案", True, 2, 5)
    activities = _section(book, "activities")
    assert [r["status"] for r in activities["rows"]] == ["已开展", "已开展", "已开展", "已取消", "待开展"]
    assert activities["totals"]["checked_in"] == 6 and _row(activities, kind="党课", zone_id=k["z1"])["leaders"] == 1
    zone1 = _row(_section(book, "zones"), zone_id=k["z1"])
    assert (zone1["activities_held"], zone1["attendee_times"], zone1["on_time_share"], zone1["income_fen"]) == \
        (2, 5, 0.5, 10_000)
    # One zone, one unit.
    only_z2 = await _get(client, staff, f"/ledger?year=2026&zone_id={k['z2']}")
    assert only_z2["city"]["party_lessons_held"] == 1
    assert {r["zone_id"] for r in _section(only_z2, "activities")["rows"]} == {k["z2"]}
    mine = await _get(client, await wechat_login(client, city.admins[k["a"]].openid or ""),
                      f"/ledger?year=2026&unit_id={k['a']}")
    assert [r["unit_id"] for r in _section(mine, "units")["rows"]] == [k["a"]]
    assert "zones" not in {s["key"] for s in mine["sections"]}


async def test_who_may_read_which_ledger(client: TestClient[Any, Any], city: City) -> None:
    k = await known_year(city)
    admin_b = await wechat_login(client, city.admins[k["b"]].openid or "")
    await _get(client, admin_b, f"/ledger?year=2026&unit_id={k['a']}", expect=403)
    await _get(client, admin_b, "/ledger?year=2026", expect=403)
    await _get(client, admin_b, f"/ledger?year=2026&unit_id={k['b']}")
    member = await wechat_login(client, city.members[k["b"]][0].openid or "")
    await _get(client, member, f"/ledger?year=2026&unit_id={k['b']}", expect=403)
    staff = await staff_login(client)
    await _get(client, staff, "/ledger?year=2026&zone_id=999999", expect=404)
    await _get(client, staff, f"/ledger?year=2026&zone_id={k['z2']}&unit_id={k['a']}", expect=400)


async def test_the_workbook_has_a_sheet_per_section_with_totals(client: TestClient[Any, Any], city: City) -> None:
    await known_year(city)
    staff = await staff_login(client)
    r = await client.get("/api/v1/ledger?year=2026&format=xlsx", headers=bearer(staff))
    assert r.status == 200 and r.content_type.endswith("spreadsheetml.sheet")
    assert "attachment" in r.headers["Content-Disposition"]
    wb = load_workbook(io.BytesIO(await r.read()))
    assert wb.sheetnames == ["概况", "网络区汇总", "轮值与计划", "工作例会", "活动与参与", "成员单位",
                             "经验交流", "督办落实", "网络区经费", "年终考核（网络区）", "年终考核（单位）"]
    overview = {row[0]: row[1] for row in wb["概况"].iter_rows(values_only=True)}
    assert overview["全年党课（场）"] == 2 and overview["党课参加（人次）"] == 4
    units = list(wb["成员单位"].iter_rows(values_only=True))
    header, totals = units[0], units[-1]
    assert header[:3] == ("网络区", "单位", "党员数") and "缴纳/捐款（元）" in header
    assert totals[0] == "合计" and totals[header.index("参加人次")] == 6
    assert totals[header.index("缴纳/捐款（元）")] == 3.0      # 300 fen, shown in yuan
    funds = list(wb["网络区经费"].iter_rows(values_only=True))
    assert funds[-1][0] == "合计" and funds[-1][funds[0].index("收入合计（元）")] == 100.0


async def test_scores_follow_the_rubric_by_hand(client: TestClient[Any, Any], city: City) -> None:
    k = await known_year(city)
    staff = await staff_login(client)
    result = await _get(client, staff, "/evaluation/2026")
    assert result["stored"] is False
    a = next(u for u in result["units"] if u["id"] == k["a"])
    values = {m: v["value"] for m, v in a["metrics"].items()}
    # A's only rotation (Q4) has not ended: no "three ones" of its own yet, left out.
    assert values == {"compliance": None, "attendance": 0.5, "supervision": 1.0, "acknowledgement": 0.5,
                      "funds": 0.5, "practice": 0.0, "plans": 1.0}
    # Default weights 25/20/20/10/10/5/10, compliance left out: 100 x 50 / 75.
    assert a["score"] == round(100 * (20 * .5 + 20 * 1 + 10 * .5 + 10 * .5 + 5 * 0 + 10 * 1) / 75, 2) == 66.67
    assert [e["ref_id"] for e in a["metrics"]["supervision"]["evidence"]] == \
        [e["ref_id"] for e in a["metrics"]["supervision"]["evidence"] if e["ok"]]
    ranks = [u["rank"] for u in result["units"]]
    assert ranks == sorted(ranks) and ranks[0] == 1
    # Last year's result is kept when this year's rubric changes.
    last = await client.post("/api/v1/evaluation/2025/compute", headers=bearer(staff))
    assert last.status == 200
    kept = (await Evaluation.get(year=2025)).result
    r = await client.put("/api/v1/evaluation/2026/rubric", headers=bearer(staff),
                         json={"weights": {"attendance": 50, "supervision": 50}})
    changed = await r.json()
    assert r.status == 200 and changed["stored"] is True
    a2 = next(u for u in changed["units"] if u["id"] == k["a"])
    assert a2["score"] == 75.0 and changed["weights"]["compliance"] == 0
    assert (await Evaluation.get(year=2025)).result == kept
    assert (await _get(client, staff, "/evaluation/2026"))["weights"]["attendance"] == 50
    duty = await wechat_login(client, city.admins[k["a"]].openid or "")
    await _get(client, duty, "/evaluation/2026", expect=403)
    r = await client.put("/api/v1/evaluation/2026/rubric", headers=bearer(duty), json={"weights": {"plans": 1}})
    assert r.status == 403
