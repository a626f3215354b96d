"""The quarter's regular meeting (例会): the committee meets every zone's current duty unit (its
report) and next duty unit; the committee comments on each report (讲评) and deploys the next
quarter's tasks, each of which becomes a supervision item for the next duty units in one step."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from models.governance import Deployment, Meeting, MeetingState, MeetingZone
from models.org import Rotation, Zone
from services import clock, inbox, supervision
from services.access import check_committee, check_governs
from services.auth import Principal
from services.errors import (
    IllegalTransition,
    MeetingExists,
    MeetingNotFound,
    NotAtMeeting,
    NoUnits,
    ZoneNotFound,
)


def next_quarter(year: int, quarter: int) -> tuple[int, int]:
    return (year, quarter + 1) if quarter < 4 else (year + 1, 1)


async def _rotations_of(year: int, quarter: int) -> dict[int, Rotation]:
    """Each zone's rotation in a quarter (after a mid-quarter change, the later one)."""
    start, end = clock.quarter_bounds(year, quarter)
    out: dict[int, Rotation] = {}
    for r in await Rotation.filter(starts_at__lt=end, ends_at__gt=start).order_by("starts_at"):
        out[r.zone_id] = r
    return out


async def get_or_raise(meeting_id: int) -> Meeting:
    meeting = await Meeting.get_or_none(id=meeting_id)
    if meeting is None:
        raise MeetingNotFound(meeting_id=meeting_id)
    return meeting


async def _attending_units(meeting_id: int) -> set[int]:
    rows = await MeetingZone.filter(meeting_id=meeting_id).select_related("rotation", "next_rotation")
    return {r.unit_id for z in rows for r in (z.rotation, z.next_rotation) if r is not None}


async def check_reads(principal: Principal, meeting: Meeting) -> None:
    """Staff, and the admins of the units at the meeting (current and next duty units)."""
    if principal.is_staff:
        return
    if principal.is_unit_admin and principal.unit_id in await _attending_units(meeting.id):
        return
    raise MeetingNotFound(meeting_id=meeting.id)


async def meeting_view(meeting: Meeting, principal: Principal) -> dict[str, Any]:
    zones = await MeetingZone.filter(meeting_id=meeting.id).select_related(
        "zone", "rotation__unit", "next_rotation__unit")
    if not principal.is_committee and principal.is_liaison:
        zones = [z for z in zones if principal.governs(z.zone_id)]
    return {
        "id": meeting.id, "year": meeting.year, "quarter": meeting.quarter, "title": meeting.title,
        "place": meeting.place, "starts_at": meeting.starts_at, "state": meeting.state.value,
        "minutes": meeting.minutes, "held_at": meeting.held_at,
        "zones": [{
            "zone_id": z.zone_id, "zone_name": z.zone.name,
            "unit_id": z.rotation.unit_id if z.rotation else None,
            "unit_name": z.rotation.unit.name if z.rotation else None,
            "next_unit_id": z.next_rotation.unit_id if z.next_rotation else None,
            "next_unit_name": z.next_rotation.unit.name if z.next_rotation else None,
            "report": z.report, "reported_at": z.reported_at, "comments": z.comments,
            "commented_at": z.commented_at} for z in zones],
        "deployments": await Deployment.filter(meeting_id=meeting.id),
    }


async def schedule(principal: Principal, *, year: int, quarter: int, title: str,
                   starts_at: datetime, place: str) -> dict[str, Any]:
    """One meeting a quarter; every zone's current and next duty units are invited (inbox and
    push), with the zone's liaisons."""
    check_committee(principal)
    current = await _rotations_of(year, quarter)
    upcoming = await _rotations_of(*next_quarter(year, quarter))
    zones = await Zone.all()
    try:
        async with in_transaction():
            meeting = await Meeting.create(year=year, quarter=quarter, title=title, place=place,
                                           starts_at=starts_at, created_by_id=principal.member_id)
            await MeetingZone.bulk_create([MeetingZone(
                meeting_id=meeting.id, zone_id=z.id,
                rotation_id=current[z.id].id if z.id in current else None,
                next_rotation_id=upcoming[z.id].id if z.id in upcoming else None) for z in zones])
            units = {r.unit_id for r in (*current.values(), *upcoming.values())}
            people = set(await inbox.unit_admin_ids(units))
            for z in zones:
                people.update(await inbox.liaison_ids(z.id))
            await inbox.send_system(
                member_ids=people, topic="meeting.scheduled", title=f"例会通知：{title}",
                body=f"时间：{clock.local_iso(starts_at)}；地点：{place or '另行通知'}。"
                     "请本季度轮值单位准备工作汇报，下季度轮值单位参会领取部署。",
                ref_type="meeting", ref_id=meeting.id)
    except IntegrityError:
        raise MeetingExists(year=year, quarter=quarter) from None
    return await meeting_view(meeting, principal)


