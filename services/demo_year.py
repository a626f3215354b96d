"""The demo city's current year (Asia/Shanghai year of `clock.now()`): activities with sign-ups
and check-ins, notices with receipts, supervision items on their ladder, fund drives and each
zone's fund ledger — so every list and figure shows something on first start.

Written straight through the models in bulk (no HTTP, no jobs), inside the transaction that
loads the city, once. Where a rule lives in a service (rotations, the supervision ladder,
ledger effects) the builders call it. Deterministic for the seed and the day: everything in the
past is placed between 1 January and now, everything upcoming after now. In a year's first 60
days the past reaches back to the start of last year's last quarter, so that a city loaded on
2 January is lived-in too (last year's ledger lines then make this year's opening balance).

The nouns have their own modules: demo_activities, demo_notices, demo_supervision, demo_funds,
demo_governance, demo_practices.
This one holds what they share: the city as read back (`Year`), times, and the notices they
collect (committee notices and system messages), written last in time order so that inbox
ids follow the time each message arrived.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from tortoise.models import Model

from models.notices import (
    DeadlineList,
    InboxItem,
    Notice,
    NoticeBatch,
    NoticeKind,
    NoticeStatus,
    PushStatus,
    UnitReceipt,
)
from models.org import Liaison, Member, Role, Rotation, Unit, Zone
from services import clock

BATCH = 1000           # rows per INSERT
HISTORY = timedelta(days=60)  # the past reaches back at least this far (to a quarter's start)
NOTICE_BATCH = 1000    # recipients per fan-out batch, as ZONEHUB_NOTICE_BATCH_SIZE's default
M = TypeVar("M", bound=Model)


@dataclass
class Recipient:
    member_id: int
    unit_id: int | None
    delivered_at: datetime | None = None  # set by `fan_out`; else when the notice was sent
    read_at: datetime | None = None
    acked_at: datetime | None = None
    push_status: PushStatus | None = None
    pushed_at: datetime | None = None
    reminded_at: datetime | None = None


@dataclass
class PendingNotice:
    """A notice with its inbox rows, written by `flush_notices` (its `id` is set then)."""

    fields: dict[str, Any]
    recipients: list[Recipient]
    batches: list[dict[str, Any]] = field(default_factory=list)      # NoticeBatch kwargs
    unit_receipts: list[dict[str, Any]] = field(default_factory=list)
    deadline_lists: list[dict[str, Any]] = field(default_factory=list)
    ref: PendingNotice | None = None   # a notice this one refers to (its ref_id once written)
    id: int | None = None

    @property
    def at(self) -> datetime:
        return self.fields["created_at"]


@dataclass
class Year:
    """The city as loaded, the clock, and the notices the builders collect."""

    rng: random.Random
    now: datetime
    year: int
    quarter: int
    zones: list[Zone]
    units: dict[int, list[Unit]]            # zone id -> units by id
    unit_zone: dict[int, int]
    members: dict[int, list[int]]           # unit id -> member ids (role member) by id
    admin_of: dict[int, int]                # unit id -> its unit admin
    unit_of: dict[int, int]                 # member id (members and admins) -> unit id
    openid_of: dict[int, str]
    name_of: dict[int, str]
    admin_id: int                           # the committee's `admin`
    liaison_of: dict[int, int]              # zone id -> its liaison
    rotations: list[Rotation]
    showcase: set[int]                      # demo-1: the login a newcomer tries first
    notices: list[PendingNotice] = field(default_factory=list)

    # -- time --------------------------------------------------------------------------------

    @property
    def history_start(self) -> datetime:
        """1 January; in a year's first 60 days, the start of last year's last quarter."""
        back = clock.quarter_bounds(*clock.quarter_of(self.now - HISTORY))[0]
        return min(clock.quarter_bounds(self.year, 1)[0], back)

    def in_past(self, f: float) -> datetime:
        """The instant at fraction f of the history, from its start to now."""
        return self.history_start + (self.now - self.history_start) * f

    def quarters(self) -> list[tuple[int, int]]:
        """(year, quarter) of the past and current quarters the history reaches into."""
        return sorted({(r.year, r.quarter) for r in self.rotations
                       if r.starts_at <= self.now and r.ends_at > self.history_start})

    def rotation_at(self, zone_id: int, at: datetime) -> Rotation | None:
        return next((r for r in self.rotations
                     if r.zone_id == zone_id and r.starts_at <= at < r.ends_at), None)

    def rotation(self, zone_id: int, year: int, quarter: int) -> Rotation:
        return next(r for r in self.rotations
                    if r.zone_id == zone_id and (r.year, r.quarter) == (year, quarter))

    # -- people ------------------------------------------------------------------------------

    def zone_members(self, zone_id: int) -> list[int]:
        return [m for u in self.units[zone_id] for m in self.members[u.id]]

    def sample(self, population: Sequence[int], k: int, *, first: Iterable[int] = ()) -> list[int]:
        """k distinct members; the showcase member among them first when they belong here."""
        chosen = [m for m in first if m in population][:k]
        taken = set(chosen)
        rest = [m for m in population if m not in taken]
        return chosen + self.rng.sample(rest, min(len(rest), k - len(chosen)))

    # -- notices -----------------------------------------------------------------------------

    def system(self, *, at: datetime, member_ids: Iterable[int], topic: str, title: str,
               body: str = "", ref_type: str = "", ref_id: int | None = None,
               ref: PendingNotice | None = None, read_share: float = 0.8) -> PendingNotice | None:
        """A system message, as `services.inbox.send_system` writes it (no push), some read."""
        ids = sorted(set(member_ids))
        if not ids:
            return None
        rows = [Recipient(m, self.unit_of.get(m), read_at=self.read_time(at, read_share))
                for m in ids]
        notice = PendingNotice(fields={
            "kind": NoticeKind.SYSTEM, "status": NoticeStatus.DELIVERED, "topic": topic,
            "title": title[:128], "body": body, "audience": {"member_ids": ids[:1000]},
            "ref_type": ref_type, "ref_id": ref_id, "recipients": len(ids), "planned_at": at,
            "delivered_at": at, "created_at": at}, recipients=rows, ref=ref)
        self.notices.append(notice)
        return notice

    def read_time(self, at: datetime, share: float, *, mean_min: float = 240) -> datetime | None:
        """When a recipient read a message sent at `at` (None: not read, or not yet)."""
        if self.rng.random() >= share:
            return None
        read = at + timedelta(minutes=2 + self.rng.expovariate(1 / mean_min))
        return read if read <= self.now else None


# -- writing -------------------------------------------------------------------------------------

async def insert(model: type[M], rows: list[M]) -> list[int]:
    """Bulk insert in batches; the new ids in the order of `rows` (read back by id: inside the
    loading transaction nobody else inserts, so ids follow insertion order)."""
    if not rows:
        return []
    before = (await model.all().order_by("-id").limit(1).values_list("id", flat=True)) or [0]
    await model.bulk_create(rows, batch_size=BATCH)
    ids = await model.filter(id__gt=before[0]).order_by("id").values_list("id", flat=True)
    assert len(ids) == len(rows), (model.__name__, len(ids), len(rows))
    return list(ids)


async def flush_notices(y: Year) -> None:
    """Every collected notice in time order, then its batches, inbox rows and receipts."""
    pending = sorted(y.notices, key=lambda n: n.at)
    ids = await insert(Notice, [Notice(**n.fields) for n in pending])
    for notice, notice_id in zip(pending, ids, strict=True):
        notice.id = notice_id
    referring: dict[int, list[int]] = defaultdict(list)
    for notice in pending:
        if notice.ref is not None:
            assert notice.ref.id is not None
            referring[notice.ref.id].append(notice.id)  # type: ignore[arg-type]
    for ref_id, notice_ids in referring.items():
        await Notice.filter(id__in=notice_ids).update(ref_id=ref_id)
    await NoticeBatch.bulk_create([NoticeBatch(notice_id=n.id, **b) for n in pending
                                   for b in n.batches], batch_size=200)
    rows = [InboxItem(notice_id=n.id, **{**r.__dict__, "delivered_at": r.delivered_at or n.at})
            for n in pending for r in n.recipients]
    await InboxItem.bulk_create(rows, batch_size=BATCH)
    await UnitReceipt.bulk_create([UnitReceipt(notice_id=n.id, **r) for n in pending
                                   for r in n.unit_receipts], batch_size=BATCH)
    await DeadlineList.bulk_create([DeadlineList(notice_id=n.id, **d) for n in pending
                                    for d in n.deadline_lists], batch_size=BATCH)


def fan_out(notice: PendingNotice, *, delivered_s: float = 2.0) -> None:
    """The notice's batches of recipients, delivered and pushed within seconds of sending."""
    at = notice.at
    ids = [r.member_id for r in notice.recipients]
    for no, start in enumerate(range(0, len(ids), NOTICE_BATCH)):
        delivered = at + timedelta(seconds=delivered_s * (no + 1))
        chunk = ids[start:start + NOTICE_BATCH]
        for r in notice.recipients[start:start + NOTICE_BATCH]:
            r.delivered_at = delivered
        notice.batches.append({
            "batch_no": no, "member_ids": chunk, "size": len(chunk), "delivered_at": delivered,
            "pushed_at": delivered + timedelta(seconds=3), "attempts": 1,
            "enqueued_at": delivered + timedelta(minutes=10)})
    notice.fields.update(status=NoticeStatus.DELIVERED, planned_at=at + timedelta(seconds=1),
                         delivered_at=notice.batches[-1]["delivered_at"] if notice.batches else at,
                         enqueued_at=at + timedelta(seconds=1), recipients=len(ids))


