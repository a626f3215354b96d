"""Demo year, activities: each zone's duty unit holds the "three ones" every quarter (handover
meeting, party lesson, party-building activity) and now and then a volunteer or culture
activity; past ones with sign-ups, waitlists, check-ins and walk-ins, upcoming ones open for
sign-up. One zone has no party lesson this quarter (the compliance view shows the gap), one
upcoming activity is full with a waitlist, one was cancelled. The counters on each activity are
counted from the rows written here."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from models.activities import (
    Activity,
    ActivityKind,
    ActivityStatus,
    Checkin,
    CheckinMethod,
    Signup,
    SignupStatus,
)
from models.org import Zone
from services import clock
from services.demo_year import BATCH, Year, insert

K = ActivityKind
GAP_ZONE = 3      # 第四网络区: no party lesson this quarter
FULL_ZONE = 0     # 第一网络区: its next activity is full, with a waitlist
CANCEL_ZONE = 6   # 第七网络区: a badminton match it called off
LESSONS = ["学习贯彻党的二十大精神", "以高质量党建引领高质量发展", "弘扬伟大建党精神",
           "加强作风建设 提升服务效能", "深入学习习近平新时代中国特色社会主义思想", "从党史中汲取奋进力量",
           "新时代机关党员的使命担当", "全面从严治党永远在路上"]
DAYS = ["参观红色教育基地", "重温入党誓词", "“我为群众办实事”实践活动", "党史知识竞答",
        "走访困难党员", "观看主题教育影片", "廉政警示教育", "“党建+业务”经验交流"]
EXTRAS = [(K.VOLUNTEER, "志愿服务：社区文明创建"), (K.CULTURE_SPORTS, "“书香机关”读书分享会"),
          (K.VOLUNTEER, "志愿服务：关爱空巢老人"), (K.OTHER, "周五论坛：数字政府建设"),
          (K.CULTURE_SPORTS, "网络区乒乓球友谊赛"), (K.VOLUNTEER, "城乡支部结对共建")]
PLACES = ["市党员教育中心报告厅", "市民中心多功能厅", "红色教育基地", "新时代文明实践中心"]


@dataclass
class Plan:
    zone: Zone
    kind: ActivityKind
    title: str
    description: str
    place: str
    starts_at: datetime
    ends_at: datetime
    capacity: int
    walk_ins: bool
    created_by_id: int
    organiser_unit_id: int | None
    rotation_id: int | None
    lat: float
    lng: float
    radius_m: int | None = None
    overbooked: int = 0   # upcoming: this many more sign-ups than seats (waitlisted)
    cancelled_at: datetime | None = None
    signups: list[dict] = field(default_factory=list)
    checkins: list[dict] = field(default_factory=list)


def _local(start: datetime, end: datetime, f: float, hour: int, minute: int = 0) -> datetime:
    """The day at fraction f of [start, end), at the given Asia/Shanghai time of day."""
    day = (start + (end - start) * f).astimezone(clock.SHANGHAI).date()
    return datetime(day.year, day.month, day.day, hour, minute,
                    tzinfo=clock.SHANGHAI).astimezone(UTC)


async def load(y: Year) -> None:
    plans: list[Plan] = []
    for zi, zone in enumerate(y.zones):
        plans += _zone_plans(y, zi, zone)
    for plan in plans:
        _fill(y, plan)
    activities = [Activity(
        zone_id=p.zone.id, organiser_unit_id=p.organiser_unit_id, rotation_id=p.rotation_id,
        created_by_id=p.created_by_id, kind=p.kind, title=p.title, description=p.description,
        place=p.place, lat=p.lat, lng=p.lng, radius_m=p.radius_m, starts_at=p.starts_at,
        ends_at=p.ends_at, capacity=p.capacity, walk_ins=p.walk_ins, waitlist=True,
        signup_opens_at=_opens(y, p), signup_closes_at=p.starts_at - timedelta(hours=1),
        checkin_opens_at=p.starts_at - timedelta(minutes=30), checkin_closes_at=p.ends_at,
        audience={"zone_ids": [p.zone.id]},
        status=ActivityStatus.CANCELLED if p.cancelled_at else ActivityStatus.ACTIVE,
        cancelled_at=p.cancelled_at, checkin_secret=secrets.token_urlsafe(32),
        confirmed=sum(s["status"] is SignupStatus.CONFIRMED for s in p.signups),
        waitlisted=sum(s["status"] is SignupStatus.WAITLISTED for s in p.signups),
        queue_seq=sum(s["status"] is SignupStatus.WAITLISTED for s in p.signups),
        checked_in=len(p.checkins), created_at=_opens(y, p) - timedelta(days=1))
        for p in plans]
    ids = await insert(Activity, activities)
    await Signup.bulk_create([Signup(activity_id=i, **s) for p, i in zip(plans, ids, strict=True)
                              for s in p.signups], batch_size=BATCH)
    await Checkin.bulk_create([Checkin(activity_id=i, **c) for p, i in zip(plans, ids, strict=True)
                               for c in p.checkins], batch_size=BATCH)
    for plan, activity_id in zip(plans, ids, strict=True):
        if plan.cancelled_at is not None:
            y.system(at=plan.cancelled_at, topic="activity.cancelled",
                     member_ids=[s["member_id"] for s in plan.signups
                                 if s["status"] is not SignupStatus.CANCELLED],
                     title=f"活动取消：{plan.title}", body="场馆临时检修，活动取消，改期另行通知。",
                     ref_type="activity", ref_id=activity_id)


def _opens(y: Year, p: Plan) -> datetime:
    return min(p.starts_at - timedelta(days=10), y.now - timedelta(days=1))


def _zone_plans(y: Year, zi: int, zone: Zone) -> list[Plan]:
    rng = y.rng
    names = {u.id: u.name for us in y.units.values() for u in us}
    lat, lng = 30.25 + 0.02 * zi, 120.15 + 0.015 * zi
    plans: list[Plan] = []

    def plan(kind: ActivityKind, title: str, starts: datetime, hours: float, capacity: int, *,
             walk_ins: bool, description: str = "", place: str | None = None) -> Plan:
        rotation = y.rotation_at(zone.id, starts)
        # A duty unit creates activities of its own quarter only: those of a rotation not yet
        # begun are the liaison's.
        begun = rotation is not None and rotation.starts_at <= y.now
        unit_id = rotation.unit_id if rotation is not None and begun else None
        p = Plan(zone=zone, kind=kind, title=title, description=description,
                 place=place or rng.choice(PLACES), starts_at=starts,
                 ends_at=starts + timedelta(hours=hours), capacity=capacity, walk_ins=walk_ins,
                 created_by_id=y.admin_of[unit_id] if unit_id else y.liaison_of[zone.id],
                 organiser_unit_id=unit_id, rotation_id=rotation.id if rotation else None,
                 lat=lat + rng.uniform(-0.01, 0.01), lng=lng + rng.uniform(-0.01, 0.01))
        plans.append(p)
        return p

    people = len(y.zone_members(zone.id))
    for year, q in y.quarters():
        r = y.rotation(zone.id, year, q)
        duty = names[r.unit_id]
        before = y.rotation_at(zone.id, r.starts_at - timedelta(seconds=1))
        outgoing = names[before.unit_id] if before else duty
        current = (year, q) == (y.year, y.quarter)
        plan(K.HANDOVER_MEETING, f"{zone.name}{year}年第{q}季度轮值交接会",
             _local(r.starts_at, r.ends_at, 0.03, 14, 30), 2, 40, walk_ins=False,
             place=f"{duty}党员活动室",
             description=f"{outgoing}汇报上季度轮值工作，{duty}部署本季度工作。")
        if not (current and zi == GAP_ZONE):
            lesson = plan(K.PARTY_LESSON, f"专题党课：{LESSONS[(zi + q) % len(LESSONS)]}",
                          _local(r.starts_at, r.ends_at, 0.35, 9), 2.5,
                          min(rng.choice([150, 200, 240, 300]), people * 6 // 10), walk_ins=True,
                          description=f"{duty}书记讲授，网络区各单位党员参加。")
            lesson.radius_m = 500
        plan(K.PARTY_ACTIVITY, f"主题党日：{DAYS[(2 * zi + q) % len(DAYS)]}",
             _local(r.starts_at, r.ends_at, 0.62, 9, 30), 3, rng.randint(6, 12) * 10,
             walk_ins=False, description=f"{duty}组织，网络区各单位党员报名参加。")
        kind, title = EXTRAS[(zi + q) % len(EXTRAS)]
        if current:  # always something to sign up for: a few days from now
            starts = _local(y.now, y.now, 0, 9, 30) + timedelta(days=3 + zi % 4)
            nxt = plan(kind, title, starts, 3, 30 if zi == FULL_ZONE else rng.randint(4, 8) * 10,
                       walk_ins=kind is not K.OTHER)
            nxt.overbooked = 6 if zi == FULL_ZONE else 0
            if zi == CANCEL_ZONE:
                called_off = plan(K.CULTURE_SPORTS, "网络区羽毛球友谊赛", starts + timedelta(days=2),
                                  3, 40, walk_ins=False, place="市全民健身中心")
                called_off.cancelled_at = y.now - timedelta(hours=20)
            nxt.description = f"{zone.name}党员志愿者、文体爱好者报名参加。"
        elif (zi + q) % 2 == 0:
            plan(kind, title, _local(r.starts_at, r.ends_at, 0.8, 14), 3, rng.randint(4, 8) * 10,
                 walk_ins=kind is not K.OTHER)
    return plans


def _fill(y: Year, p: Plan) -> None:
    """Sign-ups first come, first served (the rest waitlisted), then check-ins and walk-ins."""
    rng = y.rng
    held = p.ends_at <= y.now and p.cancelled_at is None
    pool = y.zone_members(p.zone.id)
    if held:
        demand = round(p.capacity * {K.PARTY_LESSON: rng.uniform(0.8, 1.1),
                                     K.PARTY_ACTIVITY: rng.uniform(0.75, 1.15)}
                       .get(p.kind, rng.uniform(0.6, 1.0)))
    elif p.cancelled_at is not None:
        demand = rng.randint(10, 16)
    else:
        demand = p.capacity + p.overbooked if p.overbooked else \
            round(p.capacity * rng.uniform(0.3, 0.7))
    admins = [y.admin_of[u.id] for u in y.units[p.zone.id]] if p.kind is K.HANDOVER_MEETING else []
    people = admins + y.sample(pool, max(0, demand - len(admins)), first=y.showcase)
    opens = _opens(y, p)
    until = min(p.starts_at - timedelta(hours=1), p.cancelled_at or y.now)
    times = sorted(opens + (until - opens) * rng.random() for _ in people)
    waitlist = len(people) > p.capacity
    for n, (member_id, at) in enumerate(zip(people, times, strict=True)):
        status = SignupStatus.CONFIRMED if n < p.capacity else SignupStatus.WAITLISTED
        cancelled = None
        if not waitlist and member_id not in y.showcase and rng.random() < 0.03:
            status, cancelled = SignupStatus.CANCELLED, at + (until - at) * rng.random()
        p.signups.append({"member_id": member_id, "unit_id": y.unit_of[member_id], "status": status,
                              "queued_at": at, "created_at": at, "cancelled_at": cancelled,
                              "confirmed_at": at if n < p.capacity else None,
                              "queue_seq": n - p.capacity + 1 if n >= p.capacity else None})
    if not held:
        return
    rate = rng.uniform(0.70, 0.95)
    came = [s["member_id"] for s in p.signups
            if s["status"] is SignupStatus.CONFIRMED and rng.random() < rate]
    signed = {s["member_id"] for s in p.signups}
    strangers = [m for m in pool if m not in signed]
    walk_ins = y.sample(strangers, rng.randint(1, 6)) if p.walk_ins else []
    for member_id in came + walk_ins:
        at = p.starts_at - timedelta(minutes=25) + timedelta(minutes=rng.uniform(0, 55))
        near = p.radius_m is not None
        p.checkins.append({
            "member_id": member_id, "unit_id": y.unit_of[member_id],
            "method": CheckinMethod.VENUE_CODE, "walk_in": member_id not in signed,
            "checked_in_at": at,
            "lat": p.lat + rng.uniform(-0.001, 0.001) if near else None,
            "lng": p.lng + rng.uniform(-0.001, 0.001) if near else None})
