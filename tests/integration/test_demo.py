"""`zonehub demo`: the city and its lived-in year. The city is loaded once for the module (as the
`db` fixture does — Tortoise on the test database, emptied — but module-scoped, since a load
takes seconds) and loaded a second time; then every list the mini-program and the console open
is read through its service and must show something, the counters, recipients and totals must
equal the rows they count, the ledgers never dip below zero, and the second load changed no
row. The last test empties the database and loads again: the same seed, the same city."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest
import pytest_asyncio
from tortoise import Tortoise

from models.activities import Activity, ActivityStatus, Checkin, Signup, SignupStatus
from models.funds import (
    Campaign,
    CampaignKind,
    CampaignState,
    CampaignTotal,
    Channel,
    Contribution,
    ContributionStatus,
)
from models.governance import (
    Handover,
    Meeting,
    MeetingState,
    MeetingZone,
    PlanEvent,
    PlanEventKind,
    PlanState,
    WorkPlan,
)
from models.ledger import EntryCategory, EntryStatus, FundEntry
from models.notices import InboxItem, Notice, NoticeBatch, NoticeKind, NoticeStatus
from models.org import Liaison, Member, Position, Role, Rotation, Unit, Zone
from models.supervision import (
    Assignment,
    AssignmentState,
    EscalationEvent,
    ProgressReport,
    Review,
    Step,
    SupervisionItem,
    Urge,
)
from server.cli import demo_lines
from services import (
    activities,
    attendance,
    campaigns,
    clock,
    compliance,
    contributions,
    escalation,
    inbox,
    ledger,
    notices,
    quarter_record,
    rotations,
    supervision_board,
)
from services.auth import Principal
from services.db import close_db, init_db
from services.demo import DemoResult, load_demo
from services.demo_activities import GAP_ZONE
from tests.conftest import reset_database

pytestmark = pytest.mark.asyncio(loop_scope="module")
S = AssignmentState
LIVE = (S.OPEN, S.IN_PROGRESS, S.RETURNED)


@dataclass
class Loaded:
    first: DemoResult
    second: DemoResult
    seconds: float
    counts: dict[str, int]
    counts_after_second: dict[str, int]


async def row_counts() -> dict[str, int]:
    return {m._meta.db_table: await m.all().count() for m in Tortoise.apps.get_models_iterable()}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def demo(database_url: str) -> AsyncIterator[Loaded]:
    await init_db(database_url)
    try:  # closed even when a load fails: an open SQLite connection's thread blocks the exit
        await reset_database()
        started = time.perf_counter()
        first = await load_demo(admin_password="demo-admin-pass")
        seconds = time.perf_counter() - started
        counts = await row_counts()
        second = await load_demo(admin_password="demo-admin-pass")
        yield Loaded(first, second, seconds, counts, await row_counts())
    finally:
        await close_db()


def as_principal(member: Member, *, zone_id: int | None = None,
                 liaison_zones: frozenset[int] = frozenset()) -> Principal:
    return Principal(member_id=member.id, role=member.role, unit_id=member.unit_id,
                     zone_id=zone_id, jti="test", exp=0, liaison_zone_ids=liaison_zones)


async def committee() -> Principal:
    return as_principal(await Member.get(username="admin"))


async def newcomer() -> Principal:
    """The member a newcomer logs in as first: test-demo-1."""
    member = await Member.get(openid="demo-1")
    unit = await Unit.get(id=member.unit_id)
    return as_principal(member, zone_id=unit.zone_id)


# -- the city, the second load, the logins --------------------------------------------------------

async def test_the_city_loads_well_under_a_minute_with_zones_of_8_to_10_units(demo: Loaded) -> None:
    assert demo.first.loaded and demo.seconds < 60, demo.seconds
    assert (demo.first.zones, demo.first.units) == (10, 95)
    sizes = Counter(await Unit.all().values_list("zone_id", flat=True))
    assert len(sizes) == 10 and all(8 <= n <= 10 for n in sizes.values()), sizes
    assert await Liaison.all().count() == 10


async def test_loading_twice_changes_no_row(demo: Loaded) -> None:
    assert not demo.second.loaded and demo.second.rotations_created == 0
    assert demo.counts_after_second == demo.counts
    # What the demo leaves to real use; every other table holds something.
    assert {t for t, n in demo.counts.items() if n == 0} == {
        "upload", "attachment_ref", "import_run", "rotation_change", "refund", "contest_entry",
        "contest_round", "compliance_warning", "scan_nonce", "subscription_grant",
        "activity_unit_seats", "rotation_warning", "meeting_deployment", "evaluation",
        "evaluation_rubric", "audit_entry", "partition_proposal",
        "notice_tally"}


async def test_the_reported_member_range_is_the_one_that_logs_in(demo: Loaded) -> None:
    first, last = demo.first.first_member_no, demo.first.last_member_no
    assert first == 1 and last is not None
    openids = set(await Member.filter(role=Role.MEMBER, is_active=True,
                                      openid__startswith="demo-").values_list("openid", flat=True))
    assert all(f"demo-{n}" in openids for n in range(first, last + 1))
    assert not await Member.exists(openid=f"demo-{last + 1}")
    assert (demo.second.first_member_no, demo.second.last_member_no) == (first, last)
    printed = "\n".join(demo_lines(demo.first, password_from_env=True))
    assert f"members: test-demo-{first} … test-demo-{last}" in printed


async def test_rotations_run_on_from_last_year_to_next(demo: Loaded) -> None:
    year, _ = clock.quarter_of(clock.now())
    for zone in await Zone.all():
        held = await Rotation.filter(zone_id=zone.id).order_by("starts_at")
        assert [(r.year, r.quarter) for r in held] == \
            [(y, q) for y in (year - 1, year, year + 1) for q in range(1, 5)]
        order = rotations.duty_order(await Unit.filter(zone_id=zone.id))
        for before, after in pairwise(held):
            assert after.unit_id == rotations.next_unit(order, before.unit_id).id


# -- activities ---------------------------------------------------------------------------------

async def every_activity(who: Principal, *, per_page: int) -> list[Any]:
    """Every activity `who` may see, page by page, checked soonest first and each once."""
    seen: list[Any] = []
    cursor = None
    while True:
        page = await activities.list_activities(who, zone_id=None, kind=None, start=None, end=None,
                                                limit=per_page, cursor=cursor)
        seen += page["items"]
        if (cursor := page["next_cursor"]) is None:
            break
    assert len({a.id for a in seen}) == len(seen)
    assert [(a.starts_at, a.id) for a in seen] == sorted((a.starts_at, a.id) for a in seen)
    return seen


async def test_a_member_sees_past_and_upcoming_activities_and_their_history(demo: Loaded) -> None:
    me, now = await newcomer(), clock.now()
    seen = await every_activity(me, per_page=5)
    everything = await every_activity(await committee(), per_page=20)
    assert len(everything) == await Activity.all().count() > 100 and len(seen) > 5
    held = [a for a in seen if a.ends_at <= now and a.checked_in > 0]
    open_now = [a for a in seen if a.status is ActivityStatus.ACTIVE
                and a.signup_opens_at <= now < a.signup_closes_at]
    assert held and open_now
    history = await attendance.my_history(me.member_id)
    assert any(h["checked_in_at"] for h in history)
    assert any(h["starts_at"] > now for h in history)


async def test_activity_counters_equal_their_rows(demo: Loaded) -> None:
    signups = Counter(await Signup.all().values_list("activity_id", "status"))
    checkins = Counter(await Checkin.all().values_list("activity_id", flat=True))
    for a in await Activity.all():
        assert (a.confirmed, a.waitlisted, a.checked_in) == (
            signups[(a.id, SignupStatus.CONFIRMED)], signups[(a.id, SignupStatus.WAITLISTED)],
            checkins[a.id]), a.title
        assert a.capacity is None or a.confirmed <= a.capacity
    confirmed = set(await Signup.filter(status=SignupStatus.CONFIRMED)
                    .values_list("activity_id", "member_id"))
    for activity_id, member_id, walk_in in await Checkin.all().values_list(
            "activity_id", "member_id", "walk_in"):
        assert walk_in == ((activity_id, member_id) not in confirmed)


async def test_the_year_has_waitlists_walk_ins_a_cancellation_and_attendance(demo: Loaded) -> None:
    now = clock.now()
    assert await Activity.filter(status=ActivityStatus.CANCELLED).count() == 1
    assert await Activity.filter(starts_at__gt=now, waitlisted__gt=0).exists()
    assert await Activity.filter(ends_at__lte=now, waitlisted__gt=0).exists()
    assert await Checkin.filter(walk_in=True).exists()
    held = await Activity.filter(ends_at__lte=now, status=ActivityStatus.ACTIVE) \
        .values_list("id", flat=True)
    signed = await Signup.filter(activity_id__in=held, status=SignupStatus.CONFIRMED).count()
    came = await Checkin.filter(activity_id__in=held, walk_in=False).count()
    assert 0.70 <= came / signed <= 0.95, came / signed


async def test_the_three_ones_held_every_past_quarter_and_one_zone_lacks_one(demo: Loaded) -> None:
    now = clock.now()
    planned = set(await Activity.all().values_list("rotation_id", flat=True))
    started = await Rotation.filter(id__in=[r for r in planned if r], starts_at__lte=now)
    for rotation in started:
        status = await compliance.rotation_status(rotation)
        assert not status["warnings"]  # 2-4 activities a quarter
        if rotation.ends_at <= now:
            assert status["complete"], (rotation.zone_id, rotation.quarter, status["missing"])
    gap = (await Zone.all().order_by("id"))[GAP_ZONE]
    current = next(r for r in started if r.zone_id == gap.id and r.ends_at > now)
    assert "party_lesson" in (await compliance.rotation_status(current))["missing"]


# -- notices ------------------------------------------------------------------------------------

async def test_a_member_inbox_holds_read_and_unread_notices(demo: Loaded) -> None:
    me = await newcomer()
    page = await inbox.inbox_page(me.member_id, cursor=None, limit=50)
    items = page["items"]
    assert page["unread"] > 0 and any(i.read_at for i in items)
    assert any(i.notice.require_ack and i.acked_at for i in items)
    assert any(i.notice.require_ack and not i.acked_at for i in items)
    assert [i.id for i in items] == sorted((i.id for i in items), reverse=True)
    sent = [i.notice.created_at for i in items]
    assert sent == sorted(sent, reverse=True)


async def test_notice_recipients_equal_inbox_rows_and_batches_are_done(demo: Loaded) -> None:
    rows = Counter(await InboxItem.all().values_list("notice_id", flat=True))
    sent = await Notice.all()
    assert {n.kind for n in sent} == {NoticeKind.NOTICE, NoticeKind.SYSTEM}
    for notice in sent:
        assert notice.recipients == rows[notice.id] > 0, notice.title
        assert notice.status is NoticeStatus.DELIVERED and notice.delivered_at is not None
    assert not await NoticeBatch.filter(delivered_at__isnull=True).exists()
    assert not await NoticeBatch.filter(pushed_at__isnull=True).exists()
    sizes: dict[int, int] = defaultdict(int)
    for notice_id, size in await NoticeBatch.all().values_list("notice_id", "size"):
        sizes[notice_id] += size
    for notice in (n for n in sent if n.kind is NoticeKind.NOTICE):
        assert sizes[notice.id] == notice.recipients
        stats = await notices.stats(await committee(), notice.id)
        assert stats["delivered"] == notice.recipients and 0 < stats["read"] < notice.recipients
        if notice.require_ack:
            assert 0 < stats["acked"] < stats["read"]


async def test_the_reminder_job_finds_nothing_of_the_past_left_to_do(demo: Loaded) -> None:
    """Every notice a day old had its reminder (a featured practice's too), and whoever was
    pushed had granted it: a first run of the jobs does not remind the city of last January."""
    day_old = await Notice.filter(kind=NoticeKind.NOTICE, created_at__lte=clock.now() - timedelta(days=1))
    assert any(n.ref_type == "practice" for n in day_old)
    for notice in day_old:
        assert notice.reminders_done_at is not None, notice.title
        assert await InboxItem.filter(notice_id=notice.id, reminded_at__isnull=False).exists(), notice.title
        assert not await InboxItem.filter(notice_id=notice.id, push_status__isnull=True).exists(), notice.title


# -- supervision ----------------------------------------------------------------------------------

async def test_supervision_items_show_every_state_and_overdue_ones_escalated(demo: Loaded) -> None:
    page = await supervision_board.list_items(await committee(), limit=50, cursor=None, zone_id=None)
    items = page["items"]
    rows = [a for i in items for a in i.assignments]
    assert items and {r.state for r in rows} == set(S)
    now = clock.now()
    due = {i.id: i.due_at for i in items}
    overdue = [r for r in rows if r.state in LIVE and due[r.item_id] < now]
    assert overdue and all(r.overdue_at and r.escalation_level >= 2 for r in overdue)
    assert any(r.urge_count for r in overdue)
    board = await supervision_board.dashboard(None)
    assert board["overall"]["accepted"] and board["overall"]["overdue"] and board["by_zone"]


async def test_every_assignment_ladder_is_where_the_cron_would_have_left_it(demo: Loaded) -> None:
    now = clock.now()
    items = {i.id: i for i in await SupervisionItem.all()}
    fired: dict[int, dict[Step, Any]] = defaultdict(dict)
    for e in await EscalationEvent.all():
        fired[e.assignment_id][e.step] = e
    urges: dict[int, list[Any]] = defaultdict(list)
    for u in await Urge.all():
        urges[u.assignment_id].append(u.at)
    reports = {(r.assignment_id, r.done) for r in await ProgressReport.all()}
    reviews = {(r.assignment_id, r.accept) for r in await Review.all()}
    for a in await Assignment.all():
        item, events = items[a.item_id], fired[a.id]
        ladder = escalation.ladder_of(item.ladder)
        assert a.escalation_level == max((escalation.step_level(s) for s in events), default=0)
        assert a.overdue_at == (events[Step.OVERDUE].fired_at if Step.OVERDUE in events else None)
        for step, event in events.items():
            assert event.due_at == escalation.step_at(step, due_at=item.due_at, ladder=ladder)
            assert event.due_at <= event.fired_at <= now
        if a.state in LIVE:
            if a.next_step is not None:
                assert a.next_step_at == escalation.step_at(a.next_step, due_at=item.due_at,
                                                             ladder=ladder)
                assert escalation.step_level(a.next_step) > a.escalation_level
                assert a.next_step_at > now - timedelta(minutes=2)  # nothing left long unfired
            else:
                assert a.escalation_level == len(escalation.STEPS)
        else:
            assert (a.next_step, a.next_step_at) == (None, None) and a.submitted_at is not None
            assert all(e.fired_at <= a.submitted_at for e in events.values())
            assert (a.id, True) in reports
        assert a.urge_count == len(urges[a.id])
        assert a.last_urged_at == max(urges[a.id], default=None)
        if a.state is S.IN_PROGRESS:
            assert (a.id, False) in reports
        if a.state is S.RETURNED:
            assert (a.id, False) in reviews
        if a.state is S.ACCEPTED:
            assert (a.id, True) in reviews and a.accepted_at is not None
            assert a.on_time == (a.submitted_at <= item.due_at)
            assert a.accept_s == int((a.accepted_at - a.assigned_at).total_seconds())


# -- funds and ledgers ----------------------------------------------------------------------------

async def test_drives_show_with_totals_equal_to_their_paid_contributions(demo: Loaded) -> None:
    boss, me = await committee(), await newcomer()
    drives = await campaigns.list_campaigns(boss, state=None, limit=50, cursor=None)
    kinds = {(c.kind, c.state) for c in drives}
    assert {(CampaignKind.SPECIAL_DUES, CampaignState.CLOSED),
            (CampaignKind.DONATION, CampaignState.OPEN),
            (CampaignKind.ZONE_FUND, CampaignState.CLOSED)} <= kinds
    assert all(c.state is not CampaignState.DRAFT
               for c in await campaigns.list_campaigns(me, state=None, limit=50, cursor=None))
    expected: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for c in await Contribution.filter(status=ContributionStatus.PAID):
        sums = expected[(c.campaign_id, c.unit_id)]
        k = 0 if c.channel is Channel.WECHAT else 2
        sums[k], sums[k + 1] = sums[k] + c.amount_fen, sums[k + 1] + 1
        if c.channel is Channel.WECHAT:
            assert c.out_trade_no and c.transaction_id and c.paid_at and c.openid
    totals = {(t.campaign_id, t.unit_id): [t.online_fen, t.online_count, t.offline_fen,
                                           t.offline_count] for t in await CampaignTotal.all()}
    assert totals == expected and not await CampaignTotal.filter(refunded_fen__gt=0).exists()
    special = next(c for c in drives if c.kind is CampaignKind.SPECIAL_DUES)
    money = await contributions.totals(boss, special.id)
    assert money["total_fen"] >= 2_700_000 * 100 and money["offline_count"] > 0
    assert special.ends_at - special.starts_at <= timedelta(days=1)
    assert (await contributions.my_contributions(me, limit=20, cursor=None, include_unpaid=False))


async def test_the_zone_fund_drive_is_settled_into_its_ledger_once(demo: Loaded) -> None:
    drive = await Campaign.get(kind=CampaignKind.ZONE_FUND, state=CampaignState.CLOSED)
    assert drive.settled_at is not None and drive.fund_zone_id is not None
    [line] = await FundEntry.filter(category=EntryCategory.CAMPAIGN)
    paid = sum(await Contribution.filter(campaign_id=drive.id, status=ContributionStatus.PAID)
               .values_list("amount_fen", flat=True))
    assert (line.campaign_id, line.zone_id, line.amount_fen) == (drive.id, drive.fund_zone_id, paid)
    assert line.booked_at == drive.settled_at and line.status is EntryStatus.BOOKED


async def test_every_zone_ledger_has_lines_and_never_goes_below_zero(demo: Loaded) -> None:
    boss, now = await committee(), clock.now()
    year, _ = clock.quarter_of(now)
    # The year; in a year's first 60 days, from last year's last quarter (services/demo_year.py).
    back = clock.quarter_bounds(*clock.quarter_of(now - timedelta(days=60)))[0]
    since = min(ledger.year_bounds(year)[0], back)
    categories: set[EntryCategory] = set()
    for zone in await Zone.all():
        lines = await FundEntry.filter(zone_id=zone.id, status=EntryStatus.BOOKED) \
            .order_by("booked_at", "id")
        assert lines and all(since <= e.booked_at <= now for e in lines), zone.name
        balance = 0  # every booked line of the zone, in booking order
        for e in lines:
            balance += ledger.effect(e.direction, e.amount_fen)
            assert balance >= 0, zone.name
        mine = {e.category for e in lines}
        assert {EntryCategory.DUTY_UNIT, EntryCategory.MEMBER_UNIT,
                EntryCategory.COMMITTEE_SUBSIDY} <= mine and mine & set(ledger.EXPENSE_CATEGORIES)
        categories |= mine
        latest = clock.quarter_of(lines[-1].booked_at)[0]
        book = await ledger.ledger(boss, zone_id=zone.id, year=latest)
        assert book["entries"] and all(line.balance_fen >= 0 for line in book["entries"])
    assert {EntryCategory.VENUE_RENT, EntryCategory.MATERIALS, EntryCategory.CAMPAIGN} <= categories
    subsidies = await FundEntry.filter(category=EntryCategory.COMMITTEE_SUBSIDY)
    booked = [e for e in subsidies if e.status is EntryStatus.BOOKED]
    assert booked and all(e.decided_by_id and e.decided_by_id != e.recorded_by_id for e in booked)
    assert sum(e.status is EntryStatus.PENDING for e in subsidies) == 1
    totals = await ledger.summary(boss, year=latest)
    zones, city = totals["zones"], totals["city"]
    assert city["income_fen"] > city["expense_fen"] > 0 and city["pending_count"] == 1
    assert all(z["closing_balance_fen"] >= 0 for z in zones)


# -- running the zones ----------------------------------------------------------------------------

async def test_plans_meetings_and_handovers_run_through_the_year(demo: Loaded) -> None:
    now = clock.now()
    started = await Rotation.filter(starts_at__lte=now)
    plans_by_rotation = {p.rotation_id: p for p in await WorkPlan.all()}
    for r in started:
        plan = plans_by_rotation.get(r.id)
        if plan is None:
            continue
        if r.ends_at <= now:
            assert plan.state is PlanState.FILED and plan.filed_version == plan.version, r.id
    assert {p.state for p in plans_by_rotation.values()} >= {PlanState.FILED}
    assert await PlanEvent.filter(kind=PlanEventKind.RETURNED).exists()
    meetings = await Meeting.all()
    assert any(m.state is MeetingState.HELD for m in meetings)
    year, quarter = clock.quarter_of(now)
    current = next(m for m in meetings if (m.year, m.quarter) == (year, quarter))
    assert current.state is (MeetingState.HELD if current.starts_at < now else MeetingState.SCHEDULED)
    assert await MeetingZone.filter(meeting_id=current.id).count() == await Zone.all().count()
    finished = [r for r in started if r.ends_at <= now and r.id in plans_by_rotation]
    handovers = {h.rotation_id: h for h in await Handover.all()}
    assert set(handovers) == {r.id for r in finished}
    open_ = [h for h in handovers.values() if h.closed_at is None]
    assert len(open_) == 1 and open_[0].report is None
    for h in handovers.values():
        if h.closed_at is not None:
            assert h.report == await quarter_record.record(await Rotation.get(id=h.rotation_id))
    leaders = await Member.filter(position__in=[Position.SECRETARY]).count()
    assert leaders == await Unit.filter(zone_id__isnull=False).count()


# -- determinism (last: it empties the database) --------------------------------------------------

async def test_the_same_seed_loads_the_same_city(demo: Loaded) -> None:
    async def fingerprint() -> tuple[Any, ...]:
        return (await row_counts(),
                sorted(await Activity.all().values_list("title", "confirmed", "waitlisted",
                                                        "checked_in")),
                sorted(await Contribution.all().values_list("unit_id", "channel", "amount_fen")),
                sorted(await FundEntry.all().values_list("zone_id", "category", "amount_fen")),
                sorted(await Assignment.all().values_list("unit_id", "state", "escalation_level")))

    before = await fingerprint()
    await reset_database()
    again = await load_demo(admin_password="demo-admin-pass")
    assert again.loaded and await fingerprint() == before