async def list_meetings(principal: Principal, *, year: int | None) -> list[dict[str, Any]]:
    qs = Meeting.all() if year is None else Meeting.filter(year=year)
    out = []
    for meeting in await qs.order_by("-year", "-quarter"):
        if principal.is_staff or (principal.is_unit_admin and
                                  principal.unit_id in await _attending_units(meeting.id)):
            out.append(await meeting_view(meeting, principal))
    return out


async def get(principal: Principal, meeting_id: int) -> dict[str, Any]:
    meeting = await get_or_raise(meeting_id)
    await check_reads(principal, meeting)
    return await meeting_view(meeting, principal)


async def _zone_row(meeting: Meeting, zone_id: int) -> MeetingZone:
    row = await MeetingZone.get_or_none(meeting_id=meeting.id, zone_id=zone_id).select_related("rotation")
    if row is None:
        raise ZoneNotFound(zone_id=zone_id)
    return row


async def report(principal: Principal, meeting_id: int, zone_id: int, *, text: str) -> dict[str, Any]:
    """The zone's current duty unit reports on its quarter, until the meeting is held."""
    meeting = await get_or_raise(meeting_id)
    await check_reads(principal, meeting)
    row = await _zone_row(meeting, zone_id)
    if row.rotation is None or not principal.is_unit_admin or principal.unit_id != row.rotation.unit_id:
        raise NotAtMeeting(zone_id=zone_id)
    if meeting.state is not MeetingState.SCHEDULED:
        raise IllegalTransition(state=meeting.state.value, action="report")
    await MeetingZone.filter(id=row.id).update(report=text, reported_at=clock.now(),
                                               reported_by_id=principal.member_id)
    return await meeting_view(meeting, principal)


async def comment(principal: Principal, meeting_id: int, zone_id: int, *, text: str) -> dict[str, Any]:
    """The committee's comments on a zone's report (讲评); the duty unit is told."""
    meeting = await get_or_raise(meeting_id)
    check_governs(principal, zone_id)
    row = await _zone_row(meeting, zone_id)
    async with in_transaction():
        await MeetingZone.filter(id=row.id).update(comments=text, commented_at=clock.now(),
                                                   commented_by_id=principal.member_id)
        if row.rotation is not None:
            await inbox.send_system(
                member_ids=await inbox.unit_admin_ids([row.rotation.unit_id]), topic="meeting.comments",
                title=f"例会讲评：{meeting.title}", body=text[:200], ref_type="meeting", ref_id=meeting.id)
    return await meeting_view(meeting, principal)


async def deploy(principal: Principal, meeting_id: int, *, title: str, detail: str, due_at: datetime,
                 zone_ids: list[int]) -> dict[str, Any]:
    """A task for the next quarter: in one transaction, a supervision item assigned to the next
    duty unit of each named zone (default: every zone at the meeting) and its deployment row."""
    check_committee(principal)
    meeting = await get_or_raise(meeting_id)
    rows = await MeetingZone.filter(meeting_id=meeting.id).select_related("next_rotation")
    if zone_ids:
        known = {z.zone_id for z in rows}
        if missing := sorted(set(zone_ids) - known):
            raise ZoneNotFound(zone_ids=missing)
        rows = [z for z in rows if z.zone_id in set(zone_ids)]
    units = sorted({z.next_rotation.unit_id for z in rows if z.next_rotation is not None})
    if not units:
        raise NoUnits("下季度尚无轮值单位，请先生成轮值表", zone_ids=sorted(z.zone_id for z in rows))
    async with in_transaction():
        item = await supervision.create(principal, title=title, detail=detail, attachments=[],
                                        due_at=due_at, unit_ids=units, zone_ids=[], ladder=None)
        await Deployment.create(meeting_id=meeting.id, title=title, detail=detail, due_at=due_at,
                                zone_ids=sorted(z.zone_id for z in rows), item_id=item.id,
                                created_by_id=principal.member_id)
    return await meeting_view(meeting, principal)


async def close(principal: Principal, meeting_id: int, *, minutes: str) -> dict[str, Any]:
    """The meeting was held: its minutes are recorded and reports are final."""
    check_committee(principal)
    meeting = await get_or_raise(meeting_id)
    moved = await Meeting.filter(id=meeting.id, state=MeetingState.SCHEDULED).update(
        state=MeetingState.HELD, held_at=clock.now(), minutes=minutes)
    if not moved:
        raise IllegalTransition(state=MeetingState.HELD.value, action="close")
    return await meeting_view(await get_or_raise(meeting_id), principal)
