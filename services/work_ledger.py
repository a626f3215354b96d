"""The work ledger (工作台账): per zone and year, and per unit — rotations with their plans, three
ones and handovers; the regular meetings; activities with attendance, leaders and evidence
(minutes, photos); each unit's participation, supervision on time, notice reach and
acknowledgement, money; good practice per unit (published, featured, read); the zone funds —
and the city-wide figures the committee reports (party lessons held, attendee-times).

Every section is a table (columns with Chinese titles, rows, a totals row), so the JSON answer
and the XLSX workbook (`services.ledger_xlsx`, a sheet per section) are the same data."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from models.activities import ActivityKind
from services import clock, errors
from services.access import check_governs
from services.auth import Principal
from services.db import on_replica
from services.year_facts import YearFacts, gather

KIND_TITLES = {ActivityKind.PARTY_LESSON: "党课", ActivityKind.PARTY_ACTIVITY: "党建活动",
               ActivityKind.HANDOVER_MEETING: "交接会", ActivityKind.REGULAR_MEETING: "例会",
               ActivityKind.CONTEST: "竞赛", ActivityKind.CULTURE_SPORTS: "文体活动",
               ActivityKind.VOLUNTEER: "志愿服务", ActivityKind.OTHER: "其他"}
PLAN_TITLES = {"draft": "草稿", "submitted": "待备案", "filed": "已备案", "returned": "已退回", None: "未编写"}
MIN_ZONE, MAX_ZONE = 8, 10


@dataclass
class Column:
    key: str
    title: str
    kind: str = "text"   # text, int, fen, share, time, bool


@dataclass
class Section:
    key: str
    title: str
    columns: list[Column]
    rows: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[str, Any] | None = None

    def total(self, **shares: tuple[str, str]) -> None:
        """The totals row: int and fen columns summed; each share recomputed from its parts."""
        out: dict[str, Any] = {self.columns[0].key: "合计"}
        for c in self.columns[1:]:
            if c.kind in ("int", "fen"):
                out[c.key] = sum(r.get(c.key) or 0 for r in self.rows)
        for key, (part, whole) in shares.items():
            out[key] = share(out.get(part, 0), out.get(whole, 0))
        self.totals = out


def share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def C(key: str, title: str, kind: str = "text") -> Column:  # noqa: N802 (reads like a table)
    return Column(key, title, kind)


# -- access --------------------------------------------------------------------------------------

def check_reads(principal: Principal, *, zone_id: int | None, unit_id: int | None,
                unit_zone: int | None) -> None:
    """The committee: any scope. A liaison: their zones (a zone or one of its units). A unit
    admin: their own unit."""
    if principal.is_committee:
        return
    if principal.is_liaison:
        if zone_id is None and unit_id is None:
            raise errors.Forbidden("联络员须指定所联系的网络区")
        check_governs(principal, zone_id if zone_id is not None else unit_zone)
        return
    if principal.is_unit_admin and unit_id is not None and unit_id == principal.unit_id:
        return
    raise errors.Forbidden()


# -- the book ------------------------------------------------------------------------------------

@on_replica
async def book(principal: Principal, *, year: int, zone_id: int | None, unit_id: int | None) -> dict[str, Any]:
    facts = await gather(year)
    units = {u.id: u for u in facts.units}
    if zone_id is not None and zone_id not in facts.zone_name:
        raise errors.ZoneNotFound(zone_id=zone_id)
    if unit_id is not None and unit_id not in units:
        raise errors.UnitNotFound(unit_id=unit_id)
    unit_zone = units[unit_id].zone_id if unit_id is not None else None
    check_reads(principal, zone_id=zone_id, unit_id=unit_id, unit_zone=unit_zone)
    if unit_id is not None and zone_id is not None and unit_zone != zone_id:
        raise errors.UnitNotInZone(unit_id=unit_id, zone_id=zone_id)
    return compose(facts, zone_id=zone_id if unit_id is None else unit_zone, unit_id=unit_id)


def compose(f: YearFacts, *, zone_id: int | None, unit_id: int | None) -> dict[str, Any]:
    """The sections for the city, one zone, or one unit (its zone's context where it applies)."""
    def in_zone(z: int | None) -> bool:
        return zone_id is None or z == zone_id

    def in_unit(u: int | None) -> bool:
        return unit_id is None or u == unit_id

    sections = [
        _zones(f, in_zone) if unit_id is None else None,
        _rotations(f, in_zone, in_unit),
        _meetings(f, in_zone, in_unit),
        _activities(f, in_zone, in_unit),
        _units(f, in_zone, in_unit),
        _practices(f, in_zone, in_unit),
        _supervision(f, in_zone, in_unit),
        _funds(f, in_zone) if unit_id is None else None,
    ]
    out = [asdict(s) for s in sections if s is not None]
    for section in out:  # times as the mini-program and the console show them
        for column in (c for c in section["columns"] if c["kind"] == "time"):
            for row in section["rows"]:
                row[column["key"]] = clock.local_iso(row.get(column["key"]))
    return {"year": f.year, "zone_id": zone_id, "unit_id": unit_id,
            "city": city_figures(f, in_zone, in_unit), "sections": out}


def city_figures(f: YearFacts, in_zone: Any, in_unit: Any) -> dict[str, Any]:
    """What the committee reports for the year: party lessons held and their attendee-times, all
    activities held and attendee-times, leaders' participation, zones outside 8-10 units."""
    held = [a for a in f.activities if in_zone(a.zone_id) and in_unit(a.organiser_unit_id) and f.held(a)]
    lessons = [a for a in held if a.kind is ActivityKind.PARTY_LESSON]
    tallies = [t for u, t in f.tally.items()
               if u in f.unit_zone and in_unit(u) and in_zone(f.unit_zone[u])]
    leaders = sum(t.leaders for t in tallies)
    sizes = {z.id: sum(1 for u in f.units if u.zone_id == z.id) for z in f.zones}
    return {
        "party_lessons_held": len(lessons),
        "party_lesson_attendee_times": sum(a.checked_in for a in lessons),
        "activities_held": len(held), "attendee_times": sum(a.checked_in for a in held),
        "leaders": leaders, "leaders_attending": sum(len(t.leaders_attended) for t in tallies),
        "leader_participation": share(sum(len(t.leaders_attended) for t in tallies), leaders),
        "zones_outside_size": [{"zone_id": z, "zone_name": f.zone_name[z], "units": n}
                               for z, n in sizes.items() if in_zone(z) and n and not MIN_ZONE <= n <= MAX_ZONE],
    }


def _zones(f: YearFacts, in_zone: Any) -> Section:
    s = Section("zones", "网络区汇总", [
        C("zone", "网络区"), C("units", "成员单位数", "int"), C("size_ok", "规模 8-10 家", "bool"),
        C("rotations", "轮值季度", "int"), C("plans_on_time", "计划按时报备", "int"),
        C("three_ones_complete", "“三个一”完成", "int"), C("handovers_closed", "交接完成", "int"),
        C("activities_held", "开展活动", "int"), C("attendee_times", "参加人次", "int"),
        C("assigned", "督办事项", "int"), C("on_time", "按时办结", "int"), C("on_time_share", "按时率", "share"),
        C("income_fen", "经费收入（分）", "fen"), C("expense_fen", "经费支出（分）", "fen"),
        C("closing_fen", "年末结余（分）", "fen")])
    for z in (z for z in f.zones if in_zone(z.id)):
        rotations = [r for r in f.rotations if r.zone_id == z.id]
        units = [u.id for u in f.units if u.zone_id == z.id]
        held = [a for a in f.activities if a.zone_id == z.id and f.held(a)]
        assigned = sum(f.tally[u].assigned for u in units)
        on_time = sum(f.tally[u].on_time for u in units)
        fund = f.funds.get(z.id, {})
        s.rows.append({
            "zone": z.name, "zone_id": z.id, "units": len(units), "size_ok": MIN_ZONE <= len(units) <= MAX_ZONE,
            "rotations": len(rotations), "plans_on_time": sum(f.plan_on_time(r) for r in rotations),
            "three_ones_complete": sum(all(f.three_ones(r).values()) for r in rotations),
            "handovers_closed": sum(1 for r in rotations if (h := f.handovers.get(r.id)) and h.closed_at),
            "activities_held": len(held), "attendee_times": sum(a.checked_in for a in held),
            "assigned": assigned, "on_time": on_time, "on_time_share": share(on_time, assigned),
            "income_fen": fund.get("income_fen", 0), "expense_fen": fund.get("expense_fen", 0),
            "closing_fen": fund.get("closing_balance_fen", 0)})
    s.total(on_time_share=("on_time", "assigned"))
    return s


def _rotations(f: YearFacts, in_zone: Any, in_unit: Any) -> Section:
    s = Section("rotations", "轮值与计划", [
        C("zone", "网络区"), C("quarter", "季度"), C("unit", "轮值单位"), C("plan", "工作计划"),
        C("plan_on_time", "按时报备", "bool"), C("filed_at", "备案时间", "time"),
        C("party_lesson", "党课", "bool"), C("party_activity", "党建活动", "bool"),
        C("handover_meeting", "交接会", "bool"), C("activities_held", "开展活动", "int"),
        C("attendee_times", "参加人次", "int"), C("handover", "交接")])
    for r in (r for r in f.rotations if in_zone(r.zone_id) and in_unit(r.unit_id)):
        plan, handover = f.plans.get(r.id), f.handovers.get(r.id)
        held = [a for a in f.activities if a.rotation_id == r.id and f.held(a)]
        state = "已完成" if handover and handover.closed_at else \
            "未完成（已提醒）" if handover and handover.flagged_at else \
            "进行中" if not f.finished(r) or handover else "未办理"
        s.rows.append({
            "zone": f.zone_name[r.zone_id], "zone_id": r.zone_id, "rotation_id": r.id,
            "quarter": f"{r.year}Q{r.quarter}", "unit": f.unit_name.get(r.unit_id, ""), "unit_id": r.unit_id,
            "plan": PLAN_TITLES[plan.state.value if plan else None], "plan_on_time": f.plan_on_time(r),
            "filed_at": plan.decided_at if plan and plan.filed_version else None,
            **f.three_ones(r), "activities_held": len(held),
            "attendee_times": sum(a.checked_in for a in held), "handover": state})
    s.total()
    return s


def _meetings(f: YearFacts, in_zone: Any, in_unit: Any) -> Section:
    s = Section("meetings", "工作例会", [
        C("quarter", "季度"), C("title", "例会"), C("starts_at", "时间", "time"), C("zone", "网络区"),
        C("unit", "本季轮值单位"), C("next_unit", "下季轮值单位"), C("reported", "已汇报", "bool"),
        C("commented", "已讲评", "bool"), C("deployments", "部署任务", "int")])
    by_id = {m.id: m for m in f.meetings}
    rotation_unit = {r.id: r.unit_id for r in f.rotations}
    for mz in f.meeting_zones:
        m = by_id[mz.meeting_id]
        unit = rotation_unit.get(mz.rotation_id) if mz.rotation_id else None
        if not in_zone(mz.zone_id) or not in_unit(unit):
            continue
        nxt = rotation_unit.get(mz.next_rotation_id) if mz.next_rotation_id else None
        s.rows.append({"quarter": f"{m.year}Q{m.quarter}", "title": m.title, "starts_at": m.starts_at,
                       "zone": f.zone_name[mz.zone_id], "zone_id": mz.zone_id,
                       "unit": f.unit_name.get(unit, "") if unit else "",
                       "next_unit": f.unit_name.get(nxt, "") if nxt else "",
                       "reported": mz.reported_at is not None, "commented": mz.commented_at is not None,
                       "deployments": f.deployments.get(m.id, 0)})
    s.total()
    return s


def _activities(f: YearFacts, in_zone: Any, in_unit: Any) -> Section:
    s = Section("activities", "活动与参与", [
        C("zone", "网络区"), C("unit", "组织单位"), C("kind", "类型"), C("title", "活动"),
        C("starts_at", "时间", "time"), C("status", "状态"), C("confirmed", "报名", "int"),
        C("checked_in", "签到", "int"), C("leaders", "领导干部签到", "int"),
        C("minutes", "活动纪要", "bool"), C("photos", "活动照片", "int")])
    for a in (a for a in f.activities if in_zone(a.zone_id) and in_unit(a.organiser_unit_id)):
        status = "已取消" if a.status.value == "cancelled" else "已开展" if f.held(a) else \
            "未开展" if a.ends_at <= f.now else "待开展"
        s.rows.append({"activity_id": a.id, "zone": f.zone_name.get(a.zone_id, ""), "zone_id": a.zone_id,
                       "unit": f.unit_name.get(a.organiser_unit_id, "机关工委") if a.organiser_unit_id else "机关工委",
                       "kind": KIND_TITLES.get(a.kind, a.kind.value), "title": a.title, "starts_at": a.starts_at,
                       "status": status, "confirmed": a.confirmed, "checked_in": a.checked_in,
                       "leaders": f.leaders_at.get(a.id, 0), **_evidence(f, a.id)})
    s.total()
    return s


def _evidence(f: YearFacts, activity_id: int) -> dict[str, Any]:
    """The activity's record: minutes kept or not, how many photos, and where to read them."""
    record = f.records.get(activity_id)
    return {"minutes": bool(record and record.minutes.strip()),
            "photos": len(record.photos) if record else 0,
            "record": f"/api/v1/activities/{activity_id}/record" if record else None}


def _practices(f: YearFacts, in_zone: Any, in_unit: Any) -> Section:
    """Good practice per unit: published in the year, featured by the committee, members' reads."""
    s = Section("practices", "经验交流", [
        C("zone", "网络区"), C("unit", "单位"), C("published", "发布", "int"),
        C("featured", "工委推介", "int"), C("reads", "阅读（人）", "int"), C("titles", "题目")])
    for u in (u for u in f.units if u.zone_id is not None and in_zone(u.zone_id) and in_unit(u.id)):
        own = [p for p in f.practices if p.unit_id == u.id]
        s.rows.append({
            "zone": f.zone_name.get(u.zone_id, ""), "zone_id": u.zone_id, "unit": u.name, "unit_id": u.id,
            "published": len(own), "featured": sum(p.featured_at is not None for p in own),
            "reads": sum(f.practice_reads.get(p.id, 0) for p in own),
            "titles": "；".join(("★" if p.featured_at else "") + p.title for p in own),
            "practice_ids": [p.id for p in own]})
    s.total()
    return s


def _units(f: YearFacts, in_zone: Any, in_unit: Any) -> Section:
    s = Section("units", "成员单位", [
        C("zone", "网络区"), C("unit", "单位"), C("members", "党员数", "int"),
        C("attending", "参加活动党员", "int"), C("participation", "参与率", "share"),
        C("attendee_times", "参加人次", "int"), C("leaders", "领导干部", "int"),
        C("leaders_attending", "参加活动的领导干部", "int"), C("leader_participation", "领导干部参与率", "share"),
        C("assigned", "督办事项", "int"), C("on_time", "按时办结", "int"), C("on_time_share", "按时率", "share"),
        C("delivered", "收到通知", "int"), C("read", "已读", "int"), C("read_share", "阅读率", "share"),
        C("ack_required", "需确认", "int"), C("acked", "已确认", "int"), C("ack_share", "确认率", "share"),
        C("paid_fen", "缴纳/捐款（分）", "fen"), C("payers", "缴纳党员", "int")])
    for u in (u for u in f.units if u.zone_id is not None and in_zone(u.zone_id) and in_unit(u.id)):
        t = f.tally[u.id]
        s.rows.append({
            "zone": f.zone_name.get(u.zone_id, ""), "zone_id": u.zone_id, "unit": u.name, "unit_id": u.id,
            "members": t.members, "attending": len(t.attended), "participation": share(len(t.attended), t.members),
            "attendee_times": t.attendee_times, "leaders": t.leaders, "leaders_attending": len(t.leaders_attended),
            "leader_participation": share(len(t.leaders_attended), t.leaders),
            "assigned": t.assigned, "on_time": t.on_time, "on_time_share": share(t.on_time, t.assigned),
            "delivered": t.delivered, "read": t.read, "read_share": share(t.read, t.delivered),
            "ack_required": t.ack_required, "acked": t.acked, "ack_share": share(t.acked, t.ack_required),
            "paid_fen": t.paid_fen, "payers": len(t.payers)})
    s.total(participation=("attending", "members"), leader_participation=("leaders_attending", "leaders"),
            on_time_share=("on_time", "assigned"), read_share=("read", "delivered"),
            ack_share=("acked", "ack_required"))
    return s


def _supervision(f: YearFacts, in_zone: Any, in_unit: Any) -> Section:
    s = Section("supervision", "督办落实", [
        C("item", "督办事项"), C("zone", "网络区"), C("unit", "承办单位"), C("due_at", "办结时限", "time"),
        C("state", "状态"), C("submitted_at", "提交时间", "time"), C("on_time", "按时", "bool"),
        C("escalation_level", "升级次数", "int")])
    states = {"open": "未开始", "in_progress": "办理中", "submitted": "待审核", "accepted": "已办结", "returned": "已退回"}
    for a in (a for a in f.assignments if in_zone(a.zone_id) and in_unit(a.unit_id)):
        s.rows.append({"item": a.item.title, "item_id": a.item_id, "zone": f.zone_name.get(a.zone_id, "") if a.zone_id else "",
                       "zone_id": a.zone_id, "unit": f.unit_name.get(a.unit_id, ""), "unit_id": a.unit_id,
                       "due_at": a.item.due_at, "state": states[a.state.value], "submitted_at": a.submitted_at,
                       "on_time": a.submitted_at is not None and a.submitted_at <= a.item.due_at,
                       "escalation_level": a.escalation_level})
    s.total()
    return s


def _funds(f: YearFacts, in_zone: Any) -> Section:
    s = Section("funds", "网络区经费", [
        C("zone", "网络区"), C("opening_fen", "年初结余（分）", "fen"), C("duty_unit_fen", "轮值单位（分）", "fen"),
        C("member_unit_fen", "成员单位（分）", "fen"), C("subsidy_fen", "工委补助（分）", "fen"),
        C("campaign_fen", "募集（分）", "fen"), C("other_income_fen", "其他收入（分）", "fen"),
        C("income_fen", "收入合计（分）", "fen"), C("expense_fen", "支出合计（分）", "fen"),
        C("closing_fen", "年末结余（分）", "fen")])
    for z in (z for z in f.zones if in_zone(z.id)):
        fund = f.funds.get(z.id)
        if fund is None:
            continue
        income = fund["income_by_category"]
        s.rows.append({"zone": z.name, "zone_id": z.id, "opening_fen": fund["opening_balance_fen"],
                       "duty_unit_fen": income["duty_unit"], "member_unit_fen": income["member_unit"],
                       "subsidy_fen": income["committee_subsidy"], "campaign_fen": income["campaign"],
                       "other_income_fen": income["other_income"], "income_fen": fund["income_fen"],
                       "expense_fen": fund["expense_fen"], "closing_fen": fund["closing_balance_fen"]})
    s.total()
    return s


async def workbook(principal: Principal, *, year: int, zone_id: int | None,
                   unit_id: int | None) -> tuple[str, bytes]:
    """The ledger as an XLSX workbook (with the year's evaluation for staff reading a city or a
    zone): its file name and bytes. The API and the console download the same file."""
    from services import evaluation, ledger_xlsx

    found = await book(principal, year=year, zone_id=zone_id, unit_id=unit_id)
    scores = await evaluation.get(principal, year) if principal.is_staff and unit_id is None else None
    name = f"网络区工作台账-{year}" + (f"-zone{zone_id}" if zone_id else "") + \
        (f"-unit{unit_id}" if unit_id else "") + ".xlsx"
    return name, ledger_xlsx.workbook(found, scores)