# -- loading -------------------------------------------------------------------------------------

async def read_city(*, seed: int, now: datetime) -> Year:
    year, quarter = clock.quarter_of(now)
    zones = await Zone.all().order_by("id")
    units: dict[int, list[Unit]] = defaultdict(list)
    for unit in await Unit.filter(zone_id__isnull=False).order_by("id"):
        assert unit.zone_id is not None
        units[unit.zone_id].append(unit)
    members: dict[int, list[int]] = defaultdict(list)
    admin_of: dict[int, int] = {}
    unit_of: dict[int, int] = {}
    openid_of: dict[int, str] = {}
    name_of: dict[int, str] = {}
    showcase: set[int] = set()
    for member_id, unit_id, role, openid, name in await Member.filter(
            unit_id__isnull=False, is_active=True).order_by("id") \
            .values_list("id", "unit_id", "role", "openid", "name"):
        unit_of[member_id], name_of[member_id] = unit_id, name
        if openid:
            openid_of[member_id] = openid
        if role == Role.UNIT_ADMIN:
            admin_of.setdefault(unit_id, member_id)
        else:
            members[unit_id].append(member_id)
        if openid == "demo-1":
            showcase.add(member_id)
    admin = await Member.get(username="admin")
    liaison_of = dict(await Liaison.filter(member__role=Role.LIAISON).order_by("id")
                      .values_list("zone_id", "member_id"))
    rotations = await Rotation.filter(year__in=[year - 1, year, year + 1]) \
        .order_by("zone_id", "starts_at")
    return Year(rng=random.Random(f"{seed}:{year}"), now=now, year=year, quarter=quarter,
                zones=zones, units=units,
                unit_zone={u.id: z for z, us in units.items() for u in us}, members=members,
                admin_of=admin_of, unit_of=unit_of, openid_of=openid_of,
                name_of=name_of, admin_id=admin.id,
                liaison_of={z.id: liaison_of.get(z.id, admin.id) for z in zones},
                rotations=rotations, showcase=showcase)


async def load_year(*, seed: int, now: datetime | None = None) -> Year:
    """Write the year; call once, inside the transaction that loads the city."""
    from services import (
        demo_activities,
        demo_funds,
        demo_governance,
        demo_notices,
        demo_practices,
        demo_supervision,
    )

    y = await read_city(seed=seed, now=(now or clock.now()).astimezone(UTC))
    await demo_activities.load(y)
    await demo_supervision.load(y)
    await demo_funds.load(y)
    await demo_governance.load(y)
    await demo_practices.load(y)
    demo_notices.collect(y)
    await flush_notices(y)
    await demo_practices.link(y)
    await demo_governance.handovers(y)  # last: their reports are the quarter as recorded
    return y
