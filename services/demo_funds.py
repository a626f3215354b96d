"""Demo year, funds: a closed special-dues drive paid in a day (the seed's 2.7M yuan) through
WeChat Pay and a few offline entries, an open donation drive, a closed zone_fund drive settled
into its zone's ledger, a draft; and each zone's fund ledger — duty-unit and member-unit income,
committee subsidies (approved by a second staff member, one pending, one rejected), the zone
fund drive's line, expenses after activities — never below zero in booking order. Running
totals per unit are summed from the contributions written here."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import partial

from models.activities import Activity, ActivityKind, ActivityStatus
from models.funds import (
    Campaign,
    CampaignKind,
    CampaignState,
    CampaignTotal,
    Channel,
    Contribution,
    ContributionStatus,
)
from models.ledger import Direction, EntryCategory, EntryStatus, FundEntry
from services import clock, totals_cache
from services.demo_year import BATCH, Year, insert
from services.ledger import DIRECTION_OF, effect

C = EntryCategory
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # as services.payments.new_out_trade_no
YUAN = 100
SPECIAL_DUES_AT = 0.55  # the special-dues day: this fraction of the year so far
SPECIAL = ([200, 300, 500, 1000, 2000, 5000], [20, 20, 30, 20, 8, 2])
DONATION = ([20, 50, 100, 200, 500], [10, 30, 35, 20, 5])
ZONE_FUND = ([50, 100, 200, 300], [30, 40, 20, 10])
EXPENSES = {ActivityKind.PARTY_LESSON: (C.VENUE_RENT, "党课场地租赁", 1000, 2500),
            ActivityKind.PARTY_ACTIVITY: (C.MATERIALS, "主题党日活动物资", 300, 1000),
            ActivityKind.HANDOVER_MEETING: (C.MATERIALS, "交接会资料印制", 200, 500)}
OTHER_EXPENSE = (C.EVENT_COSTS, "活动保障费用", 500, 1500)


def _local_date(at: datetime) -> date:
    return at.astimezone(clock.SHANGHAI).date()


class Payments:
    """Contributions of the drives, with unique order and transaction numbers."""

    def __init__(self, y: Year) -> None:
        self.y, self.rows, self.seq, self.seen = y, [], 0, set()

    def wechat(self, campaign: Campaign, member_id: int, amount_yuan: int, paid_at: datetime, *,
               closed: bool = False) -> None:
        """An order paid at `paid_at` (closed: made then, never paid, closed two hours on)."""
        y = self.y
        created = max(paid_at - timedelta(seconds=y.rng.randint(8, 90)), campaign.starts_at)
        local = created.astimezone(clock.SHANGHAI)
        out_trade_no = ""
        while not out_trade_no or out_trade_no in self.seen:
            out_trade_no = "ZH" + local.strftime("%y%m%d%H%M%S") + \
                "".join(y.rng.choice(ALPHABET) for _ in range(10))
        self.seen.add(out_trade_no)
        self.seq += 1
        unit_id = y.unit_of[member_id]
        self.rows.append(Contribution(
            campaign_id=campaign.id, member_id=member_id, unit_id=unit_id,
            zone_id=y.unit_zone[unit_id], channel=Channel.WECHAT, amount_fen=amount_yuan * YUAN,
            status=ContributionStatus.CLOSED if closed else ContributionStatus.PAID,
            idempotency_key=f"demo-{campaign.id}-{self.seq}", out_trade_no=out_trade_no,
            openid=y.openid_of[member_id],
            prepay_id=f"wx{local:%d%H%M%S}{y.rng.getrandbits(64):016x}",
            transaction_id=None if closed else
            f"4200{self.seq:07d}{local:%Y%m%d}{y.rng.randrange(10**9):09d}",
            paid_at=None if closed else paid_at, created_at=created, checks=2 if closed else 0,
            closed_at=created + timedelta(hours=2) if closed else None))

    def offline(self, campaign: Campaign, unit_id: int, amount_yuan: int, at: datetime,
                payer: str, channel: Channel) -> None:
        self.seq += 1
        self.rows.append(Contribution(
            campaign_id=campaign.id, unit_id=unit_id, zone_id=self.y.unit_zone[unit_id],
            channel=channel, status=ContributionStatus.PAID, amount_fen=amount_yuan * YUAN,
            paid_at=at, created_at=at, payer_name=payer,
            receipt_no=f"SJ-{campaign.id}-{unit_id:03d}-01",
            received_on=_local_date(at), recorded_by_id=self.y.admin_of[unit_id],
            note="线下收取，已开具收据"))

    def crowd(self, campaign: Campaign, members: list[int], amounts: tuple[list[int], list[int]],
              start: datetime, end: datetime) -> None:
        """Members paying between start and end, most of them early."""
        rng = self.y.rng
        for member_id in members:
            amount = rng.choices(*amounts)[0]
            self.wechat(campaign, member_id, amount, start + (end - start) * rng.random() ** 2)

    def totals(self) -> list[CampaignTotal]:
        sums: dict[tuple[int, int], CampaignTotal] = {}
        for c in self.rows:
            if c.status is not ContributionStatus.PAID:
                continue
            t = sums.setdefault((c.campaign_id, c.unit_id), CampaignTotal(
                campaign_id=c.campaign_id, unit_id=c.unit_id, zone_id=c.zone_id))
            if c.channel is Channel.WECHAT:
                t.online_fen, t.online_count = t.online_fen + c.amount_fen, t.online_count + 1
            else:
                t.offline_fen, t.offline_count = t.offline_fen + c.amount_fen, t.offline_count + 1
        return list(sums.values())


async def load(y: Year) -> None:
    now, day, rng = y.now, timedelta(days=1), y.rng
    members = sorted(m for ms in y.members.values() for m in ms)
    fund_zone = y.zones[0]
    t0 = y.in_past(SPECIAL_DUES_AT)
    t1 = t0 + min(day, (now - t0) / 2)
    zf0, zf1 = y.in_past(0.15), y.in_past(0.25)
    drives = [
        Campaign(kind=CampaignKind.SPECIAL_DUES, state=CampaignState.CLOSED,
                 title=f"{_local_date(t0).year}年特殊党费（支援防汛救灾）",
                 target_fen=2_700_000 * YUAN,
                 description="全市机关党员自愿交纳特殊党费，全部用于支援防汛救灾。",
                 starts_at=t0, ends_at=t1, opened_at=t0, closed_at=t1, created_at=t0 - day),
        Campaign(kind=CampaignKind.DONATION, state=CampaignState.OPEN, title="“金秋助学”爱心捐款",
                 description="资助困难党员家庭子女就学。", target_fen=300_000 * YUAN,
                 starts_at=now - 9 * day, ends_at=now + 21 * day, opened_at=now - 9 * day,
                 created_at=now - 10 * day),
        Campaign(kind=CampaignKind.ZONE_FUND, state=CampaignState.CLOSED,
                 title=f"{fund_zone.name}{_local_date(zf0).year}年党建活动经费募集",
                 zone_ids=[fund_zone.id],
                 fund_zone_id=fund_zone.id, description="所得计入网络区经费台账。",
                 starts_at=zf0, ends_at=zf1, opened_at=zf0, closed_at=zf1,
                 settled_at=zf1 + timedelta(minutes=5), created_at=zf0 - day),
        Campaign(kind=CampaignKind.DONATION, state=CampaignState.DRAFT, title="“七一”慰问困难党员募捐",
                 description="草稿：待工委审定后开放。", ends_at=now + 60 * day, created_at=now - day),
    ]
    for campaign in drives:
        campaign.created_by_id = y.admin_id
    for campaign, campaign_id in zip(drives, await insert(Campaign, drives), strict=True):
        campaign.id = campaign_id
    special, donation, zone_fund, _ = drives
    pay = Payments(y)
    payers = y.sample(members, round(len(members) * 0.76), first=y.showcase)
    pay.crowd(special, payers, SPECIAL, t0, t1)
    paid = set(payers)
    for member_id in y.sample([m for m in members if m not in paid], 5):  # orders never paid
        pay.wechat(special, member_id, 500, t0 + (t1 - t0) * rng.random(), closed=True)
    for unit_id in sorted(rng.sample(sorted(y.unit_zone), 12)):
        pay.offline(special, unit_id, rng.randint(3, 20) * 1000, t0 + (t1 - t0) * rng.random(),
                    "离退休党员（代交）", rng.choice([Channel.CASH, Channel.BANK_TRANSFER]))
    pay.crowd(donation, y.sample(members, 350, first=y.showcase), DONATION, now - 9 * day,
              now - timedelta(hours=1))
    for unit_id in sorted(rng.sample(sorted(y.unit_zone), 3)):
        pay.offline(donation, unit_id, rng.randint(1, 5) * 1000, now - rng.uniform(1, 8) * day,
                    "机关党委（集体）", Channel.BANK_TRANSFER)
    pay.crowd(zone_fund, y.sample(y.zone_members(fund_zone.id), 120), ZONE_FUND, zf0, zf1)
    for unit in rng.sample(y.units[fund_zone.id], 2):
        pay.offline(zone_fund, unit.id, rng.randint(2, 6) * 1000, zf0 + (zf1 - zf0) * rng.random(),
                    f"{unit.name}（集体）", Channel.BANK_TRANSFER)
    pay.rows.sort(key=lambda c: c.created_at)
    await Contribution.bulk_create(pay.rows, batch_size=BATCH)
    totals = pay.totals()
    await CampaignTotal.bulk_create(totals, batch_size=BATCH)
    await totals_cache.moved({t.campaign_id for t in totals})  # a Redis that outlived a database
    net = sum(t.online_fen + t.offline_fen for t in totals if t.campaign_id == zone_fund.id)
    await _ledger(y, zone_fund, net)


async def _ledger(y: Year, zone_fund: Campaign, zone_fund_fen: int) -> None:
    """Each zone's lines in booking order; an expense the balance cannot cover shrinks or waits."""
    rng, now, day = y.rng, y.now, timedelta(days=1)
    held = await Activity.filter(status=ActivityStatus.ACTIVE, ends_at__lte=now - day) \
        .order_by("ends_at", "id").values_list("zone_id", "kind", "ends_at", "title")
    names = {u.id: u.name for us in y.units.values() for u in us}
    entries: list[FundEntry] = []
    for zi, zone in enumerate(y.zones):
        lines: list[dict] = []
        line = partial(_line, y, zone.id, lines)

        for year, q in y.quarters():
            r = y.rotation(zone.id, year, q)
            line(C.DUTY_UNIT, rng.randint(20, 40) * 100, r.starts_at + 3 * day,
                 f"{names[r.unit_id]}轮值经费", unit_id=r.unit_id)
            others = [u.id for u in y.units[zone.id] if u.id != r.unit_id]
            for unit_id in rng.sample(others, 2):
                line(C.MEMBER_UNIT, rng.randint(5, 15) * 100, r.starts_at + 10 * day,
                     f"{names[unit_id]}分担活动经费", unit_id=unit_id)
        asked = y.in_past(0.40)
        line(C.COMMITTEE_SUBSIDY, rng.randint(30, 80) * 100, asked + day,
             "工委补助：网络区年度活动经费（留存党费）", recorded_by_id=y.liaison_of[zone.id],
             decided_by_id=y.admin_id, decided_at=asked + day, decision_note="同意补助。",
             created_at=asked)
        for zone_id, kind, ends_at, title in held:
            if zone_id == zone.id:
                category, text, low, high = EXPENSES.get(kind, OTHER_EXPENSE)
                line(category, rng.randint(low, high), ends_at + day, f"{text}：{title}")
        if zone.id == zone_fund.fund_zone_id and zone_fund_fen:
            settled = zone_fund.settled_at
            lines.append({"zone_id": zone.id, "category": C.CAMPAIGN, "amount_fen": zone_fund_fen,
                          "campaign_id": zone_fund.id, "booked_at": settled,
                          "created_at": settled, "description": f"募集活动「{zone_fund.title}」所得",
                          "recorded_by_id": zone_fund.created_by_id})
        entries += _booked(lines)
        if zi == 1:
            entries.append(_waiting(y, zone.id, EntryStatus.PENDING, now - 2 * day, 6000,
                                    "申请工委补助：年终总结暨表彰活动场地租赁"))
        if zi == 4:
            entries.append(_waiting(y, zone.id, EntryStatus.REJECTED, y.in_past(0.6), 20000,
                                    "申请工委补助：购置活动室设备"))
    entries.sort(key=lambda e: e.booked_at or e.created_at)
    for entry, entry_id in zip(entries, await insert(FundEntry, entries), strict=True):
        if entry.status is EntryStatus.PENDING:  # the approvers are told, as services.ledger does
            y.system(at=entry.created_at, member_ids=[y.admin_id], topic="ledger.subsidy_requested",
                     title=f"经费补贴待审批：{entry.amount_fen // YUAN:,}.00 元",
                     body=entry.description, ref_type="fund_entry", ref_id=entry_id)


