"""Demo year, evidence and good practice: minutes kept for most activities held (photos are left
to real use: they are uploaded files), a dozen units' experiences published through the year,
two of them featured by the committee with the notice that took each to every zone, and the
members who read them (each once)."""

from __future__ import annotations

from datetime import timedelta

from models.activities import Activity, ActivityStatus
from models.notices import Notice, NoticeKind
from models.practices import Practice, PracticeRead
from models.records import ActivityRecord
from services import clock
from services.demo_notices import pushed_and_reminded
from services.demo_year import PendingNotice, Recipient, Year, fan_out, insert

MINUTES = ["会议传达学习了上级有关精神，{n} 名党员参加，围绕主题进行了交流发言，明确了下一步工作安排。",
           "活动按计划开展，{n} 名党员参加；成员单位代表分享了做法，会后形成任务清单并明确责任单位。"]
TITLES = ["“支部+网格”联建联创，把服务送到群众家门口", "用好“三会一课”，让党课讲到党员心里",
          "以志愿服务为纽带，推动网络区共驻共建", "党建引领业务提质增效的几点做法",
          "建强青年理论学习小组的实践", "把“三个一”抓在平时、落在实处",
          "结对共建破解基层治理难题", "数字化台账让党建工作看得见、可追溯",
          "轮值单位如何带动成员单位共同参与", "主题党日“订单式”服务的探索",
          "以红色资源为依托开展沉浸式党性教育", "机关党员下沉社区的长效机制"]
BODY = ("一、主要做法：坚持问题导向，结合单位实际制定方案，明确责任分工。\n"
        "二、取得成效：党员参与率明显提升，群众满意度不断提高。\n"
        "三、经验启示：抓党建要与中心工作同谋划、同部署、同落实。")
FEATURED = 2


async def load(y: Year) -> None:
    await _records(y)
    await _practices(y)


async def _records(y: Year) -> None:
    """Minutes for about three in four activities held, written within two days of each."""
    held = await Activity.filter(status=ActivityStatus.ACTIVE, zone_id__isnull=False, checked_in__gt=0,
                                 ends_at__lte=y.now).order_by("id")
    rows = []
    for a in held:
        if y.rng.random() >= 0.75:
            continue
        at = min(a.ends_at + timedelta(hours=y.rng.uniform(2, 48)), y.now)
        rows.append(ActivityRecord(
            activity_id=a.id, minutes=y.rng.choice(MINUTES).format(n=a.checked_in), photos=[],
            recorded_by_id=y.admin_of.get(a.organiser_unit_id) if a.organiser_unit_id else y.admin_id,
            recorded_unit_id=a.organiser_unit_id, created_at=at, updated_at=at))
    await insert(ActivityRecord, rows)


async def _practices(y: Year) -> None:
    """A dozen units publish through the year; the first two are featured three days later."""
    units = [u for z in y.zones for u in y.units[z.id][:2]]
    chosen = y.rng.sample(units, min(len(TITLES), len(units)))
    rows = []
    for n, (unit, title) in enumerate(zip(chosen, TITLES, strict=False)):
        at = y.in_past(0.05 + 0.8 * n / len(TITLES))
        featured = at + timedelta(days=3) if n < FEATURED and at + timedelta(days=3) <= y.now else None
        rows.append(Practice(unit_id=unit.id, zone_id=unit.zone_id, year=at.astimezone(clock.SHANGHAI).year,
                             title=title, body=BODY, images=[], author_id=y.admin_of.get(unit.id),
                             published_at=at, featured_at=featured,
                             featured_by_id=y.admin_id if featured else None))
    ids = await insert(Practice, rows)
    everyone = sorted(y.unit_of)
    reads = []
    for practice_id, p in zip(ids, rows, strict=True):
        for member_id in y.sample(everyone, y.rng.randint(20, 300 if p.featured_at else 80)):
            at = p.published_at + timedelta(hours=y.rng.expovariate(1 / 72))
            if at <= y.now:
                reads.append(PracticeRead(practice_id=practice_id, member_id=member_id, read_at=at))
        if p.featured_at is not None:
            _featured_notice(y, practice_id, p)
    await insert(PracticeRead, reads)


def _featured_notice(y: Year, practice_id: int, p: Practice) -> None:
    """As services.practices.feature sends it: to every zone, referring back to the practice."""
    zones = [z.id for z in y.zones]
    people = sorted(m for m, u in y.unit_of.items() if y.unit_zone.get(u) in set(zones))
    notice = PendingNotice(fields={
        "kind": NoticeKind.NOTICE, "title": f"经验交流：{p.title}"[:128], "created_at": p.featured_at,
        "body": f"机关工委推介《{p.title}》，请各网络区成员单位学习借鉴。\n\n{p.body}",
        "audience": {"zone_ids": zones}, "sender_id": y.admin_id, "ref_type": "practice",
        "ref_id": practice_id},
        recipients=[Recipient(m, y.unit_of[m], read_at=y.read_time(p.featured_at, 0.7))  # type: ignore[arg-type]
                    for m in people])
    fan_out(notice)
    pushed_and_reminded(y, notice)
    y.notices.append(notice)


async def link(y: Year) -> None:
    """Each featured practice names the notice that took it to every zone (written by then)."""
    for notice_id, practice_id in await Notice.filter(ref_type="practice", kind=NoticeKind.NOTICE) \
            .values_list("id", "ref_id"):
        await Practice.filter(id=practice_id).update(notice_id=notice_id)
