"""交接: closing a rotation. The outgoing unit's report is prefilled from what zonehub recorded in
its quarter (services.quarter_record), the incoming unit records its plan, and each side confirms
— by the unit's admin or its 书记. Both confirmed: the rotation is closed. Duty powers pass at the
quarter boundary whatever the record says; a record still open a few days later is flagged to
the zone's liaisons (a daily job), once."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from models.governance import Handover
from models.org import Member, Position, Rotation
from services import clock, inbox, quarter_record
from services.auth import Principal
from services.errors import (
    Forbidden,
    HandoverConfirmed,
    HandoverNotOpen,
    NotHandoverParty,
)
from services.plans import rotation_or_raise

OPENS_BEFORE_END = timedelta(days=30)   # the outgoing side may start its record then
FLAG_AFTER_END = timedelta(days=3)      # still open this long after the boundary: liaisons told
FLAG_WINDOW = timedelta(days=30)        # and only for rotations ended this recently


async def next_rotation(rotation: Rotation) -> Rotation | None:
    return await Rotation.filter(zone_id=rotation.zone_id, starts_at__gte=rotation.ends_at) \
        .order_by("starts_at").first()


async def side_of(principal: Principal, rotation: Rotation, following: Rotation | None) -> str | None:
    """'outgoing' or 'incoming' when the caller may act for that unit (its admin, or its 书记)."""
    if principal.unit_id is None:
        return None
    speaks = principal.is_unit_admin or await Member.exists(
        id=principal.member_id, position=Position.SECRETARY, is_active=True)
    if not speaks:
        return None
    if principal.unit_id == rotation.unit_id:
        return "outgoing"
    if following is not None and principal.unit_id == following.unit_id:
        return "incoming"
    return None


async def handover_view(rotation: Rotation, following: Rotation | None) -> dict[str, Any]:
    row = await Handover.get_or_none(rotation_id=rotation.id)
    frozen = row is not None and row.report is not None
    return {
        "rotation_id": rotation.id, "zone_id": rotation.zone_id, "unit_id": rotation.unit_id,
        "next_rotation_id": following.id if following else None,
        "next_unit_id": following.unit_id if following else None,
        "report": row.report if frozen else await quarter_record.record(rotation),  # type: ignore[union-attr]
        "report_frozen": frozen,
        "outgoing_note": row.outgoing_note if row else "",
        "incoming_plan": row.incoming_plan if row else "",
        "outgoing_confirmed_at": row.outgoing_confirmed_at if row else None,
        "incoming_confirmed_at": row.incoming_confirmed_at if row else None,
        "closed_at": row.closed_at if row else None,
        "flagged_at": row.flagged_at if row else None,
        "opens_at": rotation.ends_at - OPENS_BEFORE_END,
    }


async def get(principal: Principal, rotation_id: int) -> dict[str, Any]:
    rotation = await rotation_or_raise(rotation_id)
    following = await next_rotation(rotation)
    if not principal.governs(rotation.zone_id) and await side_of(principal, rotation, following) is None:
        raise Forbidden()
    return await handover_view(rotation, following)


async def record(principal: Principal, rotation_id: int, *, note: str | None, plan: str | None,
                 confirm: bool) -> dict[str, Any]:
    """Either side writes its part (the outgoing unit its note, the incoming unit its plan) and
    may confirm. The outgoing confirmation freezes the report as recorded at that moment; a side
    that confirmed does not edit; confirming again changes nothing."""
    rotation = await rotation_or_raise(rotation_id)
    following = await next_rotation(rotation)
    side = await side_of(principal, rotation, following)
    if side is None:
        raise NotHandoverParty(rotation_id=rotation.id)
    now = clock.now()
    if now < rotation.ends_at - OPENS_BEFORE_END:
        raise HandoverNotOpen(opens_at=clock.local_iso(rotation.ends_at - OPENS_BEFORE_END))
    text, field = (note, "outgoing_note") if side == "outgoing" else (plan, "incoming_plan")
    if (note if side == "incoming" else plan) is not None:
        raise Forbidden("交出方填写交接说明（note），接收方填写工作打算（plan）")
    async with in_transaction():
        try:
            row, _ = await Handover.get_or_create(
                rotation_id=rotation.id,
                defaults={"zone_id": rotation.zone_id, "next_rotation_id": following.id if following else None})
        except IntegrityError:
            row = await Handover.get(rotation_id=rotation.id)
        row = await Handover.select_for_update().get(id=row.id)
        confirmed_at = row.outgoing_confirmed_at if side == "outgoing" else row.incoming_confirmed_at
        changes: dict[str, Any] = {}
        if text is not None and text != getattr(row, field):
            if confirmed_at is not None:
                raise HandoverConfirmed(side=side)
            changes[field] = text
        if confirm and confirmed_at is None:
            changes[f"{side}_confirmed_at"] = now
            changes[f"{side}_confirmed_by_id"] = principal.member_id
            if side == "outgoing":
                changes["report"] = await quarter_record.record(rotation)
        if following is not None and row.next_rotation_id is None:
            changes["next_rotation_id"] = following.id
        out_at = changes.get("outgoing_confirmed_at", row.outgoing_confirmed_at)
        in_at = changes.get("incoming_confirmed_at", row.incoming_confirmed_at)
        closes = out_at is not None and in_at is not None and row.closed_at is None
        if closes:
            changes["closed_at"] = now
        if changes:
            await Handover.filter(id=row.id).update(**changes)
        if closes:
            await inbox.send_system(
                member_ids=await inbox.liaison_ids(rotation.zone_id), topic="handover.closed",
                title="网络区轮值交接已完成", ref_type="rotation", ref_id=rotation.id)
    return await handover_view(rotation, following)


async def flag_open(*, at: datetime | None = None) -> int:
    """Daily job: rotations ended 3 to 30 days ago without a closed handover are flagged to the
    zone's liaisons (the committee when the zone has none), once each."""
    at = at or clock.now()
    ended = await Rotation.filter(ends_at__lte=at - FLAG_AFTER_END, ends_at__gt=at - FLAG_WINDOW)
    done = set(await Handover.filter(rotation_id__in=[r.id for r in ended]).filter(
        closed_at__isnull=False).values_list("rotation_id", flat=True))
    flagged = set(await Handover.filter(rotation_id__in=[r.id for r in ended]).filter(
        flagged_at__isnull=False).values_list("rotation_id", flat=True))
    sent = 0
    for rotation in (r for r in ended if r.id not in done and r.id not in flagged):
        following = await next_rotation(rotation)
        async with in_transaction():
            try:
                row, _ = await Handover.get_or_create(
                    rotation_id=rotation.id,
                    defaults={"zone_id": rotation.zone_id,
                              "next_rotation_id": following.id if following else None})
            except IntegrityError:
                row = await Handover.get(rotation_id=rotation.id)
            if not await Handover.filter(id=row.id, flagged_at__isnull=True, closed_at__isnull=True) \
                    .update(flagged_at=at):
                continue  # flagged (or closed) by another run meanwhile
            people = await inbox.liaison_ids(rotation.zone_id) or await inbox.staff_ids(rotation.zone_id)
            await inbox.send_system(
                member_ids=people, topic="handover.open",
                title=f"{rotation.year} 年第 {rotation.quarter} 季度的轮值交接尚未完成",
                body="季度已结束，交接记录仍未经双方确认，请督促办理。",
                ref_type="rotation", ref_id=rotation.id)
            sent += 1
    return sent