def _line(y: Year, zone_id: int, lines: list[dict], category: EntryCategory, yuan: int,
          at: datetime, text: str, **more: object) -> None:
    """A line booked at `at` by the unit then on duty (unless `more` says otherwise); none
    in the future."""
    if at <= y.now:
        rotation = y.rotation_at(zone_id, at)
        by = y.admin_of[rotation.unit_id] if rotation else y.liaison_of[zone_id]
        lines.append({"zone_id": zone_id, "category": category, "amount_fen": yuan * YUAN,
                      "description": text, "booked_at": at, "created_at": at,
                      "recorded_by_id": by} | more)


def _booked(lines: list[dict]) -> list[FundEntry]:
    out, balance = [], 0
    for kw in sorted(lines, key=lambda kw: kw["booked_at"]):
        direction = DIRECTION_OF[kw["category"]]
        if direction is Direction.EXPENSE:
            kw["amount_fen"] = min(kw["amount_fen"], balance // 10_000 * 10_000)  # whole 100 yuan
            if kw["amount_fen"] <= 0:
                continue
        balance += effect(direction, kw["amount_fen"])
        kw["occurred_on"] = _local_date(kw["booked_at"])
        out.append(FundEntry(direction=direction, status=EntryStatus.BOOKED, attachments=[], **kw))
    return out


def _waiting(y: Year, zone_id: int, status: EntryStatus, at: datetime, yuan: int,
             text: str) -> FundEntry:
    """A subsidy asked for by the liaison: still pending, or rejected by the admin."""
    decided = status is EntryStatus.REJECTED
    return FundEntry(zone_id=zone_id, direction=Direction.INCOME, category=C.COMMITTEE_SUBSIDY,
                     status=status, amount_fen=yuan * YUAN, description=text, attachments=[],
                     occurred_on=_local_date(at), recorded_by_id=y.liaison_of[zone_id],
                     decided_by_id=y.admin_id if decided else None,
                     decided_at=at + timedelta(days=2) if decided else None,
                     decision_note="本年度补助额度已用完，请明年再申请。" if decided else "",
                     created_at=at)
