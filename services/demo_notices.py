"""Demo year, notices: the committee's notices to everyone, to zones and to unit admins (one from
a liaison to their zone), fanned out in batches that were delivered and pushed; a realistic
share read and acknowledged, the rest unread; units signed for the acknowledged ones. What the
jobs would have done since is done too: the one reminder a day later, and at an
acknowledgement deadline each unit admin's list of who did not acknowledge."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from models.notices import NoticeKind, NoticePriority, PushStatus
from models.org import Role
from services import clock
from services.demo_funds import SPECIAL_DUES_AT
from services.demo_year import NOTICE_BATCH, PendingNotice, Recipient, Year, fan_out

P = NoticePriority
DAY = timedelta(days=1)


@dataclass
class Spec:
    at: datetime
    title: str
    body: str
    audience: dict
    read: float                 # share who read it (by now)
    ack_due: datetime | None = None
    acked: float = 0.0          # share of readers who acknowledged
    priority: NoticePriority = P.NORMAL
    sender_id: int | None = None


def _specs(y: Year) -> list[Spec]:
    now, zones = y.now, [z.id for z in y.zones]
    first, dues = y.in_past(0.04), y.in_past(SPECIAL_DUES_AT) - timedelta(hours=2)
    third = y.zones[2].id
    return [
        Spec(first, f"关于印发《{y.year}年党建网络区工作要点》的通知",
             "请各网络区、各单位认真学习，结合实际抓好落实，并于一周内确认收悉。", {"all": True}, 0.96,
             ack_due=first + 7 * DAY, acked=0.93),
        Spec(y.in_past(0.5), f"{y.zones[2].name}挂点联络工作安排",
             "本季度挂点联络员将参加各单位主题党日活动，请提前报送活动安排。", {"zone_ids": [third]},
             0.88, sender_id=y.liaison_of[third]),
        Spec(dues, f"关于开展{clock.quarter_of(dues)[0]}年特殊党费交纳工作的通知",
             "全市机关党员自愿交纳特殊党费支援防汛救灾，可通过小程序“经费募集”在线交纳。",
             {"all": True}, 0.93, priority=P.HIGH),
        Spec(y.in_past(0.7), "关于开展“书香机关”读书节活动的通知",
             "第一至第五网络区各单位组织党员报名参加读书节，推荐书目见附件。", {"zone_ids": zones[:5]}, 0.86),
        Spec(y.in_past(0.85), "关于做好网络区轮值交接工作的通知",
             "请各单位管理员整理本季度工作台账，按时参加交接会。", {"roles": [Role.UNIT_ADMIN.value]},
             0.92, ack_due=y.in_past(0.85) + 5 * DAY, acked=0.9),
        Spec(now - 3 * DAY, f"关于开展{y.year}年度党建工作目标管理考核的通知",
             "请各单位对照考核细则做好自查，逐项整理佐证材料。", {"all": True}, 0.62,
             ack_due=now + 4 * DAY, acked=0.72, priority=P.HIGH),
        Spec(now - timedelta(hours=5), "关于做好近期安全生产和值班值守工作的提醒",
             "请各单位严格落实值班制度，遇突发情况及时报告。", {"all": True}, 0.27, priority=P.URGENT),
    ]


def _audience(y: Year, audience: dict) -> list[int]:
    """As services.notices.resolve_audience: active members of a unit named by the audience."""
    if audience.get("all"):
        return sorted(y.unit_of)
    zones, roles = set(audience.get("zone_ids", [])), set(audience.get("roles", []))
    admins = set(y.admin_of.values()) if Role.UNIT_ADMIN.value in roles else set()
    return sorted(m for m, u in y.unit_of.items() if y.unit_zone.get(u) in zones or m in admins)


def collect(y: Year) -> None:
    specs = sorted(_specs(y), key=lambda s: s.at)
    for spec in specs:
        _notice(y, spec, newest=spec is specs[-1])


def _notice(y: Year, spec: Spec, *, newest: bool) -> None:
    rng, now, at = y.rng, y.now, spec.at
    rows = []
    for member_id in _audience(y, spec.audience):
        if member_id in y.showcase:  # demo-1 has read all but the newest, acknowledged past due
            read = None if newest or at + timedelta(minutes=30) > now else at + timedelta(minutes=30)
            acked = read if spec.ack_due and spec.ack_due <= now else None
        else:
            read = y.read_time(at, spec.read, mean_min=60 if newest else 240)
            acked = None
            if read and spec.ack_due and rng.random() < spec.acked:
                acked = min(read + timedelta(minutes=rng.uniform(0, 30)), now)
        rows.append(Recipient(member_id, y.unit_of[member_id], read_at=read, acked_at=acked))
    notice = PendingNotice(fields={
        "kind": NoticeKind.NOTICE, "title": spec.title, "body": spec.body,
        "audience": spec.audience, "priority": spec.priority, "created_at": at,
        "require_ack": spec.ack_due is not None, "ack_due_at": spec.ack_due,
        "sender_id": spec.sender_id or y.admin_id}, recipients=rows)
    fan_out(notice)
    pushed_and_reminded(y, notice)
    if spec.ack_due is not None:
        _receipts(y, notice, spec)
    y.notices.append(notice)


def pushed_and_reminded(y: Year, notice: PendingNotice) -> None:
    """What the jobs did for a fanned-out notice: pushed whoever had granted a subscribe message,
    and a day later the one reminder to whoever had not read (or acknowledged) by then, so the
    reminder job finds nothing of the demo's past still to do."""
    for n, row in enumerate(notice.recipients):
        granted = y.rng.random() < 0.7
        row.push_status = PushStatus.SENT if granted else PushStatus.NO_GRANT
        row.pushed_at = notice.batches[n // NOTICE_BATCH]["pushed_at"] if granted else None
    remind = notice.at + DAY
    if remind <= y.now:
        notice.fields["reminders_done_at"] = remind
        for row in notice.recipients:
            done = row.acked_at if notice.fields.get("require_ack") else row.read_at
            if done is None or done > remind:
                row.reminded_at = remind


def _receipts(y: Year, notice: PendingNotice, spec: Spec) -> None:
    """Unit admins sign for their units; past the deadline each unit admin got the names."""
    rng, now, due = y.rng, y.now, spec.ack_due
    assert due is not None
    for unit_id in sorted({r.unit_id for r in notice.recipients if r.unit_id is not None}):
        signed = spec.at + timedelta(hours=rng.uniform(1, 48))
        if rng.random() < 0.8 and signed <= now:
            notice.unit_receipts.append({"unit_id": unit_id, "signed_by_id": y.admin_of[unit_id],
                                             "signed_at": signed})
    if due > now:
        return
    sent = due + timedelta(seconds=30)
    notice.fields["deadline_done_at"] = sent
    missing: dict[int, list[int]] = {}
    for row in notice.recipients:
        if row.unit_id is not None and (row.acked_at is None or row.acked_at > due):
            missing.setdefault(row.unit_id, []).append(row.member_id)
    for unit_id, member_ids in sorted(missing.items()):
        notice.deadline_lists.append(
            {"unit_id": unit_id, "member_ids": member_ids, "sent_at": sent})
        y.system(at=sent, member_ids=[y.admin_of[unit_id]], topic="notice.deadline_list",
                 title=f"未确认名单：{spec.title}", ref_type="notice", ref=notice,
                 body="以下党员在截止时间前未确认：" + "、".join(y.name_of[m] for m in member_ids))
