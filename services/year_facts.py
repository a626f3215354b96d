"""One year of a city's zones, read once: the rows the ledger (台账) shows and the year-end
evaluation scores. A handful of queries for the whole city (no query per row); everything after
is arithmetic in `services.work_ledger` and `services.evaluation`."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from tortoise.functions import Count

from models.activities import Activity, ActivityKind, ActivityStatus, Checkin
from models.funds import Contribution, ContributionStatus
from models.governance import Handover, Meeting, MeetingZone, WorkPlan
from models.notices import InboxItem, NoticeKind, NoticeTally
from models.org import LEADERS, Member, Role, Rotation, Unit, Zone
from models.practices import Practice, PracticeRead
from models.records import ActivityRecord
from models.supervision import Assignment
from services import clock
from services.ledger import year_bounds, year_totals
from services.plans import PLAN_DUE_AFTER_START

THREE_ONES = (ActivityKind.PARTY_LESSON, ActivityKind.PARTY_ACTIVITY, ActivityKind.HANDOVER_MEETING)


@dataclass
class UnitTally:
    members: int = 0
    leaders: int = 0
    attended: set[int] = field(default_factory=set)        # members who checked in at least once
    attendee_times: int = 0
    leaders_attended: set[int] = field(default_factory=set)
    leader_times: int = 0
    assigned: int = 0
    on_time: int = 0
    accepted: int = 0
    delivered: int = 0
    read: int = 0
    ack_required: int = 0
    acked: int = 0
    paid_fen: int = 0
    payers: set[int] = field(default_factory=set)


@dataclass
class YearFacts:
    year: int
    now: datetime
    zones: list[Zone]
    units: list[Unit]
    rotations: list[Rotation]
    plans: dict[int, WorkPlan]                # rotation id -> plan
    handovers: dict[int, Handover]            # rotation id -> handover
    meetings: list[Meeting]
    meeting_zones: list[MeetingZone]
    deployments: Counter[int]                 # meeting id -> deployments
    activities: list[Activity]
    leaders_at: Counter[int]                  # activity id -> leaders checked in
    assignments: list[Assignment]
    tally: dict[int, UnitTally]               # unit id -> its figures
    funds: dict[int, dict]                    # zone id -> the fund year (services.ledger)
    unit_name: dict[int, str] = field(default_factory=dict)
    zone_name: dict[int, str] = field(default_factory=dict)
    unit_zone: dict[int, int | None] = field(default_factory=dict)
    practice: dict[int, dict] = field(default_factory=dict)  # unit id -> published, featured, reads
    practices: list[Practice] = field(default_factory=list)  # published in the year, oldest first
    practice_reads: Counter[int] = field(default_factory=Counter)  # practice id -> members who read it
    records: dict[int, ActivityRecord] = field(default_factory=dict)  # activity id -> its record

    def held(self, a: Activity) -> bool:
        return a.status is ActivityStatus.ACTIVE and a.ends_at <= self.now and a.checked_in > 0

    def three_ones(self, rotation: Rotation) -> dict[str, bool]:
        held = {a.kind for a in self.activities if a.rotation_id == rotation.id and self.held(a)}
        return {k.value: k in held for k in THREE_ONES}

    def plan_on_time(self, rotation: Rotation) -> bool:
        plan = self.plans.get(rotation.id)
        return plan is not None and plan.submitted_at is not None and \
            plan.submitted_at <= rotation.starts_at + PLAN_DUE_AFTER_START

    def finished(self, rotation: Rotation) -> bool:
        return rotation.ends_at <= self.now


async def gather(year: int) -> YearFacts:
    start, end = year_bounds(year)
    now = clock.now()
    zones = await Zone.all().order_by("id")
    units = await Unit.all().order_by("zone_id", "id")
    tally: dict[int, UnitTally] = defaultdict(UnitTally)
    people = await Member.filter(unit_id__isnull=False, is_active=True,
                                 role__in=[Role.MEMBER, Role.UNIT_ADMIN]).values_list("id", "unit_id", "position")
    unit_of = {m: u for m, u, _ in people}
    leader = {m for m, _, p in people if p in LEADERS}
    for m, u, _ in people:
        tally[u].members += 1
        tally[u].leaders += m in leader

    rotations = await Rotation.filter(year=year).order_by("zone_id", "starts_at")
    rotation_ids = [r.id for r in rotations]
    plans = {p.rotation_id: p for p in await WorkPlan.filter(rotation_id__in=rotation_ids)}
    handovers = {h.rotation_id: h for h in await Handover.filter(rotation_id__in=rotation_ids)}
    meetings = await Meeting.filter(year=year).order_by("quarter")
    meeting_zones = await MeetingZone.filter(meeting_id__in=[m.id for m in meetings]).order_by("meeting_id", "zone_id")
    deployments = Counter(dict(await Meeting.filter(id__in=[m.id for m in meetings])
                               .annotate(n=Count("deployments")).values_list("id", "n")))

    activities = await Activity.filter(zone_id__isnull=False, starts_at__gte=start, starts_at__lt=end) \
        .order_by("starts_at", "id")
    leaders_at: Counter[int] = Counter()
    for activity_id, member_id in await Checkin.filter(activity_id__in=[a.id for a in activities]) \
            .values_list("activity_id", "member_id"):
        unit = unit_of.get(member_id)
        if unit is None:
            continue
        t = tally[unit]
        t.attended.add(member_id)
        t.attendee_times += 1
        if member_id in leader:
            t.leaders_attended.add(member_id)
            t.leader_times += 1
            leaders_at[activity_id] += 1

    assignments = await Assignment.filter(item__due_at__gte=start, item__due_at__lt=end) \
        .select_related("item").order_by("item_id", "unit_id")
    for a in assignments:
        t = tally[a.unit_id]
        t.assigned += 1
        t.on_time += a.submitted_at is not None and a.submitted_at <= a.item.due_at
        t.accepted += a.accepted_at is not None

    inbox = InboxItem.filter(notice__kind=NoticeKind.NOTICE, notice__created_at__gte=start,
                             notice__created_at__lt=end, unit_id__isnull=False)
    for name, qs in (("delivered", inbox), ("read", inbox.filter(read_at__isnull=False)),
                     ("ack_required", inbox.filter(notice__require_ack=True)),
                     ("acked", inbox.filter(notice__require_ack=True, acked_at__isnull=False))):
        for unit_id, n in await qs.annotate(n=Count("id")).group_by("unit_id").values_list("unit_id", "n"):
            setattr(tally[unit_id], name, n)
    for kept in await NoticeTally.filter(notice__kind=NoticeKind.NOTICE, notice__created_at__gte=start,
                                         notice__created_at__lt=end, unit_id__isnull=False) \
            .select_related("notice"):  # archived notices: their rows folded into counts
        t = tally[kept.unit_id]
        t.delivered += kept.delivered
        t.read += kept.read
        if kept.notice.require_ack:
            t.ack_required += kept.delivered
            t.acked += kept.acked

    for unit_id, member_id, fen in await Contribution.filter(
            status=ContributionStatus.PAID, paid_at__gte=start, paid_at__lt=end) \
            .values_list("unit_id", "member_id", "amount_fen"):
        tally[unit_id].paid_fen += fen
        if member_id is not None:
            tally[unit_id].payers.add(member_id)

    funds = {z["zone_id"]: z for z in (await year_totals(year))["zones"]}
    records = {r.activity_id: r for r in await ActivityRecord.filter(
        activity_id__in=[a.id for a in activities])}
    practices = await Practice.filter(year=year).order_by("unit_id", "id")
    practice_reads = Counter(dict(await PracticeRead.filter(practice_id__in=[p.id for p in practices])
                                  .annotate(n=Count("id")).group_by("practice_id")
                                  .values_list("practice_id", "n"))) if practices else Counter()
    practice: dict[int, dict] = {}
    for p in practices:
        mine = practice.setdefault(p.unit_id, {"published": 0, "featured": 0, "reads": 0})
        mine["published"] += 1
        mine["featured"] += p.featured_at is not None
        mine["reads"] += practice_reads.get(p.id, 0)
    return YearFacts(year=year, now=now, zones=zones, units=units, rotations=rotations, plans=plans,
                     handovers=handovers, meetings=meetings, meeting_zones=meeting_zones,
                     deployments=deployments, activities=activities, leaders_at=leaders_at,
                     assignments=assignments, tally=tally, funds=funds,
                     unit_name={u.id: u.name for u in units}, zone_name={z.id: z.name for z in zones},
                     unit_zone={u.id: u.zone_id for u in units}, practice=practice,
                     practices=practices, practice_reads=practice_reads, records=records)
